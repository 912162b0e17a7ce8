package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

// MemberSource supplies placement's view of the members: names, pools,
// gossiped loads and draining flags, with each member's LoadAt, in one
// read of the gossip table (placement calls it once per decision).
type MemberSource interface {
	PlacementSnapshot() ([]placement.Member, map[string]time.Time)
}

// LookupConfig configures the identity lookup.
type LookupConfig struct {
	// Strategies by kind; kinds not listed use Default.
	Strategies map[string]placement.Strategy
	// Default strategy. Default: bounded-load rendezvous, epsilon 0.25.
	Default placement.Strategy
	// Seed seeds the directory's random source (for strategies that draw).
	Seed uint64
	// LookupTimeout bounds finding an activation. Default 5s.
	LookupTimeout time.Duration
	// ActivateTimeout bounds an activator's spawn. Default 3s.
	ActivateTimeout time.Duration
	// HandoverTimeout bounds the wait, after a topology change, for every
	// member's claims before a directory serves new identities. Default 3s.
	HandoverTimeout time.Duration
	// DeactivateTimeout bounds an idle activation's request to stop. Default 1s.
	DeactivateTimeout time.Duration
	// OnInvalidate, when set, gets the keys another member's Invalidate
	// named (see Lookup.Invalidate). Called from the activator: it must
	// not block.
	OnInvalidate func(keys []string)
}

// DefaultLookupConfig returns the lookup's defaults.
func DefaultLookupConfig() LookupConfig {
	return LookupConfig{
		Default:       placement.NewBoundedLoad(placement.DefaultEpsilon),
		LookupTimeout: 5 * time.Second, ActivateTimeout: 3 * time.Second,
		HandoverTimeout: 3 * time.Second, DeactivateTimeout: time.Second,
	}
}

// Validate reports the first invalid setting.
func (c LookupConfig) Validate() error {
	if c.Default == nil || c.LookupTimeout <= 0 || c.ActivateTimeout <= 0 || c.HandoverTimeout <= 0 || c.DeactivateTimeout <= 0 {
		return errors.New("cluster: LookupConfig needs a Default strategy and positive timeouts")
	}
	return nil
}

// withDefaults fills c's zero fields from DefaultLookupConfig.
func (c LookupConfig) withDefaults() LookupConfig {
	def := DefaultLookupConfig()
	c.Default = cmp.Or(c.Default, def.Default)
	c.LookupTimeout = cmp.Or(c.LookupTimeout, def.LookupTimeout)
	c.ActivateTimeout = cmp.Or(c.ActivateTimeout, def.ActivateTimeout)
	c.HandoverTimeout = cmp.Or(c.HandoverTimeout, def.HandoverTimeout)
	c.DeactivateTimeout = cmp.Or(c.DeactivateTimeout, def.DeactivateTimeout)
	return c
}

// ErrNoCapacity is returned when no member may take an activation.
var ErrNoCapacity = placement.ErrNoCapacity

// Lookup is Switchboard's identity lookup: protoactor's
// cluster.IdentityLookup and the actors.Lookup seam in one. Each identity
// has a directory owner (its rendezvous owner among the topology's
// members); the owner asks the kind's placement strategy where to put a new
// activation; the target's activator spawns it. Callers cache routes and
// drop them when a message comes back undelivered.
type Lookup struct {
	as      *actor.ActorSystem
	spawn   actors.Spawner
	clk     clock.Clock
	cfg     LookupConfig
	members MemberSource
	log     *slog.Logger
	metrics *metrics
	selfID  string

	dirPID, actPID *actor.PID
	sub            *eventstream.Subscription

	mu    sync.Mutex
	topo  topology
	cache map[string]*actor.PID
	local map[string]*hosted
	index *actors.ActivationIndex // local's activations in key order
	// stoppingByKind counts local's stopping activations per kind, so that
	// countLocal is O(1).
	stoppingByKind map[string]int
	closed         bool
}

var (
	_ actors.Lookup               = (*Lookup)(nil)
	_ protocluster.IdentityLookup = (*Lookup)(nil)
)

func newLookup(as *actor.ActorSystem, spawn actors.Spawner, clk clock.Clock, cfg LookupConfig, members MemberSource, log *slog.Logger, m *metrics) *Lookup {
	cfg = cfg.withDefaults()
	return &Lookup{
		as: as, spawn: spawn, clk: clk, cfg: cfg, members: members, log: log, metrics: m, selfID: as.ID,
		cache: map[string]*actor.PID{}, local: map[string]*hosted{}, index: actors.NewActivationIndex(), stoppingByKind: map[string]int{},
	}
}

func (l *Lookup) strategy(kind string) placement.Strategy {
	if s, ok := l.cfg.Strategies[kind]; ok {
		return s
	}
	return l.cfg.Default
}

// ---- protoactor cluster.IdentityLookup ----

// Setup starts this member's directory and activator and follows
// protoactor's topology events.
func (l *Lookup) Setup(c *protocluster.Cluster, _ []string, _ bool) {
	var err error
	l.dirPID, err = l.as.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newDirectory(l) }), directoryName)
	if err != nil {
		panic(fmt.Errorf("cluster: starting the directory: %w", err)) // protoactor's Setup cannot return errors; StartMember recovers
	}
	l.actPID, err = l.as.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &activator{l: l} }), activatorName)
	if err != nil {
		panic(fmt.Errorf("cluster: starting the activator: %w", err))
	}
	l.sub = l.as.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*protocluster.ClusterTopology); ok {
			l.onTopology(t)
		}
	})
}

// Shutdown stops following topology events and stops the directory and
// activator.
func (l *Lookup) Shutdown() {
	if l.sub != nil {
		l.as.EventStream.Unsubscribe(l.sub)
	}
	if l.dirPID != nil {
		_ = l.as.Root.StopFuture(l.dirPID).Wait()
		_ = l.as.Root.StopFuture(l.actPID).Wait()
	}
}

// Get returns the PID of the identity's activation (nil if it cannot be
// found in time). Switchboard's own callers use Acquire.
func (l *Lookup) Get(ci *protocluster.ClusterIdentity) *actor.PID {
	act, err := l.Acquire(ci.Kind, ci.Identity, nil)
	if err != nil {
		return nil
	}
	return act.PID
}

// RemovePid drops a stale route.
func (l *Lookup) RemovePid(ci *protocluster.ClusterIdentity, pid *actor.PID) {
	l.dropRoute(entryKey(ci.Kind, ci.Identity), pid)
}

// dropRoute forgets the cached route of key if it leads to pid.
func (l *Lookup) dropRoute(key string, pid *actor.PID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if samePID(l.cache[key], pid) {
		delete(l.cache, key)
	}
}

func (l *Lookup) onTopology(t *protocluster.ClusterTopology) {
	addrs := make(map[string]string, len(t.Members))
	for _, m := range t.Members {
		addrs[m.Id] = m.Address()
	}
	topo := newTopology(addrs)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.topo = topo
	for key, pid := range l.cache {
		if _, ok := topo.memberAt(pid.Address); !ok {
			delete(l.cache, key)
		}
	}
	l.mu.Unlock()
	l.log.Info("topology changed", "members", len(topo.ids), "hash", topo.hash)
	l.metrics.topologyChanges.Inc()
	l.as.Root.Send(l.dirPID, topologyChanged{topo: topo})
	l.as.Root.Send(l.actPID, topologyChanged{topo: topo})
}

// ---- actors.Lookup ----

// Acquire implements actors.Lookup: the route to (kind, identity)'s
// activation, activating it if needed.
func (l *Lookup) Acquire(kind, identity string, hint func() actors.Hint) (*actors.Activation, error) {
	key := entryKey(kind, identity)
	var h *clusterpb.Hint // asked once, on the first miss
	deadline := time.Now().Add(l.cfg.LookupTimeout)
	for attempt := 0; ; attempt++ {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, actors.ErrShuttingDown
		}
		if h, ok := l.local[key]; ok && !h.stopping {
			l.mu.Unlock()
			return h.act, nil
		}
		if pid, ok := l.cache[key]; ok {
			l.mu.Unlock()
			return remoteActivation(kind, identity, pid), nil
		}
		topo := l.topo
		l.mu.Unlock()

		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, fmt.Errorf("cluster: no activation of %s %s within %v", kind, identity, l.cfg.LookupTimeout)
		}
		if len(topo.ids) > 0 {
			if h == nil && hint != nil {
				hv := hint()
				h = &clusterpb.Hint{Pool: hv.Pool, Overflow: hv.Overflow, CallCapacity: int32(hv.CallCapacity), OverflowCapacity: int32(hv.OverflowCapacity)}
			}
			owner := topo.owner(kind, identity)
			res, err := l.as.Root.RequestFuture(topo.directory(owner), &clusterpb.Lookup{Kind: kind, Identity: identity, Topology: topo.hash, Hint: h}, min(remaining, 2*time.Second)).Result()
			if err == nil {
				rep, _ := res.(*clusterpb.LookupReply)
				switch {
				case rep == nil:
				case rep.Pid != nil:
					pid := fromRef(rep.Pid)
					l.mu.Lock()
					if h, ok := l.local[key]; ok && samePID(h.act.PID, pid) {
						l.mu.Unlock()
						return h.act, nil
					}
					l.cache[key] = pid
					l.mu.Unlock()
					return remoteActivation(kind, identity, pid), nil
				case rep.NoCapacity:
					return nil, fmt.Errorf("%w: %s", ErrNoCapacity, rep.Error)
				case rep.Error != "" && !rep.NotOwner:
					return nil, fmt.Errorf("cluster: %s %s: %s", kind, identity, rep.Error)
				}
			}
		}
		// Views are converging or the owner is unreachable: back off.
		d := min(time.Duration(1<<min(attempt, 7))*time.Millisecond, time.Until(deadline))
		if d > 0 {
			time.Sleep(d)
		}
	}
}

func remoteActivation(kind, identity string, pid *actor.PID) *actors.Activation {
	act := actors.NewActivation(kind, identity, time.Time{})
	act.PID = pid
	return act
}

// Peek implements actors.Lookup: the live activation, wherever it is,
// without activating.
func (l *Lookup) Peek(kind, identity string) (*actors.Activation, bool) {
	key := entryKey(kind, identity)
	l.mu.Lock()
	if h, ok := l.local[key]; ok && !h.stopping && !l.closed {
		l.mu.Unlock()
		return h.act, true
	}
	if pid, ok := l.cache[key]; ok && !l.closed {
		l.mu.Unlock()
		return remoteActivation(kind, identity, pid), true
	}
	l.mu.Unlock()
	rep, err := l.describe(kind, identity, l.cfg.DeactivateTimeout)
	if err != nil || !rep.Found || rep.State != active.String() {
		return nil, false
	}
	return remoteActivation(kind, identity, fromRef(rep.Pid)), true
}

// describe asks the identity's directory owner what it knows of it.
func (l *Lookup) describe(kind, identity string, timeout time.Duration) (*clusterpb.DescribeReply, error) {
	l.mu.Lock()
	topo := l.topo
	l.mu.Unlock()
	if len(topo.ids) == 0 {
		return nil, errors.New("cluster: no topology yet")
	}
	res, err := l.as.Root.RequestFuture(topo.directory(topo.owner(kind, identity)), &clusterpb.Describe{Kind: kind, Identity: identity}, timeout).Result()
	if err != nil {
		return nil, err
	}
	rep, ok := res.(*clusterpb.DescribeReply)
	if !ok {
		return nil, fmt.Errorf("cluster: directory answered %T", res)
	}
	return rep, nil
}

// Done implements actors.Lookup; the cluster lookup counts nothing.
func (l *Lookup) Done(*actors.Activation) {}

// TryRelease implements actors.Lookup: the owner marks the entry stopping,
// so nothing reactivates the identity until this activation is gone.
func (l *Lookup) TryRelease(act *actors.Activation) bool {
	key := entryKey(act.Kind, act.Identity)
	l.mu.Lock()
	h, ok := l.local[key]
	if !ok || h.act != act || h.stopping {
		l.mu.Unlock()
		return !ok || h.act != act // not ours any more: stop
	}
	topo := l.topo
	l.mu.Unlock()
	if len(topo.ids) == 0 {
		return false
	}
	res, err := l.as.Root.RequestFuture(topo.directory(topo.owner(act.Kind, act.Identity)),
		&clusterpb.Deactivate{Kind: act.Kind, Identity: act.Identity, Pid: toRef(act.PID)}, l.cfg.DeactivateTimeout).Result()
	if err != nil {
		return false
	}
	if rep, ok := res.(*clusterpb.DeactivateReply); !ok || !rep.Ok {
		return false
	}
	l.mu.Lock()
	if !h.stopping {
		h.stopping = true
		l.stoppingByKind[h.act.Kind]++
	}
	delete(l.cache, key)
	l.mu.Unlock()
	return true
}

// Stopped implements actors.Lookup: the activation is dropped here and its
// owner is told.
func (l *Lookup) Stopped(act *actors.Activation) {
	key := entryKey(act.Kind, act.Identity)
	l.mu.Lock()
	if h, ok := l.local[key]; ok && h.act == act {
		delete(l.local, key)
		l.index.Remove(act)
		if h.stopping {
			l.stoppingByKind[act.Kind]--
		}
	}
	if samePID(l.cache[key], act.PID) {
		delete(l.cache, key)
	}
	topo := l.topo
	l.mu.Unlock()
	if len(topo.ids) > 0 {
		l.as.Root.Send(topo.directory(topo.owner(act.Kind, act.Identity)), &clusterpb.Gone{Kind: act.Kind, Identity: act.Identity, Pid: toRef(act.PID)})
	}
}

// Invalidate implements actors.Lookup.
func (l *Lookup) Invalidate(act *actors.Activation) {
	l.dropRoute(entryKey(act.Kind, act.Identity), act.PID)
}

// Activations implements actors.Lookup: this member's activations.
func (l *Lookup) Activations(kind string) []*actors.Activation {
	page, _ := l.ActivationPage(kind, actors.ActivationKey{}, 0)
	return page
}

// ActivationPage implements actors.Lookup.
func (l *Lookup) ActivationPage(kind string, after actors.ActivationKey, limit int) ([]*actors.Activation, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index.Page(kind, after, limit)
}

// Find implements actors.Lookup: this member's activation only.
func (l *Lookup) Find(kind, identity string) (*actors.Activation, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.local[entryKey(kind, identity)]
	if !ok {
		return nil, false
	}
	return h.act, true
}

// ActivationCounts implements actors.Lookup.
func (l *Lookup) ActivationCounts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index.Counts()
}

// Close implements actors.Lookup.
func (l *Lookup) Close() []*actors.Activation {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	out := make([]*actors.Activation, 0, len(l.local))
	for _, h := range l.local {
		out = append(out, h.act)
	}
	return out
}

// ---- activator support ----

func (l *Lookup) spawnLocal(kind, identity string, pl *clusterpb.Placement) (*actors.Activation, error) {
	key := entryKey(kind, identity)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, actors.ErrShuttingDown
	}
	if h, ok := l.local[key]; ok {
		if h.stopping {
			return nil, errStillStopping
		}
		return h.act, nil
	}
	act := actors.NewActivation(kind, identity, l.clk.Now())
	pid, err := l.spawn(act)
	if err != nil {
		return nil, err
	}
	act.PID = pid
	l.local[key] = &hosted{act: act, placement: pl}
	l.index.Put(act)
	return act, nil
}

func (l *Lookup) countLocal(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index.Count(kind) - l.stoppingByKind[kind]
}

func (l *Lookup) isLocal(kind, identity string, pid *actor.PID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.local[entryKey(kind, identity)]
	return ok && samePID(h.act.PID, pid)
}

func (l *Lookup) hostedSnapshot() []hosted {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]hosted, 0, len(l.local))
	for _, h := range l.local {
		out = append(out, *h)
	}
	return out
}

// activationList answers ListActivations from the index: at most m.Limit
// activations (0: all) after the asked key, in key order, without the
// stopping ones when m.LiveOnly.
func (l *Lookup) activationList(m *clusterpb.ListActivations) *clusterpb.ActivationList {
	out := &clusterpb.ActivationList{MemberId: l.selfID, Counts: map[string]int64{}}
	l.mu.Lock()
	defer l.mu.Unlock()
	page, more := l.index.Page(m.Kind, actors.ActivationKey{Kind: m.AfterKind, Identity: m.AfterIdentity}, int(m.Limit))
	for _, a := range page {
		if h := l.local[entryKey(a.Kind, a.Identity)]; m.LiveOnly && (h == nil || h.stopping) {
			continue
		}
		out.Activations = append(out.Activations, &clusterpb.Activation{
			Kind: a.Kind, Identity: a.Identity, Pid: toRef(a.PID),
			ActivatedAtUnixMs: a.ActivatedAt.UnixMilli(), LastMessageAtUnixMs: a.LastMessageAt().UnixMilli(),
		})
	}
	out.More = more
	for k, n := range l.index.Counts() {
		if m.Kind == "" || k == m.Kind {
			out.Counts[k] = int64(n)
		}
	}
	return out
}
