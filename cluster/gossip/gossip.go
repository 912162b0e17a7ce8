package gossip

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	// ErrClosed is returned by the methods of a Gossip after Shutdown.
	ErrClosed = errors.New("gossip: shut down")
	// ErrRunning is returned by a second call of Run.
	ErrRunning = errors.New("gossip: Run already called")
)

const (
	// updateTimeout bounds how long UpdateMeta waits for memberlist to send
	// the new metadata; after it, gossip still delivers it.
	updateTimeout = 2 * time.Second
	// defaultLeaveTimeout is Leave's wait when given none (memberlist would
	// wait forever).
	defaultLeaveTimeout = 5 * time.Second
	// maxReportBroadcast is the largest load report that fits a gossip
	// packet beside memberlist's own messages (1400-byte UDP buffer, less
	// framing and encryption). A larger one spreads by push-pull only.
	maxReportBroadcast = 1024
)

// Gossip is one node's membership: a memberlist instance, the member table
// built from its events, and the load reports spread over it. It is safe
// for concurrent use.
type Gossip struct {
	cfg   Config
	log   *slog.Logger
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	addr  string // advertised gossip host:port
	epoch uint64 // orders this process's reports after any earlier ones with the same ID

	mu        sync.Mutex // guards the fields below; never held while calling memberlist
	tbl       *table
	metaBytes []byte
	seq       uint64

	alive        atomic.Int64  // members memberlist counts alive, for the broadcast queue
	changed      chan struct{} // cap 1: a change for OnChange is pending
	joined       atomic.Bool
	left         atomic.Bool
	running      atomic.Bool
	joinAttempts atomic.Int64 // join attempts made by Run (tests read it)
	warnedSize   atomic.Bool

	lifeMu      sync.Mutex // serializes Leave and Shutdown (memberlist panics on Leave after Shutdown)
	closed      chan struct{}
	shutdownErr error
}

// New validates cfg, creates the memberlist instance and binds its UDP and
// TCP listeners. It does not join: Run does.
func New(cfg Config) (*Gossip, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	metaBytes, err := cfg.Meta.Encode()
	if err != nil {
		return nil, err
	}
	if cfg.Rand == nil {
		h := fnv.New64a()
		h.Write([]byte(cfg.ID))
		cfg.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), h.Sum64()))
	}
	g := &Gossip{
		cfg:       cfg,
		log:       cfg.Logger.With(slog.String("component", "gossip")),
		epoch:     uint64(time.Now().UnixNano()),
		tbl:       newTable(cfg.ID, cfg.SuspectAfter, cfg.DeadRetention),
		metaBytes: metaBytes,
		changed:   make(chan struct{}, 1),
		closed:    make(chan struct{}),
	}

	mc := memberlist.DefaultLANConfig()
	if cfg.Profile == ProfileLocal {
		mc = memberlist.DefaultLocalConfig()
	}
	mc.Name = cfg.ID
	// Lifeguard stretches a suspicion to SuspicionMaxTimeoutMult times its
	// minimum when no peer confirms it; in a small cluster a member that
	// misses the one confirmation then waits 18 s (local) or 24 s (LAN) to
	// declare a dead node dead, and its actors stay unreachable that long.
	// Twice the minimum keeps Lifeguard's slack and bounds failover.
	mc.SuspicionMaxTimeoutMult = 2
	bindIP, bindPort, _ := splitIPPort(cfg.BindAddr) // validated
	mc.BindAddr, mc.BindPort = bindIP.String(), bindPort
	mc.AdvertiseAddr, mc.AdvertisePort = "", bindPort // memberlist replaces the port when bindPort is 0
	if cfg.AdvertiseAddr != "" {
		ip, port, _ := splitIPPort(cfg.AdvertiseAddr)
		mc.AdvertiseAddr = ip.String()
		if port != 0 {
			mc.AdvertisePort = port
		}
	}
	mc.SecretKey = slices.Clone(cfg.SecretKey)
	mc.Delegate = delegate{g}
	mc.Events = delegate{g}
	mc.Logger = memberlistLogger(g.log)
	g.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(g.alive.Load()) },
		RetransmitMult: mc.RetransmitMult,
	}

	ml, err := memberlist.Create(mc) // reports this node's own join to delegate
	if err != nil {
		return nil, fmt.Errorf("gossip: listen on %s: %w", cfg.BindAddr, err)
	}
	g.ml = ml
	g.mu.Lock()
	g.addr = g.tbl.local().Addr
	g.mu.Unlock()
	if len(g.others(g.cfg.Join)) == 0 {
		g.joined.Store(true)
	}
	return g, nil
}

// Run joins the seeds, retrying with jittered exponential backoff until one
// answers (or another node joins this one), then gossips this node's load
// every LoadInterval and calls OnChange after changes. It returns nil when
// ctx ends or the Gossip is shut down; a join attempt under way finishes
// first (memberlist bounds it by its TCP timeout: 1s local, 10s LAN). Run
// may be called once; the caller owns its goroutine.
func (g *Gossip) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	if g.isClosed() {
		return ErrClosed
	}
	if !g.join(ctx) {
		return nil
	}
	g.publishLoad()
	for g.wait(ctx, g.cfg.LoadInterval) {
		g.publishLoad()
		g.sweep()
	}
	return nil
}

// join retries until joined; false when ctx ended or Shutdown came first.
func (g *Gossip) join(ctx context.Context) bool {
	seeds := g.others(g.cfg.Join)
	for attempt := 0; !g.joined.Load(); attempt++ {
		if g.isClosed() || ctx.Err() != nil {
			return false
		}
		if g.ml.NumMembers() > 1 { // another node joined us
			g.joined.Store(true)
			g.log.Info("joined the cluster: another node contacted this one")
			break
		}
		g.joinAttempts.Add(1)
		n, err := g.ml.Join(seeds)
		if n > 0 {
			g.joined.Store(true)
			g.log.Info("joined the cluster", slog.Int("seeds_answered", n), slog.Int("attempts", attempt+1))
			break
		}
		wait := joinBackoff(attempt, g.cfg.JoinBackoffMin, g.cfg.JoinBackoffMax, g.cfg.Rand)
		level := slog.LevelDebug
		if attempt == 0 {
			level = slog.LevelWarn
		}
		g.log.Log(ctx, level, "no seed answered; retrying", slog.Any("seeds", seeds),
			slog.Int("attempt", attempt+1), slog.Duration("retry_in", wait), slog.Any("error", err))
		if !g.wait(ctx, wait) {
			return false
		}
	}
	return true
}

// wait sleeps d while still serving OnChange; false when ctx ended or
// Shutdown came first.
func (g *Gossip) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-g.closed:
			return false
		case <-g.changed:
			g.notify()
		case <-t.C:
			return true
		}
	}
}

// others are addrs without this node's own address (seeds: cfg.Join's).
func (g *Gossip) others(addrs []string) []string {
	return slices.DeleteFunc(slices.Clone(addrs), func(a string) bool { return sameAddr(a, g.addr) || sameAddr(a, g.cfg.BindAddr) })
}

func sameAddr(a, b string) bool {
	pa, errA := netip.ParseAddrPort(a)
	pb, errB := netip.ParseAddrPort(b)
	if errA == nil && errB == nil {
		return pa.Addr().Unmap() == pb.Addr().Unmap() && pa.Port() == pb.Port()
	}
	return a == b
}

// publishLoad samples LoadFunc, records the report locally and queues it for
// gossip (unless this node left).
func (g *Gossip) publishLoad() {
	l := g.cfg.LoadFunc().clone()
	if math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0) {
		l.CPU = 0
	}
	leaving := g.left.Load()
	r := g.recordLocal(l, leaving)
	if leaving {
		return
	}
	msg := encodeLoadReport(r)
	if len(msg) > maxReportBroadcast && !g.warnedSize.Swap(true) {
		g.log.Warn("load report too large for a gossip packet; it spreads by push-pull only (every 15-30s)",
			slog.Int("bytes", len(msg)), slog.Int("limit", maxReportBroadcast), slog.Int("kinds", len(l.Activations)))
	}
	g.queue.QueueBroadcast(&loadBroadcast{id: r.ID, msg: msg})
}

// recordLocal numbers a report of this node's load and records it.
func (g *Gossip) recordLocal(l Load, leaving bool) loadReport {
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	g.seq++
	r := loadReport{ID: g.cfg.ID, Addr: g.addr, Epoch: g.epoch, Seq: g.seq, Load: l, Leaving: leaving}
	changed := g.tbl.setLocal(r, now)
	g.mu.Unlock()
	if changed {
		g.signal()
	}
	return r
}

// receive applies a gossip message or push-pull state; a report newer than
// the one held is passed on when rebroadcast is set.
func (g *Gossip) receive(b []byte, rebroadcast bool) {
	reports, known, err := decodeMessage(b)
	if err != nil {
		g.log.Warn("dropping undecodable gossip data", slog.Any("error", err))
		return
	}
	if !known {
		return // a newer node's message type
	}
	now := g.cfg.Clock.Now()
	var fresh []loadReport
	statusChanged := false
	g.mu.Lock()
	for _, r := range reports {
		newer, sc := g.tbl.applyReport(r, now)
		if newer {
			fresh = append(fresh, r)
		}
		statusChanged = statusChanged || sc
	}
	g.mu.Unlock()
	if rebroadcast {
		for _, r := range fresh {
			g.queue.QueueBroadcast(&loadBroadcast{id: r.ID, msg: encodeLoadReport(r)})
		}
	}
	if statusChanged {
		g.signal()
	}
}

// observe applies a memberlist event (see delegate for its threading).
func (g *Gossip) observe(ev nodeEvent) {
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	changed, metaErr := g.tbl.observe(ev, now)
	g.alive.Store(int64(g.tbl.numAlive()))
	e := g.tbl.entries[ev.ID]
	name, status := e.meta.Name, e.status
	g.mu.Unlock()
	if metaErr != nil {
		g.log.Warn("member sent metadata this version cannot read; is it a Switchboard node?",
			slog.String("member", ev.ID), slog.String("addr", ev.Addr), slog.Any("error", metaErr))
	}
	if changed && ev.ID != g.cfg.ID {
		g.log.Info("member "+string(status), slog.String("member", ev.ID), slog.String("name", name), slog.String("addr", ev.Addr))
	}
	if changed {
		g.signal()
	}
}

// sweep ages the table (suspicion, retention) and syncs with strangers:
// nodes that send load reports but that memberlist has not announced. That
// happens when two nodes join through the same seed at once: the seed's
// push-pull answers predate each other, and its alive broadcast (a few
// transmissions to random nodes) may miss one of them until the next
// push-pull.
func (g *Gossip) sweep() {
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	changed := g.tbl.tick(now)
	strangers := g.tbl.strangers(now, 3*g.cfg.LoadInterval, 5*g.cfg.LoadInterval)
	g.mu.Unlock()
	if changed {
		g.signal()
	}
	if len(strangers) > 0 && !g.left.Load() && !g.isClosed() {
		n, err := g.ml.Join(strangers)
		g.log.Debug("synced with nodes memberlist had not announced", slog.Any("addrs", strangers),
			slog.Int("answered", n), slog.Any("error", err))
	}
}

// signal marks a change for OnChange without blocking.
func (g *Gossip) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

func (g *Gossip) notify() {
	if g.cfg.OnChange != nil {
		g.cfg.OnChange()
	}
}

func (g *Gossip) isClosed() bool {
	select {
	case <-g.closed:
		return true
	default:
		return false
	}
}

// JoinMore contacts nodes learnt outside gossip (such as the liveness
// records in the shared store) once, and reports how many answered. A node
// that answers merges its cluster with this node's; addresses of this node
// are skipped. It blocks for memberlist's join (bounded by its TCP
// timeout per address) and may be called from any goroutine while Run
// runs; after Leave or Shutdown it returns ErrClosed.
func (g *Gossip) JoinMore(addrs []string) (int, error) {
	if g.isClosed() || g.left.Load() {
		return 0, ErrClosed
	}
	out := g.others(addrs)
	if len(out) == 0 {
		return 0, nil
	}
	n, err := g.ml.Join(out)
	if n > 0 {
		g.joined.Store(true)
	}
	return n, err
}

// Joined tells whether this node has joined a cluster: at once when it has
// no seeds, else once a seed answered or another node contacted it.
func (g *Gossip) Joined() bool { return g.joined.Load() }

// Addr is the gossip host:port other nodes reach this one at (the real port
// when BindAddr asked for port 0).
func (g *Gossip) Addr() string { return g.addr }

// LocalID is this node's ID (Config.ID).
func (g *Gossip) LocalID() string { return g.cfg.ID }

// Members returns every known member, sorted by ID: alive and suspect ones,
// dead and left ones for DeadRetention, and this node (Local).
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tbl.members()
}

// UpdateMeta replaces this node's metadata and re-gossips it. It returns
// once memberlist sent it or after a short wait; gossip delivers it either
// way. Invalid or oversized metadata is refused with the old one kept.
func (g *Gossip) UpdateMeta(m Meta) error {
	if err := m.Validate(); err != nil {
		return err
	}
	b, err := m.Encode()
	if err != nil {
		return err
	}
	if g.isClosed() {
		return ErrClosed
	}
	g.mu.Lock()
	g.metaBytes = b
	changed := g.tbl.setLocalMeta(m)
	g.mu.Unlock()
	if err := g.ml.UpdateNode(updateTimeout); err != nil {
		g.log.Debug("metadata update not yet sent; gossip will deliver it", slog.Any("error", err))
	}
	if changed {
		g.signal()
	}
	return nil
}

// Leave tells the cluster this node leaves: the others list it as left,
// not dead. It sends a last load report that says so, then memberlist's
// leave message, waiting up to timeout (5s if timeout <= 0) in all for
// them to go out. memberlist keeps running until Shutdown; load reports
// stop.
func (g *Gossip) Leave(timeout time.Duration) error {
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	if g.isClosed() {
		return ErrClosed
	}
	if timeout <= 0 {
		timeout = defaultLeaveTimeout
	}
	deadline := time.Now().Add(timeout)
	if !g.left.Swap(true) {
		g.mu.Lock()
		last := g.tbl.local().Load
		g.mu.Unlock()
		r := g.recordLocal(last, true)
		b := &loadBroadcast{id: r.ID, msg: encodeLoadReport(r), notify: make(chan struct{})}
		g.queue.QueueBroadcast(b)
		if g.alive.Load() > 1 {
			t := time.NewTimer(timeout)
			select {
			case <-b.notify:
			case <-t.C:
				g.log.Warn("leave: last load report not yet sent; others may list this node dead rather than left")
			}
			t.Stop()
		}
	}
	if err := g.ml.Leave(max(time.Until(deadline), 100*time.Millisecond)); err != nil {
		return fmt.Errorf("gossip: leave: %w", err)
	}
	return nil
}

// Shutdown stops memberlist and everything this package started; Run
// returns. Without Leave first, the others see this node suspect, then
// dead. It is idempotent.
func (g *Gossip) Shutdown() error {
	g.lifeMu.Lock()
	defer g.lifeMu.Unlock()
	if g.isClosed() {
		return g.shutdownErr
	}
	close(g.closed)
	if err := g.ml.Shutdown(); err != nil {
		g.shutdownErr = fmt.Errorf("gossip: shutdown: %w", err)
	}
	return g.shutdownErr
}

// joinBackoff is the wait after failed join attempt n (from 0):
// lo·2ⁿ capped at hi, of which half is fixed and half drawn from r.
func joinBackoff(n int, lo, hi time.Duration, r *rand.Rand) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + time.Duration(r.Int64N(int64(d-half)+1))
}
