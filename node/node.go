package node

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/cluster"
	"github.com/switchboard-pbx/switchboard/cluster/gossip"
	"github.com/switchboard-pbx/switchboard/dnszone"
	"github.com/switchboard-pbx/switchboard/events"
	"github.com/switchboard-pbx/switchboard/httpapi"
	"github.com/switchboard-pbx/switchboard/internal/loglevel"
	"github.com/switchboard-pbx/switchboard/lease"
	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/placement"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

// States reported by /healthz.
const (
	StateStarting = "starting"
	StateJoining  = "joining"
	StateServing  = "serving"
	StateDraining = "draining"
)

// Node is one running Switchboard node.
type Node struct {
	cfg        Config
	log        *slog.Logger
	registry   *prometheus.Registry
	store      persistence.Store
	actors     *actors.System
	membership *cluster.Membership
	drainReq   chan struct{}
	drainOne   sync.Once
	http       *http.Server
	sip        *sipedge.Edge
	dns        *dnszone.Server
	views      *accountview.Cache // the edge's and DNS's account snapshots
	sipDone    chan struct{}
	ln         net.Listener
	state      atomic.Value // string
	ran        atomic.Bool

	lease        *lease.Node     // this node's liveness and claims in the store
	events       *events.Stream  // the accounts' event streams and webhooks
	callEvents   *callEventQueue // call events, appended off the call actors' turns
	stopRenewing func()          // stops the lease's renewals; set once registered
	closers      closers         // what New acquired; Run and Close release it
}

// New opens the node's store, starts its actor system, binds its HTTP,
// SIP and DNS listeners and joins the cluster, in the order the package
// doc gives. Run serves; Close releases a node that never ran.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), registry: prometheus.NewRegistry(), drainReq: make(chan struct{})}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	n.state.Store(StateStarting)
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() {
		if err != nil {
			_ = n.closers.close()
		}
	}()

	store, engine, err := n.openStore(ctx)
	if err != nil {
		return nil, err
	}
	n.store = persistence.Instrument(store, engine, n.registry)
	n.closers.push(n.store.Close)

	if len(cfg.Join) > 0 && cfg.StoreURL == "" {
		n.log.Warn("this node joins a cluster but keeps its state in the embedded store: state will not follow actors between nodes; clusters use --store postgres://...")
	}
	ecfg := events.DefaultConfig()
	ecfg.Store, ecfg.Node, ecfg.Logger, ecfg.Registerer, ecfg.Retention = n.store, cfg.Name, n.log, n.registry, cfg.EventRetention
	if n.events, err = events.New(ecfg); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.callEvents, err = newCallEventQueue(n.events, n.log, n.registry); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.lease, err = n.newLease(); err != nil {
		return nil, err
	}
	n.closers.push(n.stopLease)
	if n.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("node: listening for HTTP on %s: %w", cfg.HTTPAddr, err)
	}
	n.closers.push(func() error { _ = n.ln.Close(); return nil }) // Run's Shutdown closes it first

	key, _ := base64.StdEncoding.DecodeString(cfg.GossipKey) // Validate checked it; "" is no key
	n.membership, err = cluster.New(cluster.Config{
		Name: cfg.Name, Pool: cfg.Pool, ActorAddr: cfg.ActorAddr, GossipAddr: cfg.GossipAddr, Join: cfg.Join,
		GossipKey: key, Profile: cfg.GossipProfile, Logger: n.log, Registerer: n.registry,
		Lookup: cluster.LookupConfig{Default: placement.NewBoundedLoad(cfg.PlacementEpsilon), OnInvalidate: n.invalidateLocal},
		Peers:  leasePeers{n.lease},
	})
	if err != nil {
		return nil, err
	}
	n.closers.push(n.membership.Close)
	n.actors, err = actors.New(actors.Config{
		Store: n.store, Zone: cfg.Zone, Logger: n.protoactorLogger(), NewLookup: n.membership.Start,
		Registerer: n.registry, IdleTimeout: cfg.IdleTimeout, Node: cfg.Name, Pools: poolSource{n}, Fence: leaseFence{n.lease}, Events: n.callEvents,
		Notifier: edgeLink{n}, Hangup: edgeLink{n}, EdgeChanged: n.edgeChanged, MaxCallDuration: cfg.MaxCallDuration,
		ContextCacheBytes: int64(cfg.ContextCacheMB) << 20, ContextHotLease: cfg.ContextHotLease,
	})
	if err != nil {
		return nil, err
	}
	n.closers.push(n.actors.Close)
	if n.views, err = n.newViews(); err != nil {
		return nil, err
	}
	if err := n.startSIP(); err != nil {
		return nil, err
	}
	if err := n.membership.Join(cluster.Services{SIP: n.sip.Addr(), HTTP: n.HTTPAddr(), DNS: n.dns.Addr()}); err != nil {
		return nil, err
	}
	if err := n.registerLease(ctx); err != nil {
		return nil, err
	}
	h, err := httpapi.New(httpapi.Config{
		Actors: n.actors, Zone: cfg.Zone, Node: cfg.Name, AdminToken: cfg.AdminToken,
		Health: n.State, Registerer: n.registry, Gatherer: n.registry, Logger: n.log,
		Cluster: clusterView{m: n.membership}, Drain: n.Drain, Pools: n.pools, SIP: sipView{n.sip},
		Events: n.events,
	})
	if err != nil {
		return nil, err
	}
	n.http = &http.Server{Handler: h, ReadHeaderTimeout: httpReadHeaderTimeout, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}
	return n, nil
}

func (n *Node) openStore(ctx context.Context) (persistence.Store, string, error) {
	if n.cfg.StoreURL != "" {
		pc := persistence.DefaultPostgresConfig()
		pc.Logger = n.log.With("component", "store")
		s, err := persistence.OpenPostgres(ctx, n.cfg.StoreURL, pc)
		if err != nil {
			return nil, "", fmt.Errorf("node: opening the PostgreSQL store: %w", err)
		}
		n.log.Info("store opened", "engine", "postgres")
		return s, "postgres", nil
	}
	bc := persistence.DefaultBadgerConfig()
	bc.Logger = n.log.With("component", "store")
	s, err := persistence.OpenBadger(n.cfg.DataDir, bc)
	if err != nil {
		return nil, "", fmt.Errorf("node: opening the embedded store in %s: %w", n.cfg.DataDir, err)
	}
	n.log.Info("store opened", "engine", "badger", "dir", n.cfg.DataDir)
	return s, "badger", nil
}

// SIPAddr is the address the SIP edge is bound to (UDP and TCP).
func (n *Node) SIPAddr() string { return n.sip.Addr() }

// DNSAddr is the address the DNS responder is bound to (UDP and TCP).
func (n *Node) DNSAddr() string { return n.dns.Addr() }

// protoactorLogger is the logger of the actor system, with the records
// protoactor logs as errors in an ordinary drain logged at INFO: its
// endpoint writers' failures (lost connection, failed to connect) towards
// a member that drains or has left, every one on a node that drains, and
// every stream that ends Canceled: that is this node closing the endpoint
// itself, once the member has left the topology (it may be gone from the
// member list by the time the writer logs). A crashed peer's errors
// (Unavailable, refused) stay errors.
func (n *Node) protoactorLogger() *slog.Logger {
	return slog.New(loglevel.Handler(n.log.Handler(), loglevel.Rule{
		Message: "EndpointWriter *", Match: n.towardsLeavingPeer, Level: slog.LevelInfo,
	}))
}

// towardsLeavingPeer says whether a record of protoactor's concerns the
// actor address of a member that drains or left, or an endpoint this node
// closed, or this node drains.
func (n *Node) towardsLeavingPeer(r slog.Record) bool {
	if n.Draining() || strings.Contains(loglevel.Attr(r, "error"), "code = Canceled") {
		return true
	}
	addr := loglevel.Attr(r, "address")
	return slices.ContainsFunc(n.membership.Members(), func(g gossip.Member) bool {
		return g.Meta.Actor == addr && (g.Load.Draining || g.Status == gossip.StatusLeft)
	})
}

// HTTPAddr is the address the HTTP listener is bound to.
func (n *Node) HTTPAddr() string { return n.ln.Addr().String() }

// State is the node's health state: starting, joining, serving or
// draining.
func (n *Node) State() string {
	st := n.state.Load().(string)
	if st == StateServing && !n.membership.Joined() {
		return StateJoining
	}
	return st
}

// Drain asks the node to drain and stop, as SIGTERM does: it stops taking
// placements, passivates its actors, leaves the cluster and shuts down.
func (n *Node) Drain() { n.drainOne.Do(func() { close(n.drainReq) }) }

// Actors is the node's actor system.
func (n *Node) Actors() *actors.System { return n.actors }

// Events is the node's handle on the accounts' event streams: what
// appends fraud, call and context events, and serves them.
func (n *Node) Events() *events.Stream { return n.events }

// Registry is the node's metrics registry.
func (n *Node) Registry() *prometheus.Registry { return n.registry }

// Run serves until ctx ends, then shuts the node down gracefully. It
// returns nil after a clean shutdown.
func (n *Node) Run(ctx context.Context) error {
	if n.ran.Swap(true) {
		return errors.New("node: Run called twice")
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- n.http.Serve(n.ln) }()
	sipCtx, stopSIP := context.WithCancel(context.Background())
	defer stopSIP()
	sipErr := make(chan error, 2)
	go func() { sipErr <- n.sip.Run(sipCtx) }()
	go func() { sipErr <- n.dns.Run(sipCtx) }()
	stopEvents := background(func(ctx context.Context) { _ = n.events.Run(ctx) })
	stopSweep := background(n.runCallSweeper)
	stopCallEvents := background(n.callEvents.run)

	// Log accounts and feature servers stored under ids that the DNS
	// label rule now refuses (issue 9), while /healthz says starting.
	n.actors.ReportInvalidIDs(ctx)
	if n.cfg.Demo {
		if err := n.provisionDemo(ctx); err != nil {
			n.log.Error("demo provisioning failed", "err", err)
		}
	}
	n.state.Store(StateServing)
	limit, gcPercent := collectorSettings()
	n.log.Info("node serving", "http", n.HTTPAddr(), "zone", n.cfg.Zone, "memory_limit", limit, "gc_percent", gcPercent)

	var err error
	select {
	case <-ctx.Done():
	case <-n.drainReq:
	case err = <-serveErr:
		err = fmt.Errorf("node: HTTP server stopped: %w", err)
	case err = <-sipErr:
		err = fmt.Errorf("node: SIP edge or DNS responder stopped: %w", err)
	}
	n.state.Store(StateDraining)
	n.sip.StopTakingCalls() // 503 to new calls; calls in progress go on
	n.log.Info("node draining")
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	stopSweep()
	n.drain(sctx)
	stopSIP()
	n.sip.Close()
	_ = n.dns.Close()
	stopCallEvents()     // what is queued is appended before the streams end
	_ = n.events.Close() // ends the event streams, so that Shutdown need not wait for them
	if serr := n.http.Shutdown(sctx); serr != nil {
		n.log.Warn("HTTP shutdown did not finish in time", "err", serr)
		_ = n.http.Close()
	}
	if err == nil {
		if e := <-serveErr; e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = e
		}
	}
	stopEvents() // webhook deliveries: another node's sweep takes them over
	if cerr := n.closers.close(); cerr != nil && err == nil {
		err = cerr
	}
	n.log.Info("node stopped")
	return err
}

// background runs f on its own goroutine until the returned stop, which
// cancels f's context and waits for f to return.
func background(f func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Close releases a node whose Run was never called.
func (n *Node) Close() error {
	if n.ran.Swap(true) {
		return nil
	}
	return n.closers.close()
}

// drain stops new placements here, serves the live calls for half the
// shutdown timeout and ends those still up (interrupted), passivates this
// node's actors (their state is stored already) so that their next
// message activates them elsewhere, and leaves the cluster.
func (n *Node) drain(ctx context.Context) {
	n.membership.SetDraining()
	n.endCalls(ctx, time.Now().Add(n.cfg.ShutdownTimeout/2))
	pctx, cancel := context.WithTimeout(ctx, n.cfg.ShutdownTimeout/4)
	defer cancel()
	if err := n.actors.PassivateAll(pctx); err != nil {
		n.log.Warn("drain: not every actor passivated in time", "err", err)
	}
	if err := n.membership.Leave(2 * time.Second); err != nil {
		n.log.Warn("drain: leaving the cluster", "err", err)
	}
}

// collectorSettings reads the process's memory limit ("none" when there is
// none) and GC percent ("off" when disabled), for the log.
func collectorSettings() (limit, gcPercent string) {
	ms := []metrics.Sample{{Name: "/gc/gomemlimit:bytes"}, {Name: "/gc/gogc:percent"}}
	metrics.Read(ms)
	limit, gcPercent = "none", "off"
	if ms[0].Value.Kind() == metrics.KindUint64 && ms[0].Value.Uint64() < math.MaxInt64 {
		limit = strconv.FormatUint(ms[0].Value.Uint64(), 10)
	}
	if ms[1].Value.Kind() == metrics.KindUint64 && int64(ms[1].Value.Uint64()) >= 0 {
		gcPercent = strconv.FormatInt(int64(ms[1].Value.Uint64()), 10)
	}
	return limit, gcPercent
}
