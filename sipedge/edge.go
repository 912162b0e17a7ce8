package sipedge

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"golang.org/x/time/rate"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/internal/loglevel"
)

// hopHeader marks an INVITE that a peer's edge placed on this node: its
// value is the edge node's name. It is honoured only from a peer's SIP
// address and removed before the request goes on.
const hopHeader = "X-Switchboard-Hop"

// Edge is one node's SIP edge: listeners, the registrar and the stateful
// proxy.
type Edge struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	flood    *flood
	declared *declared // declared trusted sources (trust.go)
	// seenViews holds the account snapshot each account's declared
	// sources were last taken from (trust.go).
	seenViews sync.Map
	shared    *rate.Limiter // the rate all declared sources share
	rateLog   *limiter[netip.Addr]
	health    *health
	streams   *streams
	logLimit  *limiter[netip.Addr]
	// passed is the datagram the read filter passed last, with its source:
	// sipgo's record of a parse failure names only the data (filter.go).
	passed struct {
		sync.Mutex
		from net.Addr
		data []byte
	}
	routeKey []byte      // signs this edge's Record-Route entries (dialog.go)
	flows    *flows      // the device flows this edge holds (flows.go)
	draining atomic.Bool // new calls are refused (503) while the node drains

	trustMu    sync.Mutex
	trustedIPs map[netip.Addr]time.Time

	hintMu sync.Mutex
	hints  map[string]cachedHint

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	cli *sipgo.Client

	udp      net.PacketConn
	tcp      net.Listener
	tls      net.Listener
	advHost  string
	advPort  int
	closeOne sync.Once
	done     chan struct{}
	wg       sync.WaitGroup
}

// New binds the edge's listeners. Run serves them.
func New(cfg Config) (_ *Edge, err error) {
	setTransactionTimers()
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.RouteSecret) == 0 {
		cfg.RouteSecret = make([]byte, 32)
		_, _ = rand.Read(cfg.RouteSecret)
	}
	m, err := newMetrics(cfg.Registerer, cfg.LiveCalls)
	if err != nil {
		return nil, err
	}
	e := &Edge{
		cfg: cfg, log: cfg.Logger.With("component", "sipedge"), metrics: m,
		flood: newFlood(cfg.Flood), health: newHealth(cfg.Health), logLimit: newLimiter[netip.Addr](cfg.LogEvery),
		done: make(chan struct{}), trustedIPs: map[netip.Addr]time.Time{}, hints: map[string]cachedHint{},
		routeKey: routeKey(cfg.RouteSecret), flows: newFlows(),
		declared: newDeclared(cfg.Trust.Sources, cfg.Trust.TTL), shared: rate.NewLimiter(cfg.Trust.limit(), cfg.Trust.Burst),
		rateLog: newLimiter[netip.Addr](cfg.LogEvery),
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.cfg.Accounts == nil {
		// Standalone (tests): snapshots of its own, which only age out.
		vc := accountview.DefaultConfig()
		vc.Actors, vc.Clock = cfg.Actors, cfg.Clock
		if e.cfg.Accounts, err = accountview.New(vc); err != nil {
			return nil, err
		}
	}
	e.streams = newStreams(cfg.Streams, func(ip netip.Addr) bool { return e.trusted(ip, e.now()) }, e.streamClosed, e.flows.closed)
	if err := e.listen(); err != nil {
		return nil, err
	}
	adv := cmp.Or(cfg.Advertise, e.udp.LocalAddr().String())
	host, port, err := net.SplitHostPort(adv)
	if err != nil {
		return nil, fmt.Errorf("sipedge: advertised address %q: %w", adv, err)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("sipedge: --sip %s binds every address; set the address to advertise in Via and Record-Route", cfg.Addr)
	}
	e.advHost, e.advPort = host, portOr(port, 5060)

	// sipgo logs routine events at info and below; keep its warnings. An
	// unparsable datagram is answered from sipgo's record of it
	// (filter.go).
	sipLog := slog.New(sipgoFilter{e: e, h: loglevel.AtLeast(cfg.Logger.Handler(), slog.LevelWarn),
		limit: newLimiter[string](cfg.LogEvery)}).With("component", "sipgo")
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("switchboard"),
		sipgo.WithUserAgentHostname(e.advHost),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(e.readFilter), sip.WithTransportLayerLogger(sipLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog), sip.WithTransactionLayerUnhandledResponseHandler(e.strayResponse)),
	)
	if err != nil {
		return nil, err
	}
	e.ua = ua
	if e.srv, err = sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return nil, err
	}
	if e.cli, err = sipgo.NewClient(ua, sipgo.WithClientLogger(sipLog), sipgo.WithClientHostname(e.advHost), sipgo.WithClientPort(e.advPort)); err != nil {
		return nil, err
	}
	for _, m := range methods {
		e.srv.OnRequest(m, e.onRequest)
	}
	e.srv.OnNoRoute(e.onRequest)
	return e, nil
}

func (e *Edge) listen() error {
	var err error
	// UDP and TCP share one port; with port 0, TCP takes the port UDP got.
	for range 5 {
		if e.udp, err = net.ListenPacket("udp", e.cfg.Addr); err != nil {
			return fmt.Errorf("sipedge: listening for SIP over UDP on %s: %w", e.cfg.Addr, err)
		}
		if e.tcp, err = net.Listen("tcp", e.udp.LocalAddr().String()); err == nil {
			break
		}
		_ = e.udp.Close()
		e.udp = nil
		if !strings.HasSuffix(e.cfg.Addr, ":0") {
			return fmt.Errorf("sipedge: listening for SIP over TCP on %s: %w", e.cfg.Addr, err)
		}
	}
	if err != nil {
		return fmt.Errorf("sipedge: no port free for both UDP and TCP near %s: %w", e.cfg.Addr, err)
	}
	if e.cfg.TLSAddr != "" {
		cert, err := tls.LoadX509KeyPair(e.cfg.CertFile, e.cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("sipedge: loading the TLS certificate %s and key %s: %w", e.cfg.CertFile, e.cfg.KeyFile, err)
		}
		e.tls, err = tls.Listen("tcp", e.cfg.TLSAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		if err != nil {
			return fmt.Errorf("sipedge: listening for SIP over TLS on %s: %w", e.cfg.TLSAddr, err)
		}
	}
	return nil
}

// Addr is the bound UDP/TCP address.
func (e *Edge) Addr() string { return e.udp.LocalAddr().String() }

// TLSAddr is the bound TLS address, or "".
func (e *Edge) TLSAddr() string {
	if e.tls == nil {
		return ""
	}
	return e.tls.Addr().String()
}

// Run serves until ctx ends, then stops the listeners and the transaction
// layer. It returns nil after a clean stop.
func (e *Edge) Run(ctx context.Context) error {
	errc := make(chan error, 3)
	serve := func(f func() error) {
		e.wg.Go(func() {
			if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
				errc <- err
			}
		})
	}
	serve(func() error { return e.srv.ServeUDP(e.udp) })
	serve(func() error { return e.srv.ServeTCP(e.streams.listen(e.tcp)) })
	if e.tls != nil {
		serve(func() error { return e.srv.ServeTLS(e.streams.listen(e.tls)) })
	}
	e.wg.Go(func() { e.probe(ctx) })
	e.wg.Go(func() {
		// Pings the silent connections of registered flows (a flow whose
		// connection dies is forgotten, flows.go), and forgets the flows
		// long past their registration.
		e.every(ctx, e.cfg.Streams.KeepAlive/4, func() {
			e.streams.keepAlive(time.Now())
			e.flows.sweep(e.now())
		})
	})
	e.log.Info("SIP edge serving", "udp_tcp", e.Addr(), "tls", e.TLSAddr())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	e.Close()
	return err
}

// Close stops the edge; Run returns after it.
func (e *Edge) Close() {
	e.closeOne.Do(func() {
		close(e.done)
		for _, c := range []io.Closer{e.udp, e.tcp, e.tls} {
			if c != nil {
				_ = c.Close()
			}
		}
		if e.ua != nil {
			_ = e.ua.Close()
		}
	})
	e.wg.Wait()
}

// streamClosed counts and logs (once per source per LogEvery) a
// connection the stream guard cut.
func (e *Edge) streamClosed(ip netip.Addr, reason string) {
	e.metrics.dropped.WithLabelValues(reason).Inc()
	if e.logLimit.allow(ip, e.now()) {
		e.log.Warn("SIP connection closed", "source", ip.String(), "reason", reason, "next_log_after", e.cfg.LogEvery)
	}
}

// Bans lists the sources banned for flooding now.
func (e *Edge) Bans() []Ban { return e.flood.Bans(e.cfg.Clock.Now()) }

// every runs f every d until ctx ends or the edge closes.
func (e *Edge) every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.done:
			return
		case <-t.C:
			f()
		}
	}
}

// StopTakingCalls makes the edge answer new calls (out-of-dialog INVITEs
// from devices and trunks) 503 with Retry-After, so that callers move to
// another node of the account's name, while the calls in progress keep
// their signalling. A node calls it when it starts to drain.
func (e *Edge) StopTakingCalls() { e.draining.Store(true) }

// Flows lists the device flows this edge holds (its edge actors), oldest
// first, at most limit (0: all).
func (e *Edge) Flows(limit int) []Flow { return e.flows.list(e.now(), limit) }

// Targets lists the feature-server targets this node probes.
func (e *Edge) Targets() []TargetHealth { return e.health.Snapshot() }

// TargetUp says whether this node considers a feature-server target up.
func (e *Edge) TargetUp(addr, transport string) bool { return e.health.Up(addr, transport) }

// isSelf says whether uri names this edge (a Route or Record-Route entry).
func (e *Edge) isSelf(uri sip.Uri) bool {
	return strings.EqualFold(uri.Host, e.advHost) && cmp.Or(uri.Port, 5060) == e.advPort
}

func (e *Edge) actorCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, e.cfg.ActorTimeout)
}

// respond sends a final response the edge made itself.
func (e *Edge) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, headers ...[2]string) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.SipVersion = "SIP/2.0"
	for _, h := range headers {
		res.AppendHeader(sip.NewHeader(h[0], h[1]))
	}
	e.send(req, tx, res)
}

func (e *Edge) rejectWith(req *sip.Request, tx sip.ServerTransaction, r *Reject) {
	e.respond(req, tx, r.Code, r.Reason, r.Headers...)
}

func (e *Edge) send(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) {
	e.metrics.response(string(req.Method), res.StatusCode)
	var err error
	if tx != nil {
		err = tx.Respond(res)
	} else {
		err = e.srv.WriteResponse(res)
	}
	if err != nil {
		e.log.Debug("sending a response failed", "call_id", callID(req), "code", res.StatusCode, "err", err)
	}
}

func callID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// portOr is the port number s names, or def when s is not a number.
func portOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// sipgoFilter passes sipgo's records to h (which keeps its warnings), at
// most one per source (its raddr) and message per limit interval, and never with
// packet content: the "data" attribute (sipgo puts a whole unparsable
// message there) is withheld, and an "error" is cut where it starts
// quoting the packet. A record of a datagram sipgo could not parse is the
// edge's to answer first (Edge.parseFailed).
type sipgoFilter struct {
	e     *Edge
	h     slog.Handler
	limit *limiter[string]
}

func (f sipgoFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || f.h.Enabled(ctx, l)
}

func (f sipgoFilter) Handle(ctx context.Context, r slog.Record) error {
	if f.e.parseFailed(r) || !f.h.Enabled(ctx, r.Level) {
		return nil
	}
	clean := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	key := r.Message
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data":
			a = slog.String("data", "[content withheld]")
		case "error", "err":
			a = slog.String(a.Key, withheld(a.Value.String()))
		case "raddr", "source":
			if ap, err := netip.ParseAddrPort(a.Value.String()); err == nil {
				key += "\x00" + ap.Addr().String()
			}
		}
		clean.AddAttrs(a)
		return true
	})
	if !f.limit.allow(key, f.e.now()) {
		return nil
	}
	return f.h.Handle(ctx, clean)
}

func (f sipgoFilter) WithAttrs(a []slog.Attr) slog.Handler {
	f.h = f.h.WithAttrs(a)
	return f
}

func (f sipgoFilter) WithGroup(n string) slog.Handler {
	f.h = f.h.WithGroup(n)
	return f
}

// timeNow is the edge's clock.
func (e *Edge) now() time.Time { return e.cfg.Clock.Now() }
