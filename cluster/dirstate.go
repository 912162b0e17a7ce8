package cluster

import (
	"cmp"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

type entryState int

const (
	activating entryState = iota
	active
	stopping
)

func (s entryState) String() string {
	return [...]string{"activating", "active", "stopping"}[s]
}

// entry is the directory's record of one identity it owns.
type entry struct {
	kind, identity string
	state          entryState
	pid            *clusterpb.Ref
	member         string
	placement      *clusterpb.Placement
	hint           *clusterpb.Hint
	waiters        []any // requesters to answer when the entry settles
	// gen tells this entry's activation reply from an older one's.
	gen uint64
	// callCapacity is the capacity the activator enforces; refusals counts
	// the full nodes met so far.
	callCapacity int32
	refusals     int
}

// maxEarlyViews bounds the views whose early claims are kept.
const maxEarlyViews = 8

// dirState is the directory as a state machine, in the manner of etcd's
// raft: Step takes one input (a message, a timer, an activator's answer)
// and returns the effects to carry out (replies, Activate, Evict,
// ListActivations, a timer). It owns the entries of the
// identities whose rendezvous owner its member is: it merges concurrent
// lookups of one identity, asks placement for a target, retries a full
// node's refusal, and after a topology change serves identities it did
// not know only once every member has reported (Claims, or a
// ListActivations answer after the handover timeout). It runs no actor,
// goroutine or clock: time, randomness, the members' figures, metrics and
// the logger are injected, so the directory actor and a test drive the
// same rules. Requesters (waiters) are opaque: the actor's are *actor.PID.
type dirState struct {
	self     string
	clk      clock.Clock
	rng      *rand.Rand
	members  MemberSource
	strategy func(kind string) placement.Strategy
	metrics  *metrics
	log      *slog.Logger

	topo    topology
	entries map[string]*entry
	gen     uint64
	// handover of the current topology
	reported map[string]bool
	ready    bool
	parked   []lookupIn
	// loads: the members' gossiped reports plus this directory's
	// placements they do not count yet (optimistic increments).
	loads *placement.LoadView
	// early holds claims sent for a view this directory has not reached
	// yet; they are applied when it does.
	early map[uint64][]*clusterpb.Claims

	out []dirEffect // effects of the current Step
}

func newDirState(self string, clk clock.Clock, rng *rand.Rand, members MemberSource, strategy func(string) placement.Strategy, m *metrics, log *slog.Logger) *dirState {
	return &dirState{self: self, clk: clk, rng: rng, members: members, strategy: strategy, metrics: m, log: log,
		entries: map[string]*entry{}, reported: map[string]bool{}, loads: placement.NewLoadView(),
		early: map[uint64][]*clusterpb.Claims{}}
}

// Inputs of Step.
type (
	dirInput any
	// topologyChanged tells the directory and the activator of a new view.
	topologyChanged struct{ topo topology }
	// handoverTimeout ends the wait for claims of one topology.
	handoverTimeout struct{ hash uint64 }
	lookupIn        struct {
		msg  *clusterpb.Lookup
		from any
	}
	deactivateIn struct {
		msg  *clusterpb.Deactivate
		from any
	}
	// activated is an activator's answer to effActivate (a transport
	// failure is an ACTIVATE_CODE_ERROR reply).
	activated struct {
		key   string
		gen   uint64
		reply *clusterpb.ActivateReply
	}
	// listed is a silent member's answer to effList; nil when it gave none.
	listed struct {
		hash   uint64
		member string
		list   *clusterpb.ActivationList
	}
)

// Effects of Step (counts and logs go straight to the injected metrics and
// logger).
type (
	dirEffect any
	// effReply sends msg to each of to.
	effReply struct {
		to  []any
		msg any
	}
	// effActivate asks member's activator for an activation; its answer is
	// the input activated{key, gen, reply}.
	effActivate struct {
		member string
		msg    *clusterpb.Activate
		key    string
		gen    uint64
	}
	effEvict struct {
		member string
		msg    *clusterpb.Evict
	}
	// effList asks member's activator for its live activations; its answer
	// (or its silence within the handover timeout) is the input listed.
	effList struct {
		hash   uint64
		member string
	}
	// effTimer asks for handoverTimeout{hash} after the handover timeout.
	effTimer struct{ hash uint64 }
)

// Step applies one input and returns the effects to carry out, in order.
func (d *dirState) Step(in dirInput) []dirEffect {
	d.out = nil
	switch m := in.(type) {
	case topologyChanged:
		d.onTopology(m.topo)
	case handoverTimeout:
		if m.hash == d.topo.hash && !d.ready {
			d.pullClaims()
		}
	case lookupIn:
		d.lookup(m)
	case *clusterpb.Claims:
		d.onClaims(m)
	case deactivateIn:
		d.onDeactivate(m)
	case *clusterpb.Gone:
		d.onGone(m)
	case activated:
		d.onActivated(m)
	case listed:
		d.onListed(m)
	}
	return d.out
}

func (d *dirState) emit(e dirEffect) { d.out = append(d.out, e) }

func (d *dirState) reply(to []any, msg any) {
	if len(to) > 0 {
		d.emit(effReply{to: to, msg: msg})
	}
}

func (d *dirState) owns(kind, identity string) bool {
	return d.topo.owner(kind, identity) == d.self
}

func (d *dirState) lookup(in lookupIn) {
	m := in.msg
	if m.Topology != d.topo.hash || !d.owns(m.Kind, m.Identity) {
		d.reply([]any{in.from}, &clusterpb.LookupReply{NotOwner: true})
		return
	}
	if e, ok := d.entries[entryKey(m.Kind, m.Identity)]; ok {
		if e.state == active {
			d.reply([]any{in.from}, &clusterpb.LookupReply{Pid: e.pid})
			return
		}
		e.waiters = append(e.waiters, in.from)
		return
	}
	if !d.ready {
		d.parked = append(d.parked, in)
		return
	}
	d.place(m.Kind, m.Identity, m.Hint, []any{in.from}, 0)
}

// decide runs the placement: tier 2 for a call (placement.CallRoute: power
// of two choices over the nodes of its pool, then of the overflow pool);
// the kind's strategy otherwise, over the nodes of the hinted pool when it
// has any. A call's decision also tells the chosen node's call capacity
// (its pool's, or the overflow pool's), which the activator enforces.
func (d *dirState) decide(kind, identity string, h *clusterpb.Hint) (dec placement.Decision, strategy string, callCapacity int32, err error) {
	members := d.placementMembers()
	if kind == placement.KindCall && h.GetPool() != "" {
		dec, _, capacity, err := routeOf(h).Place(identity, members, d.rng)
		return dec, placement.NamePowerOfTwo, int32(capacity), err
	}
	s := d.strategy(kind)
	if h.GetPool() != "" {
		if pm := slices.DeleteFunc(slices.Clone(members), func(m placement.Member) bool { return m.Pool != h.Pool }); len(pm) > 0 {
			members = pm
		}
	}
	dec, err = s.Place(kind, identity, members, d.rng)
	return dec, s.Name(), 0, err
}

// routeOf is a call's route as its hint names it. The runtime has no CPU
// limit setting: PowerOfTwo's default applies.
func routeOf(h *clusterpb.Hint) placement.CallRoute {
	return placement.CallRoute{Pool: h.Pool, Capacity: int(h.CallCapacity), Overflow: h.Overflow, OverflowCapacity: int(h.OverflowCapacity)}
}

// place decides a target for the identity and asks its activator;
// refusals counts the full nodes this lookup met already.
func (d *dirState) place(kind, identity string, hint *clusterpb.Hint, waiters []any, refusals int) {
	dec, strategyName, callCapacity, err := d.decide(kind, identity, hint)
	if err != nil {
		d.reply(waiters, &clusterpb.LookupReply{Error: err.Error(), NoCapacity: errors.Is(err, placement.ErrNoCapacity) || errors.Is(err, placement.ErrNoMembers)})
		return
	}
	pl := toPlacement(dec, d.clk.Now())
	d.gen++
	key := entryKey(kind, identity)
	d.entries[key] = &entry{kind: kind, identity: identity, state: activating, member: dec.Member, placement: pl, hint: hint,
		waiters: waiters, gen: d.gen, callCapacity: callCapacity, refusals: refusals}
	d.loads.Add(dec.Member, kind, 1, d.clk.Now())
	d.metrics.placements.WithLabelValues(kind, strategyName).Inc()
	d.emit(effActivate{member: dec.Member, key: key, gen: d.gen,
		msg: &clusterpb.Activate{Kind: kind, Identity: identity, Placement: pl, Topology: d.topo.hash, CallCapacity: callCapacity}})
}

func (d *dirState) onActivated(m activated) {
	e := d.entries[m.key]
	if e == nil || e.gen != m.gen {
		return // dropped by a topology change meanwhile; its waiters were told
	}
	r := m.reply
	if r.GetCode() == clusterpb.ActivateCode_ACTIVATE_CODE_OK && r.GetPid().GetId() != "" {
		e.pid, e.state = r.Pid, active
		d.reply(e.waiters, &clusterpb.LookupReply{Pid: r.Pid})
		e.waiters = nil
		return
	}
	delete(d.entries, m.key)
	switch r.GetCode() {
	case clusterpb.ActivateCode_ACTIVATE_CODE_OTHER_VIEW:
		// The host moved to another view: retry there.
		d.reply(e.waiters, &clusterpb.LookupReply{NotOwner: true})
		return
	case clusterpb.ActivateCode_ACTIVATE_CODE_FULL:
		// Our figures were stale: the node is full. Count it full until
		// its next load report, and place again.
		d.metrics.refusedFull.Inc()
		d.loads.MarkFull(e.member, int(e.callCapacity), d.clk.Now())
		if placement.RetryAfterFull(e.refusals + 1) {
			d.place(e.kind, e.identity, e.hint, e.waiters, e.refusals+1)
			return
		}
	}
	why := cmp.Or(r.GetError(), "activator gave no PID")
	d.log.Warn("activation failed", "kind", e.kind, "id", e.identity, "member", e.member, "err", why)
	d.reply(e.waiters, &clusterpb.LookupReply{Error: "activation failed: " + why})
}

// placementMembers are the members of the topology with the loads of the
// directory's view: their gossiped reports (as of when gossip received
// them) plus this directory's optimistic increments.
func (d *dirState) placementMembers() []placement.Member {
	all, loadAt := d.members.PlacementSnapshot()
	out := make([]placement.Member, 0, len(all))
	for _, m := range all {
		if !d.topo.has(m.ID) {
			continue
		}
		d.loads.Report(m.ID, m.Load, loadAt[m.ID])
		m.Load = d.loads.Load(m.ID)
		out = append(out, m)
	}
	return out
}

func (d *dirState) onDeactivate(in deactivateIn) {
	m := in.msg
	key := entryKey(m.Kind, m.Identity)
	e, ok := d.entries[key]
	may := true
	switch {
	case !ok:
		// Unknown here: its claim has not arrived yet (a handover in
		// progress), or it never will. It may stop, but until it is gone
		// the entry stays "stopping", so that no lookup starts a second
		// activation while this one still writes its state.
		if member, known := d.topo.memberAt(m.Pid.GetAddress()); known && m.Pid.GetId() != "" && d.owns(m.Kind, m.Identity) {
			d.entries[key] = &entry{kind: m.Kind, identity: m.Identity, state: stopping, pid: m.Pid, member: member, placement: &clusterpb.Placement{Adopted: true}}
		}
	case !sameRef(e.pid, m.Pid):
		// A duplicate (the entry knows another activation): it may stop.
	case e.state == active:
		e.state = stopping
	default:
		may = e.state == stopping
	}
	d.reply([]any{in.from}, &clusterpb.DeactivateReply{Ok: may})
}

func (d *dirState) onGone(m *clusterpb.Gone) {
	key := entryKey(m.Kind, m.Identity)
	e, ok := d.entries[key]
	if !ok || !sameRef(e.pid, m.Pid) {
		return
	}
	delete(d.entries, key)
	// The activation no longer loads its node: without this, short calls
	// at a high rate would add up to "full" between two load reports.
	d.loads.Add(e.member, e.kind, -1, d.clk.Now())
	if len(e.waiters) > 0 && d.owns(m.Kind, m.Identity) {
		d.place(m.Kind, m.Identity, e.hint, e.waiters, 0)
	}
}

func (d *dirState) onTopology(t topology) {
	if t.hash == d.topo.hash && len(t.ids) == len(d.topo.ids) {
		return
	}
	d.topo = t
	for key, e := range d.entries {
		hostAlive := t.has(e.member)
		if d.owns(e.kind, e.identity) && hostAlive {
			continue
		}
		// Not ours any more (the host's activator claims it at the new
		// owner), or its host is gone (it reactivates on next use).
		delete(d.entries, key)
		d.reply(e.waiters, &clusterpb.LookupReply{NotOwner: true})
		if !hostAlive {
			d.metrics.dropped.Inc()
		}
	}
	d.reported = map[string]bool{}
	d.ready = false
	d.loads.Retain(t.has)
	early := d.early[t.hash]
	d.early = map[uint64][]*clusterpb.Claims{}
	for _, m := range early {
		d.onClaims(m)
	}
	d.emit(effTimer{hash: t.hash})
	// Parked lookups of the old view are answered by the new one.
	d.checkReady()
}

func (d *dirState) onClaims(m *clusterpb.Claims) {
	if m.Topology != d.topo.hash {
		// A view this directory has not reached yet (or has left): keep
		// it for when it does.
		if len(d.early) < maxEarlyViews || d.early[m.Topology] != nil {
			d.early[m.Topology] = append(d.early[m.Topology], m)
		}
		return
	}
	for _, cl := range m.Claims {
		if !d.owns(cl.Kind, cl.Identity) {
			continue
		}
		key := entryKey(cl.Kind, cl.Identity)
		member, ok := d.topo.memberAt(cl.Pid.GetAddress())
		if !ok || cl.Pid.GetId() == "" {
			continue
		}
		if e, ok := d.entries[key]; ok && !sameRef(e.pid, cl.Pid) {
			if e.state == activating && e.member == member {
				continue // the activation this entry awaits, reported before its reply
			}
			if e.state == activating || d.topo.has(e.member) {
				// Two activations: keep the one we know, evict the claim.
				d.metrics.evictions.Inc()
				d.emit(effEvict{member: member, msg: &clusterpb.Evict{Kind: cl.Kind, Identity: cl.Identity, Pid: cl.Pid}})
				continue
			}
		} else if ok {
			continue
		}
		pl := cl.Placement
		if pl == nil {
			pl = &clusterpb.Placement{}
		}
		pl.Adopted = true
		d.entries[key] = &entry{kind: cl.Kind, identity: cl.Identity, state: active, pid: cl.Pid, member: member, placement: pl}
		d.metrics.handovers.Inc()
	}
	d.reported[m.From] = true
	d.checkReady()
}

// pullClaims runs when the handover timeout ends the wait for claims:
// rather than serving at once, the directory asks each member that has
// not reported for its live activations (a claims message can be lost on
// a first dial, and a member that is slow to see the new view has sent
// none). A member that answers is taken as reported, with what it listed;
// one that does not answer within the handover timeout is taken as gone
// (gossip has not removed it yet), and the directory serves.
func (d *dirState) pullClaims() {
	d.log.Info("handover: asking the members that did not report for their activations",
		"reported", len(d.reported), "members", len(d.topo.ids))
	for _, id := range d.topo.ids {
		if !d.reported[id] {
			d.emit(effList{hash: d.topo.hash, member: id})
		}
	}
}

func (d *dirState) onListed(m listed) {
	if d.topo.hash != m.hash || d.ready || d.reported[m.member] {
		return
	}
	if m.list == nil {
		d.log.Warn("handover: a member did not answer for its activations; serving without them", "member", m.member)
		d.reported[m.member] = true
		d.checkReady()
		return
	}
	claims := &clusterpb.Claims{Topology: m.hash, From: m.member}
	for _, a := range m.list.Activations {
		claims.Claims = append(claims.Claims, &clusterpb.Claim{Kind: a.Kind, Identity: a.Identity, Pid: a.Pid})
	}
	d.onClaims(claims)
}

func (d *dirState) checkReady() {
	if d.ready || slices.ContainsFunc(d.topo.ids, func(id string) bool { return !d.reported[id] }) {
		return
	}
	d.ready = true
	parked := d.parked
	d.parked = nil
	for _, p := range parked {
		d.lookup(p)
	}
}

// describe is what the directory knows of an identity.
func (d *dirState) describe(m *clusterpb.Describe) *clusterpb.DescribeReply {
	e, ok := d.entries[entryKey(m.Kind, m.Identity)]
	if !ok {
		return &clusterpb.DescribeReply{OwnerId: d.self}
	}
	return &clusterpb.DescribeReply{Found: true, Pid: e.pid, State: e.state.String(), Placement: e.placement, OwnerId: d.self}
}

func toPlacement(dec placement.Decision, now time.Time) *clusterpb.Placement {
	pl := &clusterpb.Placement{Strategy: dec.Strategy, Reason: dec.Reason, MemberId: dec.Member, MemberName: dec.MemberName, PlacedAtUnixMs: now.UnixMilli()}
	for _, c := range dec.Candidates {
		pl.Candidates = append(pl.Candidates, &clusterpb.Candidate{
			Id: c.ID, Name: c.Name, Rank: int32(c.Rank), Load: int64(c.Load), Capacity: int64(c.Capacity), Eligible: c.Eligible, Why: c.Why,
		})
	}
	return pl
}
