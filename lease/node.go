package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/placement"
)

// Errors of Acquire and Claim.Check. They wrap into errors that say more.
var (
	// ErrNoLease means this node's own lease is not valid: it has not
	// registered yet, or its renewals failed (the store is out of reach).
	ErrNoLease = errors.New("lease: this node's lease is not valid")
	// ErrOwnedElsewhere means another live node owns the identity.
	ErrOwnedElsewhere = errors.New("lease: owned by another live node")
	// ErrLapsed means this node's lease lapsed since the claim was made:
	// another node may have served the identity meanwhile.
	ErrLapsed = errors.New("lease: the node's lease lapsed since the claim was made")
)

// Key prefixes in the store.
const (
	nodePrefix  = "lease/node/"
	ownerPrefix = "lease/owner/"
)

func nodeKey(id string) string              { return nodePrefix + id }
func ownerKey(kind, identity string) string { return ownerPrefix + placement.Key(kind, identity) }

// encode writes a record as JSON; the record types always encode.
func encode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func decode[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// isGone tells a delete that found the record already gone or replaced.
func isGone(err error) bool {
	return errors.Is(err, persistence.ErrNotFound) || errors.Is(err, persistence.ErrConflict)
}

// opContext bounds one store call of the lease: a renewal that takes
// longer than half the TTL would not help anyway.
func (n *Node) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(n.cfg.RenewEvery, n.cfg.TTL/2))
}

// state is this node's lease as it knows it: when its last successful
// renewal began (Valid); gen counts lapses (it grows when a renewal
// succeeds after the lease had lapsed), so a claim made in an earlier
// generation is void.
type state struct {
	renewStart time.Time
	gen        uint64
}

// Node is this node's lease and its view of the others'. Safe for
// concurrent use; Run renews it from the caller's goroutine.
type Node struct {
	cfg     Config
	store   persistence.Store
	log     *slog.Logger
	metrics *metrics

	st atomic.Pointer[state]

	mu    sync.Mutex // guards self and seen
	self  NodeRecord // ID empty until Register
	seen  map[string]Observation
	noted bool // a renewal failure was logged since the last success
}

// New returns the lease of a node that has not registered yet: until
// Register succeeds, Acquire answers ErrNoLease.
func New(store persistence.Store, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, store: store, log: cfg.Logger.With("component", "lease"), metrics: m, seen: map[string]Observation{}}
	n.st.Store(&state{})
	return n, nil
}

// Register names this node (self.ID must be set) and writes its first
// liveness record and reads the others'. Call it once, before Run.
func (n *Node) Register(ctx context.Context, self NodeRecord) error {
	if self.ID == "" {
		return errors.New("lease: Register needs the node's id")
	}
	self.Process = n.cfg.Process
	n.mu.Lock()
	n.self = self
	n.mu.Unlock()
	return n.Renew(ctx)
}

// Renew rewrites this node's liveness record, extends its lease on success,
// reads the other nodes' records and deletes those left unchanged for
// ForgetAfter. Run calls it every RenewEvery; tests call it directly.
func (n *Node) Renew(ctx context.Context) error {
	n.mu.Lock()
	rec := n.self
	n.mu.Unlock()
	if rec.ID == "" {
		return errors.New("lease: Renew before Register")
	}
	start := n.cfg.Clock.Now()
	rec.RenewedAt = start.UTC()
	octx, cancel := n.opContext(ctx)
	_, err := n.store.Put(octx, nodeKey(rec.ID), encode(rec), persistence.AnyVersion)
	cancel()
	if err != nil {
		n.metrics.renewals.WithLabelValues("error").Inc()
		n.renewFailed(err)
		return fmt.Errorf("lease: renewing node %s: %w", rec.ID, err)
	}
	n.metrics.renewals.WithLabelValues("ok").Inc()
	old := n.st.Load()
	next := &state{renewStart: start, gen: old.gen}
	if !Valid(old.renewStart, start, n.cfg) {
		next.gen++ // lapsed (or first): claims made before are void
	}
	n.st.Store(next)
	n.metrics.valid.Set(1)
	n.mu.Lock()
	if n.noted {
		n.noted = false
		n.log.Info("lease renewed again")
	}
	n.mu.Unlock()
	return n.scan(ctx)
}

func (n *Node) renewFailed(err error) {
	n.mu.Lock()
	first := !n.noted
	n.noted = true
	n.mu.Unlock()
	if !n.Valid() {
		n.metrics.valid.Set(0)
	}
	if first {
		n.log.Warn("lease renewal failed; this node stops serving fenced actors if it does not renew in time",
			"err", err, "valid", n.Valid())
	}
}

// scan reads every liveness record into seen and forgets stale ones.
func (n *Node) scan(ctx context.Context) error {
	octx, cancel := n.opContext(ctx)
	defer cancel()
	items, err := persistence.ScanAll(octx, n.store, nodePrefix)
	if err != nil {
		return fmt.Errorf("lease: reading liveness records: %w", err)
	}
	found := make(map[string]versioned, len(items))
	for _, it := range items {
		id := strings.TrimPrefix(it.Key, nodePrefix)
		rec, err := decode[NodeRecord](it.Value)
		if err != nil {
			n.log.Warn("skipping an unreadable liveness record", "key", it.Key, "err", err)
			continue
		}
		found[id] = versioned{rec: rec, version: it.Version}
	}
	now := n.cfg.Clock.Now()
	n.mu.Lock()
	n.seen = observe(n.seen, found, now)
	self := n.self.ID
	var stale []Observation
	for id, o := range n.seen {
		if id != self && forgettable(o, now, n.cfg) {
			stale = append(stale, o)
		}
	}
	n.mu.Unlock()
	for _, o := range stale {
		err := n.store.Delete(octx, nodeKey(o.Record.ID), o.Version)
		if err == nil {
			n.log.Info("forgot a node whose liveness record stopped changing", "member", o.Record.ID, "name", o.Record.Name, "renewed_at", o.Record.RenewedAt)
		} else if !isGone(err) {
			return fmt.Errorf("lease: forgetting node %s: %w", o.Record.ID, err)
		}
	}
	return nil
}

// Run renews the lease every RenewEvery until ctx ends. The caller owns the
// goroutine; call Close after Run returned.
func (n *Node) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.Renew(ctx); err != nil && ctx.Err() == nil {
			n.log.Debug("lease renewal or scan failed", "err", err)
		}
	}
}

// Close ends this node's lease and deletes its liveness record, so that
// the others take over its identities at once. Call it after every claim
// was released (or abandoned) and Run has returned.
func (n *Node) Close(ctx context.Context) error {
	n.st.Store(&state{gen: n.st.Load().gen + 1})
	n.metrics.valid.Set(0)
	n.mu.Lock()
	id := n.self.ID
	n.mu.Unlock()
	if id == "" {
		return nil
	}
	octx, cancel := n.opContext(ctx)
	defer cancel()
	if err := n.store.Delete(octx, nodeKey(id), persistence.AnyVersion); err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return fmt.Errorf("lease: deleting node %s's liveness record: %w", id, err)
	}
	return nil
}

// Valid reports whether this node's lease is valid now.
func (n *Node) Valid() bool { return Valid(n.st.Load().renewStart, n.cfg.Clock.Now(), n.cfg) }

// LivePeers lists the other nodes whose liveness records are not expired,
// as of the last scan. It does no I/O.
func (n *Node) LivePeers() []NodeRecord {
	now := n.cfg.Clock.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []NodeRecord
	for id, o := range n.seen {
		if id != n.self.ID && !n.gone(o, now) {
			out = append(out, o.Record)
		}
	}
	return out
}

// Gone tells whether node id (a process: an actor system id) is expired
// or provably dead on this host, so that what it carried may be taken
// over. Its record is read from the store, as Acquire does (a node may
// have closed, or registered, since the last scan); the observation of the
// last scan gives its age when the version is the same.
func (n *Node) Gone(ctx context.Context, id string) (bool, error) {
	it, err := n.store.Get(ctx, nodeKey(id))
	if errors.Is(err, persistence.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	rec, err := decode[NodeRecord](it.Value)
	if err != nil {
		return false, fmt.Errorf("lease: liveness record of %s: %w", id, err)
	}
	now := n.cfg.Clock.Now()
	n.mu.Lock()
	o, ok := n.seen[id]
	if !ok || o.Version != it.Version {
		o = Observation{Record: rec, Version: it.Version, Since: now}
		n.seen[id] = o
	}
	n.mu.Unlock()
	return n.gone(o, now), nil
}

// gone tells whether the node observed in o is expired, or provably dead
// on this host.
func (n *Node) gone(o Observation, now time.Time) bool {
	return Expired(o, true, now, n.cfg) || DeadOnThisHost(o.Record.Process, n.cfg.Process, n.cfg.ProcessExists)
}

// Claim is one activation's ownership of an identity. Use it from one
// goroutine (the activation's).
type Claim struct {
	n       *Node
	key     string
	version uint64
	gen     uint64
}

// Acquire makes this node the owner of (kind, identity), or says why it
// cannot: ErrNoLease, ErrOwnedElsewhere (wrapped with the owner's name), or
// the store's error.
func (n *Node) Acquire(ctx context.Context, kind, identity string) (*Claim, error) {
	st := n.st.Load()
	if !Valid(st.renewStart, n.cfg.Clock.Now(), n.cfg) {
		n.metrics.acquisitions.WithLabelValues("refused").Inc()
		return nil, ErrNoLease
	}
	n.mu.Lock()
	self := n.self
	n.mu.Unlock()
	key := ownerKey(kind, identity)
	c, err := n.acquire(ctx, key, kind, identity, self)
	switch {
	case err == nil:
		n.metrics.acquisitions.WithLabelValues("taken").Inc()
		c.gen = st.gen
		return c, nil
	case errors.Is(err, ErrOwnedElsewhere):
		n.metrics.acquisitions.WithLabelValues("refused").Inc()
	default:
		n.metrics.acquisitions.WithLabelValues("error").Inc()
	}
	return nil, err
}

func (n *Node) acquire(ctx context.Context, key, kind, identity string, self NodeRecord) (*Claim, error) {
	expect := persistence.MustNotExist
	var cur *OwnerRecord
	it, err := n.store.Get(ctx, key)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("lease: reading the owner of %s: %w", kind+" "+identity, err)
	default:
		rec, err := decode[OwnerRecord](it.Value)
		if err != nil {
			return nil, fmt.Errorf("lease: owner record of %s: %w", kind+" "+identity, err)
		}
		cur, expect = &rec, it.Version
	}
	gone := false
	if cur != nil && cur.Node != self.ID {
		if gone, err = n.Gone(ctx, cur.Node); err != nil {
			return nil, fmt.Errorf("lease: is the owner of %s alive: %w", kind+" "+identity, err)
		}
	}
	if !Decide(cur, self.ID, gone) {
		return nil, fmt.Errorf("%w: %s is served by %s", ErrOwnedElsewhere, kind+" "+identity, "node "+cur.Name+" ("+cur.Node+")")
	}
	v, err := n.store.Put(ctx, key, encode(OwnerRecord{Node: self.ID, Name: self.Name, At: n.cfg.Clock.Now().UTC()}), expect)
	if errors.Is(err, persistence.ErrConflict) {
		return nil, fmt.Errorf("%w: %s was taken by another node a moment ago", ErrOwnedElsewhere, kind+" "+identity)
	}
	if err != nil {
		return nil, fmt.Errorf("lease: taking %s: %w", kind+" "+identity, err)
	}
	if cur != nil && cur.Node != self.ID {
		n.log.Info("took over an identity from an expired node", "kind", kind, "id", identity, "from", cur.Node, "from_name", cur.Name)
	}
	return &Claim{n: n, key: key, version: v}, nil
}

// Check tells until when (by the node's clock) the claim is known valid,
// or ErrLapsed: the node's lease is not valid now, or lapsed since the
// claim was made. After ErrLapsed the activation must drop its state and
// stop; a new activation acquires again.
func (c *Claim) Check() (time.Time, error) {
	st := c.n.st.Load()
	until := st.renewStart.Add(c.n.cfg.TTL - c.n.cfg.Margin)
	if st.gen != c.gen || !c.n.cfg.Clock.Now().Before(until) {
		return time.Time{}, ErrLapsed
	}
	return until, nil
}

// Release gives the identity up, unless another node took it meanwhile.
func (c *Claim) Release(ctx context.Context) error {
	err := c.n.store.Delete(ctx, c.key, c.version)
	if err != nil && !isGone(err) {
		return fmt.Errorf("lease: releasing %s: %w", strings.TrimPrefix(c.key, ownerPrefix), err)
	}
	return nil
}
