package cluster

import (
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

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
	pid            *actor.PID
	member         string
	placement      *clusterpb.Placement
	hint           *clusterpb.Hint
	waiters        []*actor.PID // requesters to answer when the entry settles
}

// topologyChanged tells the directory and the activator of a new view.
type topologyChanged struct{ topo topology }

// handoverTimeout ends the wait for claims of one topology.
type handoverTimeout struct{ hash uint64 }

// directory is the actor, one per member, that owns the directory entries
// of the identities whose rendezvous owner this member is. It merges
// concurrent lookups of one identity, asks the kind's placement strategy
// for a target, and has the target's activator spawn the activation. After
// a topology change it serves only identities it already knew until every
// member has reported its live activations (Claims), so that a join never
// starts a second activation of an identity that lives elsewhere.
type directory struct {
	l       *Lookup
	topo    topology
	entries map[string]*entry
	// handover of the current topology
	reported map[string]bool
	ready    bool
	parked   []parked
	// loads: the members' gossiped reports plus this directory's
	// placements they do not count yet (optimistic increments).
	loads *placement.LoadView
	rng   *rand.Rand
	// early holds claims sent for a view this directory has not reached
	// yet; they are applied when it does.
	early map[uint64][]*clusterpb.Claims
}

// maxEarlyViews bounds the views whose early claims are kept.
const maxEarlyViews = 8

type parked struct {
	msg    *clusterpb.Lookup
	sender *actor.PID
}

func newDirectory(l *Lookup) *directory {
	return &directory{
		l: l, entries: map[string]*entry{}, reported: map[string]bool{},
		loads: placement.NewLoadView(),
		rng:   rand.New(rand.NewPCG(l.cfg.Seed, 0x5b)),
		early: map[uint64][]*clusterpb.Claims{},
	}
}

func (d *directory) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case topologyChanged:
		d.onTopology(c, m.topo)
	case handoverTimeout:
		if m.hash == d.topo.hash && !d.ready {
			d.pullClaims(c)
		}
	case *clusterpb.Lookup:
		d.lookup(c, m, c.Sender())
	case *clusterpb.Claims:
		d.onClaims(c, m)
	case *clusterpb.Deactivate:
		d.onDeactivate(c, m)
	case *clusterpb.Gone:
		d.onGone(c, m)
	case *clusterpb.Describe:
		d.describe(c, m)
	}
}

func (d *directory) owns(kind, identity string) bool {
	return d.topo.owner(kind, identity) == d.l.selfID
}

func (d *directory) lookup(c actor.Context, m *clusterpb.Lookup, sender *actor.PID) {
	if m.Topology != d.topo.hash || !d.owns(m.Kind, m.Identity) {
		c.Send(sender, &clusterpb.LookupReply{NotOwner: true})
		return
	}
	key := entryKey(m.Kind, m.Identity)
	if e, ok := d.entries[key]; ok {
		if e.state == active {
			c.Send(sender, &clusterpb.LookupReply{Pid: toRef(e.pid)})
			return
		}
		e.waiters = append(e.waiters, sender)
		return
	}
	if !d.ready {
		d.parked = append(d.parked, parked{msg: m, sender: sender})
		return
	}
	d.place(c, m.Kind, m.Identity, m.Hint, []*actor.PID{sender})
}

// decide runs the placement: tier 2 for a call (placement.CallRoute: power
// of two choices over the nodes of its pool, then of the overflow pool);
// the kind's strategy otherwise, over the nodes of the hinted pool when it
// has any. A call's decision also tells the chosen node's call capacity
// (its pool's, or the overflow pool's), which the activator enforces.
func (d *directory) decide(kind, identity string, h *clusterpb.Hint) (dec placement.Decision, strategy string, callCapacity int32, err error) {
	members := d.placementMembers()
	if kind == placement.KindCall && h.GetPool() != "" {
		dec, _, capacity, err := routeOf(h).Place(identity, members, d.rng)
		return dec, placement.NamePowerOfTwo, int32(capacity), err
	}
	s := d.l.strategy(kind)
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

func (d *directory) place(c actor.Context, kind, identity string, hint *clusterpb.Hint, waiters []*actor.PID) {
	d.placeAttempt(c, kind, identity, hint, waiters, 0)
}

func (d *directory) placeAttempt(c actor.Context, kind, identity string, hint *clusterpb.Hint, waiters []*actor.PID, refusals int) {
	key := entryKey(kind, identity)
	dec, strategyName, callCapacity, err := d.decide(kind, identity, hint)
	if err != nil {
		reply := &clusterpb.LookupReply{Error: err.Error(), NoCapacity: errors.Is(err, placement.ErrNoCapacity) || errors.Is(err, placement.ErrNoMembers)}
		for _, w := range waiters {
			c.Send(w, reply)
		}
		return
	}
	pl := toPlacement(dec, d.l.now())
	pl.MemberName = dec.MemberName
	e := &entry{kind: kind, identity: identity, state: activating, member: dec.Member, placement: pl, hint: hint, waiters: waiters}
	d.entries[key] = e
	d.loads.Add(dec.Member, kind, 1, d.l.now())
	d.l.metrics.placements.WithLabelValues(kind, strategyName).Inc()
	act := &clusterpb.Activate{Kind: kind, Identity: identity, Placement: pl, Topology: d.topo.hash, CallCapacity: callCapacity}
	f := c.RequestFuture(d.topo.activator(dec.Member), act, d.l.cfg.ActivateTimeout)
	c.ReenterAfter(f, func(res any, err error) {
		if d.entries[key] != e {
			return // dropped by a topology change meanwhile; its waiters were told
		}
		var pid *actor.PID
		if err == nil {
			if r, ok := res.(*clusterpb.ActivateReply); ok && r.Error == "" {
				pid = fromRef(r.Pid)
			} else if ok {
				err = errors.New(r.Error)
			} else {
				err = errors.New("activator gave no PID")
			}
		}
		if pid == nil {
			delete(d.entries, key)
			// Activators refuse with these errors' text (it crosses nodes).
			if err.Error() == errOtherView.Error() {
				// The host moved to another view: retry there.
				d.answer(c, e.waiters, &clusterpb.LookupReply{NotOwner: true})
				return
			}
			if err.Error() == errFull.Error() {
				// Our figures were stale: the node is full. Count it full
				// until its next load report, and place again.
				d.l.metrics.refusedFull.Inc()
				d.loads.MarkFull(dec.Member, int(act.CallCapacity), d.l.now())
				if placement.RetryAfterFull(refusals + 1) {
					d.placeAttempt(c, kind, identity, hint, e.waiters, refusals+1)
					return
				}
			}
			d.l.log.Warn("activation failed", "kind", kind, "id", identity, "member", dec.Member, "err", err)
			d.answer(c, e.waiters, &clusterpb.LookupReply{Error: "activation failed: " + err.Error()})
			return
		}
		e.pid, e.state = pid, active
		d.answer(c, e.waiters, &clusterpb.LookupReply{Pid: toRef(pid)})
		e.waiters = nil
	})
}

func (d *directory) answer(c actor.Context, to []*actor.PID, reply *clusterpb.LookupReply) {
	for _, w := range to {
		c.Send(w, reply)
	}
}

// placementMembers are the members of the topology with the loads of the
// directory's view: their gossiped reports (as of when gossip received
// them) plus this directory's optimistic increments.
func (d *directory) placementMembers() []placement.Member {
	all, loadAt := d.l.members.PlacementSnapshot()
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

func (d *directory) onDeactivate(c actor.Context, m *clusterpb.Deactivate) {
	key := entryKey(m.Kind, m.Identity)
	e, ok := d.entries[key]
	switch {
	case !ok:
		// Unknown here: its claim has not arrived yet (a handover in
		// progress), or it never will. It may stop, but until it is gone
		// the entry stays "stopping", so that no lookup starts a second
		// activation while this one still writes its state.
		pid := fromRef(m.Pid)
		if member, known := d.topo.memberOf(pid); known && d.owns(m.Kind, m.Identity) {
			d.entries[key] = &entry{kind: m.Kind, identity: m.Identity, state: stopping, pid: pid, member: member, placement: &clusterpb.Placement{Adopted: true}}
		}
		c.Respond(&clusterpb.DeactivateReply{Ok: true})
	case !samePID(e.pid, fromRef(m.Pid)):
		// A duplicate (the entry knows another activation): it may stop.
		c.Respond(&clusterpb.DeactivateReply{Ok: true})
	case e.state == active:
		e.state = stopping
		c.Respond(&clusterpb.DeactivateReply{Ok: true})
	default:
		c.Respond(&clusterpb.DeactivateReply{Ok: e.state == stopping})
	}
}

func (d *directory) onGone(c actor.Context, m *clusterpb.Gone) {
	key := entryKey(m.Kind, m.Identity)
	e, ok := d.entries[key]
	if !ok || !samePID(e.pid, fromRef(m.Pid)) {
		return
	}
	delete(d.entries, key)
	// The activation no longer loads its node: without this, short calls
	// at a high rate would add up to "full" between two load reports.
	d.loads.Add(e.member, e.kind, -1, d.l.now())
	if len(e.waiters) > 0 && d.owns(m.Kind, m.Identity) {
		d.place(c, m.Kind, m.Identity, e.hint, e.waiters)
	}
}

func (d *directory) onTopology(c actor.Context, t topology) {
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
		d.answer(c, e.waiters, &clusterpb.LookupReply{NotOwner: true})
		if !hostAlive {
			d.l.metrics.dropped.Inc()
		}
	}
	d.reported = map[string]bool{}
	d.ready = false
	d.loads.Retain(t.has)
	hash := t.hash
	early := d.early[hash]
	d.early = map[uint64][]*clusterpb.Claims{}
	for _, m := range early {
		d.onClaims(c, m)
	}
	self := c.Self()
	sys := c.ActorSystem()
	time.AfterFunc(d.l.cfg.HandoverTimeout, func() { sys.Root.Send(self, handoverTimeout{hash: hash}) })
	// Parked lookups of the old view are answered by the new one.
	d.checkReady(c)
}

func (d *directory) onClaims(c actor.Context, m *clusterpb.Claims) {
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
		pid := fromRef(cl.Pid)
		member, ok := d.topo.memberOf(pid)
		if !ok {
			continue
		}
		if e, ok := d.entries[key]; ok && !samePID(e.pid, pid) {
			if e.state == activating && e.member == member {
				continue // the activation this entry awaits, reported before its reply
			}
			if e.state == activating || d.topo.has(e.member) {
				// Two activations: keep the one we know, evict the claim.
				d.l.metrics.evictions.Inc()
				c.Send(d.topo.activator(member), &clusterpb.Evict{Kind: cl.Kind, Identity: cl.Identity, Pid: cl.Pid})
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
		d.entries[key] = &entry{kind: cl.Kind, identity: cl.Identity, state: active, pid: pid, member: member, placement: pl}
		d.l.metrics.handovers.Inc()
	}
	d.reported[m.From] = true
	d.checkReady(c)
}

// pullClaims runs when the handover timeout ends the wait for claims:
// rather than serving at once, the directory asks each member that has
// not reported for its live activations (a claims message can be lost on
// a first dial, and a member that is slow to see the new view has sent
// none). A member that answers is taken as reported, with what it listed;
// one that does not answer within the handover timeout is taken as gone
// (gossip has not removed it yet), and the directory serves.
func (d *directory) pullClaims(c actor.Context) {
	hash := d.topo.hash
	var missing []string
	for _, id := range d.topo.ids {
		if !d.reported[id] {
			missing = append(missing, id)
		}
	}
	d.l.log.Info("handover: asking the members that did not report for their activations",
		"reported", len(d.reported), "members", len(d.topo.ids))
	for _, id := range missing {
		f := c.RequestFuture(d.topo.activator(id), &clusterpb.ListActivations{LiveOnly: true}, d.l.cfg.HandoverTimeout)
		c.ReenterAfter(f, func(res any, err error) {
			if d.topo.hash != hash || d.ready || d.reported[id] {
				return
			}
			list, ok := res.(*clusterpb.ActivationList)
			if err != nil || !ok {
				d.l.log.Warn("handover: a member did not answer for its activations; serving without them",
					"member", id, "err", err)
				d.reported[id] = true
				d.checkReady(c)
				return
			}
			claims := &clusterpb.Claims{Topology: hash, From: id}
			for _, a := range list.Activations {
				claims.Claims = append(claims.Claims, &clusterpb.Claim{Kind: a.Kind, Identity: a.Identity, Pid: a.Pid})
			}
			d.onClaims(c, claims)
		})
	}
}

func (d *directory) checkReady(c actor.Context) {
	if d.ready {
		return
	}
	for _, id := range d.topo.ids {
		if !d.reported[id] {
			return
		}
	}
	d.setReady(c)
}

func (d *directory) setReady(c actor.Context) {
	d.ready = true
	parked := d.parked
	d.parked = nil
	for _, p := range parked {
		d.lookup(c, p.msg, p.sender)
	}
}

func (d *directory) describe(c actor.Context, m *clusterpb.Describe) {
	e, ok := d.entries[entryKey(m.Kind, m.Identity)]
	if !ok {
		c.Respond(&clusterpb.DescribeReply{OwnerId: d.l.selfID})
		return
	}
	c.Respond(&clusterpb.DescribeReply{Found: true, Pid: toRef(e.pid), State: e.state.String(), Placement: e.placement, OwnerId: d.l.selfID})
}

func toPlacement(dec placement.Decision, now time.Time) *clusterpb.Placement {
	pl := &clusterpb.Placement{Strategy: dec.Strategy, Reason: dec.Reason, MemberId: dec.Member, PlacedAtUnixMs: now.UnixMilli()}
	for _, c := range dec.Candidates {
		pl.Candidates = append(pl.Candidates, &clusterpb.Candidate{
			Id: c.ID, Name: c.Name, Rank: int32(c.Rank), Load: int64(c.Load), Capacity: int64(c.Capacity), Eligible: c.Eligible, Why: c.Why,
		})
	}
	return pl
}
