package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/cluster/gossip"
	"github.com/switchboard-pbx/switchboard/placement"
)

// dialTimeout bounds a connection attempt to another member's remoting.
const dialTimeout = time.Second

// Config configures a cluster member.
type Config struct {
	// Name is the node's human name (--name); Pool its pool (--pool).
	Name, Pool string
	// ActorAddr is the protoactor remote listen address (--actor).
	// Default 127.0.0.1:8090; port 0 picks one.
	ActorAddr string
	// GossipAddr is the memberlist bind address (--gossip). Default
	// 127.0.0.1:7946; port 0 picks one.
	GossipAddr string
	// Join lists seed gossip addresses (--join); empty starts a new cluster.
	Join []string
	// GossipKey encrypts gossip (16, 24 or 32 bytes; --gossip-key).
	GossipKey []byte
	// Profile is gossip's timing profile: "lan" (default) or "local" (tests).
	Profile string
	// LoadInterval is how often the member gossips its load. Default 1s.
	LoadInterval time.Duration
	// CPU reports this node's CPU use (0 to 1) for its load reports, which
	// tier 2 holds against the pool's CPU limit. Default: the process's,
	// from getrusage. Tests that run several members in one process, which
	// share its CPU, set their own.
	CPU func() float64
	// Lookup configures the identity lookup.
	Lookup LookupConfig
	// Peers, when set, tells of nodes alive outside gossip; the member
	// joins those gossip does not list (see PeerSource). Default nil.
	Peers PeerSource
	// Logger and Registerer receive the member's logs and metrics.
	// Default: discard, none.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultConfig returns a Config with every default filled; Name and Pool
// remain to be set.
func DefaultConfig() Config {
	return Config{
		ActorAddr:    "127.0.0.1:8090",
		GossipAddr:   "127.0.0.1:7946",
		Profile:      gossip.ProfileLAN,
		LoadInterval: time.Second,
		Lookup:       DefaultLookupConfig(),
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	_, port, err := net.SplitHostPort(c.ActorAddr)
	if err != nil {
		return fmt.Errorf("cluster: --actor %q is not host:port: %w", c.ActorAddr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("cluster: --actor %q: bad port", c.ActorAddr)
	}
	if c.LoadInterval <= 0 {
		return errors.New("cluster: Config.LoadInterval must be positive")
	}
	return c.Lookup.Validate()
}

// Services are the addresses a member advertises to the others in its
// gossip metadata.
type Services struct{ SIP, HTTP, DNS string }

// Membership is this node's membership in the cluster: gossip, the protoactor
// cluster on top of it, and the identity lookup. It comes up in three
// steps: New checks the configuration, Start (the actor system's lookup
// factory) starts remoting and the lookup, Join starts gossip.
type Membership struct {
	cfg      Config
	as       *actor.ActorSystem
	pc       *protocluster.Cluster
	g        *gossip.Gossip
	lookup   *Lookup
	metrics  *metrics
	log      *slog.Logger
	clk      clock.Clock
	draining atomic.Bool
	cpu      cpuSampler
	// topoMu serializes publishTopology: gossip's OnChange and Start both
	// publish, and a view read before a join but handed over after it
	// would drop the members just joined (and protoactor blocks a member
	// it saw leave, forever).
	topoMu sync.Mutex

	runCancel context.CancelFunc
	runDone   chan struct{}
	closeOnce sync.Once
}

// New returns a member that has started nothing: its zero fields take
// DefaultConfig's values. Close releases it whatever step it reached.
func New(cfg Config) (*Membership, error) {
	def := DefaultConfig()
	cfg.Logger = cmp.Or(cfg.Logger, def.Logger)
	cfg.ActorAddr = cmp.Or(cfg.ActorAddr, def.ActorAddr)
	cfg.GossipAddr = cmp.Or(cfg.GossipAddr, def.GossipAddr)
	cfg.Profile = cmp.Or(cfg.Profile, def.Profile)
	cfg.LoadInterval = cmp.Or(cfg.LoadInterval, def.LoadInterval)
	cfg.Lookup = cfg.Lookup.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// protoactor's remote panics when it cannot listen; find out first.
	if _, port, _ := net.SplitHostPort(cfg.ActorAddr); port != "0" {
		ln, err := net.Listen("tcp", cfg.ActorAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: cannot listen for actors on %s: %w", cfg.ActorAddr, err)
		}
		_ = ln.Close()
	}
	mt, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Membership{cfg: cfg, metrics: mt, log: cfg.Logger.With("component", "cluster")}, nil
}

// Start starts protoactor remoting on the actor system as (on
// Config.ActorAddr) and the identity lookup, whose activations spawn
// starts: it is the actor system's lookup factory (actors.Config.NewLookup).
// The lookup places nothing until Join.
func (m *Membership) Start(as *actor.ActorSystem, spawn actors.Spawner, clk clock.Clock) (lk actors.Lookup, err error) {
	if m.as != nil {
		return nil, errors.New("cluster: the member started already")
	}
	host, portStr, _ := net.SplitHostPort(m.cfg.ActorAddr) // Validate checked it
	port, _ := strconv.Atoi(portStr)
	m.as, m.clk = as, clk
	m.lookup = newLookup(as, spawn, clk, m.cfg.Lookup, m, m.log, m.metrics)

	kinds := make([]*protocluster.Kind, 0, len(actors.Kinds()))
	for _, k := range actors.Kinds() {
		// Our activator spawns activations; the kind only advertises.
		kinds = append(kinds, protocluster.NewKind(k, actor.PropsFromFunc(func(actor.Context) {})))
	}
	rcfg := remote.Configure(host, port, remote.WithDialOptions(
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Dial blocking and fail fast: protoactor's endpoint writer does
		// not close a connection whose stream fails, so a lazy dial to a
		// dead member would leak a reconnecting ClientConn per attempt.
		grpc.WithBlock(), grpc.FailOnNonTempDialError(true), grpc.WithTimeout(dialTimeout), //nolint:staticcheck // the non-deprecated API has no blocking dial
	))
	// Each retry blocks the endpoint writer for two seconds; a member that
	// does not answer twice is gone as far as this message is concerned.
	rcfg.MaxRetryCount = 2
	pcfg := protocluster.Configure("switchboard", provider{}, m.lookup, rcfg,
		protocluster.WithKinds(kinds...))
	defer func() {
		if r := recover(); r != nil {
			lk, err = nil, fmt.Errorf("cluster: starting the member: %v", r)
		}
	}()
	m.pc = protocluster.New(as, pcfg)
	m.pc.StartMember()
	return m.lookup, nil
}

// Join starts gossip on Config.GossipAddr, advertising svc, and joins the
// seeds: it waits joinWait at most for them to answer, then goes on in
// the background (see Joined). Call it after Start, once the
// node can serve what it advertises: from now on other members place
// actors here.
func (m *Membership) Join(svc Services) error {
	if m.pc == nil {
		return errors.New("cluster: Join before Start")
	}
	g, err := gossip.New(gossip.Config{
		ID: m.as.ID, BindAddr: m.cfg.GossipAddr, Join: m.cfg.Join, SecretKey: m.cfg.GossipKey, Profile: m.cfg.Profile,
		Meta:         gossip.Meta{Name: m.cfg.Name, Pool: m.cfg.Pool, Actor: m.as.Address(), SIP: svc.SIP, HTTP: svc.HTTP, DNS: svc.DNS},
		LoadInterval: m.cfg.LoadInterval, LoadFunc: m.load, OnChange: m.publishTopology, Logger: m.log,
	})
	if err != nil {
		return err
	}
	m.g = g
	ctx, cancel := context.WithCancel(context.Background())
	m.runCancel, m.runDone = cancel, make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := g.Run(ctx); err != nil {
			m.log.Error("gossip stopped", "err", err)
		}
	})
	if m.cfg.Peers != nil {
		r := &rejoiner{m: m, src: m.cfg.Peers, every: m.cfg.LoadInterval, clk: m.clk, tries: map[string]rejoinTry{}}
		wg.Go(func() { r.run(ctx) })
	}
	go func() {
		wg.Wait()
		close(m.runDone)
	}()
	m.publishTopology()
	// The seeds usually answer within milliseconds; until they do, this
	// member sees only itself and would place every new activation here,
	// beside the ones already live elsewhere.
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for deadline := time.Now().Add(joinWait); !g.Joined() && time.Now().Before(deadline); {
		<-poll.C
	}
	return nil
}

// joinWait bounds how long Join waits for the seeds to answer; past it
// the member goes on joining in the background.
const joinWait = time.Second

// Lookup is the member's identity lookup.
func (m *Membership) Lookup() *Lookup { return m.lookup }

// ID is this member's id: its actor system's id, new per process.
func (m *Membership) ID() string { return m.as.ID }

// ActorAddr is the address protoactor remoting listens on.
func (m *Membership) ActorAddr() string { return m.as.Address() }

// GossipAddr is the address gossip listens on.
func (m *Membership) GossipAddr() string {
	if m.g == nil {
		return ""
	}
	return m.g.Addr()
}

// Joined reports whether the member has joined its seeds (or needs none).
func (m *Membership) Joined() bool { return m.g != nil && m.g.Joined() }

// SetDraining marks the member draining: placements avoid it from its
// next load report on.
func (m *Membership) SetDraining() { m.draining.Store(true) }

// Members lists every member this node knows of.
func (m *Membership) Members() []gossip.Member {
	if m.g == nil {
		return nil
	}
	return m.g.Members()
}

// provider is protoactor's ClusterProvider: Membership.Join starts gossip,
// and Membership.Close leaves and stops it.
type provider struct{}

func (provider) StartMember(*protocluster.Cluster) error { return nil }

func (provider) StartClient(*protocluster.Cluster) error {
	return errors.New("cluster: client members are not supported")
}

func (provider) Shutdown(bool) error { return nil }

// publishTopology hands gossip's view to protoactor's MemberList, which
// tells the lookup (ClusterTopology event). Alive and suspect members own
// and host activations; dead and left ones do not.
func (m *Membership) publishTopology() {
	if m.g == nil || m.pc == nil {
		return
	}
	m.topoMu.Lock()
	defer m.topoMu.Unlock()
	var members []*protocluster.Member
	counts := map[string]float64{}
	for _, g := range m.g.Members() {
		st := string(g.Status)
		if g.Load.Draining && (g.Status == gossip.StatusAlive || g.Status == gossip.StatusSuspect) {
			st = "draining"
		}
		counts[st]++
		if g.Status != gossip.StatusAlive && g.Status != gossip.StatusSuspect {
			continue
		}
		host, portStr, err := net.SplitHostPort(g.Meta.Actor)
		if err != nil {
			continue
		}
		port, _ := strconv.Atoi(portStr)
		members = append(members, &protocluster.Member{Id: g.ID, Host: host, Port: int32(port), Kinds: actors.Kinds()})
	}
	for _, st := range []string{"alive", "suspect", "dead", "left", "draining"} {
		m.metrics.members.WithLabelValues(st).Set(counts[st])
	}
	m.pc.MemberList.UpdateClusterTopology(members)
}

// load is this member's load report.
func (m *Membership) load() gossip.Load {
	acts, calls := map[string]int{}, 0
	for _, h := range m.lookup.hostedSnapshot() {
		acts[h.act.Kind]++
		if h.act.LiveCall() { // calls in progress, not reads or ended calls
			calls++
		}
	}
	cpu := m.cpu.sample
	if m.cfg.CPU != nil {
		cpu = m.cfg.CPU
	}
	return gossip.Load{Activations: acts, ActiveCalls: calls, CPU: cpu(), Draining: m.draining.Load()}
}

// PlacementMembers are the alive and suspect members as placement sees
// them, with their gossiped loads.
func (m *Membership) PlacementMembers() []placement.Member {
	out, _ := m.PlacementSnapshot()
	return out
}

// PlacementSnapshot implements MemberSource.
func (m *Membership) PlacementSnapshot() ([]placement.Member, map[string]time.Time) {
	var out []placement.Member
	at := map[string]time.Time{}
	for _, g := range m.Members() {
		if g.Status != gossip.StatusAlive && g.Status != gossip.StatusSuspect {
			continue
		}
		out = append(out, placement.Member{
			ID: g.ID, Name: g.Meta.Name, Pool: g.Meta.Pool, Draining: g.Load.Draining,
			Load: placement.Load{Activations: g.Load.Activations, ActiveCalls: g.Load.ActiveCalls, CPU: g.Load.CPU},
		})
		at[g.ID] = g.LoadAt
	}
	return out, at
}

// ClusterActivations asks every alive member's activator for a page of its
// activations: of q.Kind ("" for all), after q.AfterKind and
// q.AfterIdentity, at most q.Limit (0: all), in key order.
func (m *Membership) ClusterActivations(ctx context.Context, q *clusterpb.ListActivations) ([]*clusterpb.ActivationList, error) {
	m.lookup.mu.Lock()
	topo := m.lookup.topo
	m.lookup.mu.Unlock()
	futures := make([]*actor.Future, len(topo.ids))
	for i, id := range topo.ids {
		futures[i] = m.as.Root.RequestFuture(topo.activator(id), q, ctxTimeout(ctx))
	}
	var out []*clusterpb.ActivationList
	var errs []error
	for i, f := range futures {
		res, err := f.Result()
		if err != nil {
			errs = append(errs, fmt.Errorf("member %s: %w", topo.ids[i], err))
			continue
		}
		if l, ok := res.(*clusterpb.ActivationList); ok {
			out = append(out, l)
		}
	}
	return out, errors.Join(errs...)
}

// Describe asks the identity's directory owner what it knows of it.
func (m *Membership) Describe(ctx context.Context, kind, identity string) (*clusterpb.DescribeReply, error) {
	return m.lookup.describe(kind, identity, ctxTimeout(ctx))
}

// ctxTimeout is the time left until ctx's deadline; 2s without one.
func ctxTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return 2 * time.Second
}

// Leave tells the others this member is leaving (graceful).
func (m *Membership) Leave(timeout time.Duration) error {
	if m.g == nil {
		return nil
	}
	return m.g.Leave(timeout)
}

// Close stops gossip, the lookup's actors and remoting. Call it after the
// actor system's activations have stopped.
func (m *Membership) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.runCancel != nil {
			m.runCancel()
			<-m.runDone
		}
		if m.g != nil {
			err = m.g.Shutdown()
		}
		if m.lookup != nil {
			m.lookup.Shutdown()
		}
		if m.pc != nil {
			m.pc.Gossip.Shutdown()
			// protoactor's graceful remote shutdown waits up to 10 s for
			// peers to close their streams to us; by now our actors are
			// stopped and we have left, so stop hard after a second.
			done := make(chan struct{})
			go func() {
				m.pc.Remote.Shutdown(true)
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(time.Second):
				m.pc.Remote.Shutdown(false)
				<-done
			}
		}
	})
	return err
}
