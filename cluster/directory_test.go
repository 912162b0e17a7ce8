package cluster

import (
	"log/slog"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

// fakeMembers is a MemberSource with fixed members and no load reports.
type fakeMembers []placement.Member

func (f fakeMembers) PlacementSnapshot() ([]placement.Member, map[string]time.Time) {
	return f, map[string]time.Time{}
}

// directoryUnderTest runs one directory actor in a plain actor system. The
// topology has this member (its address is the local system's) and a peer
// at an address nobody serves.
func directoryUnderTest(t *testing.T) (*actor.ActorSystem, *actor.PID, topology, string) {
	t.Helper()
	as := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	t.Cleanup(as.Shutdown)
	const peer = "peer-id"
	members := fakeMembers{{ID: as.ID, Name: "self"}, {ID: peer, Name: "peer"}}
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	spawn := func(*actors.Activation) (*actor.PID, error) { t.Error("nothing should be spawned"); return nil, nil }
	l := newLookup(as, spawn, clock.Real{}, LookupConfig{HandoverTimeout: time.Hour}, members, slog.New(slog.DiscardHandler), m)
	dir := as.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newDirectory(l) }))
	t.Cleanup(func() { _ = as.Root.StopFuture(dir).Wait() })
	topo := newTopology(map[string]string{as.ID: as.Address(), peer: "peer.invalid:1"})
	as.Root.Send(dir, topologyChanged{topo: topo})
	return as, dir, topo, peer
}

// ownedIdentity returns an account identity whose directory owner is self.
func ownedIdentity(t *testing.T, topo topology, self string) string {
	t.Helper()
	for i := range 1000 {
		id := "acct" + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		if topo.owner(actors.KindAccount, id) == self {
			return id
		}
	}
	t.Fatal("no identity owned by self")
	return ""
}

// After a topology change, a lookup of an identity the new owner does not
// know waits for every member's claims, and is answered with the claimed
// live activation instead of starting a second one.
func TestDirectory_HandoverParksLookupsUntilEveryMemberClaimed(t *testing.T) {
	as, dir, topo, peer := directoryUnderTest(t)
	id := ownedIdentity(t, topo, as.ID)
	f := as.Root.RequestFuture(dir, &clusterpb.Lookup{Kind: actors.KindAccount, Identity: id, Topology: topo.hash}, 5*time.Second)

	// The peer hosts the identity and says so; then this member reports.
	live := &clusterpb.Ref{Address: "peer.invalid:1", Id: "account/" + id + "$1"}
	as.Root.Send(dir, &clusterpb.Claims{Topology: topo.hash, From: peer, Claims: []*clusterpb.Claim{
		{Kind: actors.KindAccount, Identity: id, Pid: live},
	}})
	as.Root.Send(dir, &clusterpb.Claims{Topology: topo.hash, From: as.ID})

	res, err := f.Result()
	if err != nil {
		t.Fatal(err)
	}
	rep := res.(*clusterpb.LookupReply)
	if rep.Pid.GetId() != live.Id || rep.Pid.GetAddress() != live.Address {
		t.Fatalf("lookup answered %+v, want the claimed activation %+v", rep, live)
	}
	d, err := as.Root.RequestFuture(dir, &clusterpb.Describe{Kind: actors.KindAccount, Identity: id}, time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if dr := d.(*clusterpb.DescribeReply); !dr.Found || !dr.Placement.GetAdopted() || dr.State != "active" {
		t.Fatalf("describe after handover: %+v", dr)
	}
}

// A lookup made in another topology view is refused, not placed.
func TestDirectory_RefusesLookupsFromAnotherView(t *testing.T) {
	as, dir, topo, _ := directoryUnderTest(t)
	id := ownedIdentity(t, topo, as.ID)
	res, err := as.Root.RequestFuture(dir, &clusterpb.Lookup{Kind: actors.KindAccount, Identity: id, Topology: topo.hash + 1}, time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if rep := res.(*clusterpb.LookupReply); !rep.NotOwner {
		t.Fatalf("lookup from another view: %+v", rep)
	}
}

// Claims of a view the directory has not reached yet are kept and applied
// when it does.
func TestDirectory_EarlyClaimsAreKept(t *testing.T) {
	as, dir, _, peer := directoryUnderTest(t)
	// A second view, with a third member the directory has not heard of.
	next := newTopology(map[string]string{as.ID: as.Address(), peer: "peer.invalid:1", "third": "third.invalid:1"})
	id := ownedIdentity(t, next, as.ID)
	live := &clusterpb.Ref{Address: "third.invalid:1", Id: "account/" + id + "$7"}
	as.Root.Send(dir, &clusterpb.Claims{Topology: next.hash, From: "third", Claims: []*clusterpb.Claim{{Kind: actors.KindAccount, Identity: id, Pid: live}}})
	as.Root.Send(dir, &clusterpb.Claims{Topology: next.hash, From: peer})
	as.Root.Send(dir, topologyChanged{topo: next})
	as.Root.Send(dir, &clusterpb.Claims{Topology: next.hash, From: as.ID})
	res, err := as.Root.RequestFuture(dir, &clusterpb.Lookup{Kind: actors.KindAccount, Identity: id, Topology: next.hash}, 5*time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if rep := res.(*clusterpb.LookupReply); rep.Pid.GetId() != live.Id {
		t.Fatalf("lookup answered %+v, want the early claim %+v", rep, live)
	}
}

// Calls that ended since a member's last load report no longer count
// against it: 600 short calls placed and ended within one report interval
// leave the estimate at what is live, not at "full" (a pool's default
// capacity is 500), and the estimate never goes below zero.
func TestDirectory_EndedCallsLeaveTheOptimisticCount(t *testing.T) {
	as, _, topo, _ := directoryUnderTest(t)
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	members := fakeMembers{{ID: as.ID, Name: "self"}}
	l := newLookup(as, nil, clock.Real{}, LookupConfig{HandoverTimeout: time.Hour}, members, slog.New(slog.DiscardHandler), m)
	d := newDirectory(l).s
	d.topo = topo
	calls := func() int {
		for _, pm := range d.placementMembers() {
			if pm.ID == as.ID {
				return pm.Load.ActiveCalls
			}
		}
		t.Fatal("self is not a placement member")
		return 0
	}
	for range 600 {
		d.loads.Add(as.ID, actors.KindCall, 1, l.clk.Now())
		d.loads.Add(as.ID, actors.KindCall, -1, l.clk.Now())
	}
	d.loads.Add(as.ID, actors.KindCall, 1, l.clk.Now())
	if got := calls(); got != 1 {
		t.Fatalf("after 600 ended calls and one live: estimate %d, want 1", got)
	}
	for range 3 {
		d.loads.Add(as.ID, actors.KindCall, -1, l.clk.Now()) // ends the report already counted
	}
	if got := calls(); got != 0 {
		t.Fatalf("estimate %d after more ends than starts, want 0", got)
	}
}

// fakeActivator answers a directory's ListActivations with a fixed list.
type fakeActivator struct{ list *clusterpb.ActivationList }

func (f *fakeActivator) Receive(c actor.Context) {
	if _, ok := c.Message().(*clusterpb.ListActivations); ok {
		c.Respond(f.list)
	}
}

// When a member's claims do not come in time (lost on a first dial, or the
// member has not seen the new view yet), the directory asks that member
// for its activations instead of serving blind, and answers a lookup with
// the live activation the member listed. The timeout runs on the
// lookup's clock: an hour that passes only when the test advances it.
func TestDirectory_HandoverTimeoutAsksTheSilentMember(t *testing.T) {
	as := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	t.Cleanup(as.Shutdown)
	const peer = "peer-id"
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	spawn := func(*actors.Activation) (*actor.PID, error) { t.Error("nothing should be spawned"); return nil, nil }
	members := fakeMembers{{ID: as.ID, Name: "self"}, {ID: peer, Name: "peer"}}
	clk := clock.NewFake(time.Unix(0, 0))
	l := newLookup(as, spawn, clk, LookupConfig{HandoverTimeout: time.Hour}, members, slog.New(slog.DiscardHandler), m)
	// The peer's activator is served by this system (both members share
	// its address), so the directory's pull reaches it.
	topo := newTopology(map[string]string{as.ID: as.Address(), peer: as.Address()})
	id := ownedIdentity(t, topo, as.ID)
	live := &clusterpb.Ref{Address: as.Address(), Id: "account/" + id + "$3"}
	if _, err := as.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &fakeActivator{list: &clusterpb.ActivationList{MemberId: peer, Activations: []*clusterpb.Activation{
			{Kind: actors.KindAccount, Identity: id, Pid: live},
		}}}
	}), activatorName); err != nil {
		t.Fatal(err)
	}
	dir := as.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newDirectory(l) }))
	t.Cleanup(func() { _ = as.Root.StopFuture(dir).Wait() })
	as.Root.Send(dir, topologyChanged{topo: topo})
	as.Root.Send(dir, &clusterpb.Claims{Topology: topo.hash, From: as.ID}) // the peer never sends its claims

	lookup := &clusterpb.Lookup{Kind: actors.KindAccount, Identity: id, Topology: topo.hash}
	if _, err := as.Root.RequestFuture(dir, lookup, 50*time.Millisecond).Result(); err == nil {
		t.Fatal("the directory served before the handover timeout, with a member's claims missing")
	}
	f := as.Root.RequestFuture(dir, lookup, 10*time.Second)
	answered := make(chan any, 1)
	go func() {
		res, _ := f.Result()
		answered <- res
	}()
	var res any
	for deadline := time.Now().Add(10 * time.Second); res == nil; {
		if time.Now().After(deadline) {
			t.Fatal("no answer after the handover timeout passed on the lookup's clock")
		}
		clk.Advance(time.Hour) // the timer may be set after an earlier Advance
		select {
		case res = <-answered:
		case <-time.After(5 * time.Millisecond): // polling interval
		}
	}
	if rep, _ := res.(*clusterpb.LookupReply); rep.GetPid().GetId() != live.Id {
		t.Fatalf("lookup answered %+v, want the activation the silent member listed %+v", rep, live)
	}
}

// An activation the directory does not know yet (its claim is still on
// the way) may stop, but its entry stays "stopping" until it is gone, so
// that no lookup starts a second activation while it writes its state.
func TestDirectory_UnknownActivationStoppingBlocksANewOneUntilGone(t *testing.T) {
	as, dir, topo, peer := directoryUnderTest(t)
	as.Root.Send(dir, &clusterpb.Claims{Topology: topo.hash, From: as.ID})
	as.Root.Send(dir, &clusterpb.Claims{Topology: topo.hash, From: peer})
	id := ownedIdentity(t, topo, as.ID)
	pid := &clusterpb.Ref{Address: "peer.invalid:1", Id: "account/" + id + "$9"}
	res, err := as.Root.RequestFuture(dir, &clusterpb.Deactivate{Kind: actors.KindAccount, Identity: id, Pid: pid}, time.Second).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !res.(*clusterpb.DeactivateReply).Ok {
		t.Fatal("an unknown activation was refused its stop")
	}
	describe := func() *clusterpb.DescribeReply {
		d, err := as.Root.RequestFuture(dir, &clusterpb.Describe{Kind: actors.KindAccount, Identity: id}, time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d.(*clusterpb.DescribeReply)
	}
	if d := describe(); !d.Found || d.State != "stopping" {
		t.Fatalf("after the stop of an unknown activation: %+v, want a stopping entry", d)
	}
	as.Root.Send(dir, &clusterpb.Gone{Kind: actors.KindAccount, Identity: id, Pid: pid})
	if d := describe(); d.Found {
		t.Fatalf("after Gone: %+v, want no entry", d)
	}
}

// The directory places a call with placement's shared builders, as the
// simulator does: for the same members, hint and random source, decide
// gives what placement.RouteOf(...).Place gives, conditions included (the
// peer's CPU is over the default limit, so it is passed over).
func TestDirectory_CallPlacementIsTheSharedBuilder(t *testing.T) {
	as, _, topo, peer := directoryUnderTest(t)
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	members := fakeMembers{
		{ID: as.ID, Name: "self", Pool: "p", Load: placement.Load{ActiveCalls: 3, CPU: 0.2}},
		{ID: peer, Name: "peer", Pool: "p", Load: placement.Load{ActiveCalls: 1, CPU: 0.95}},
	}
	l := newLookup(as, nil, clock.Real{}, LookupConfig{HandoverTimeout: time.Hour, Seed: 9}, members, slog.New(slog.DiscardHandler), m)
	d := newDirectory(l).s
	d.topo = topo
	dec, _, capacity, err := d.decide(actors.KindCall, "c1", &clusterpb.Hint{Pool: "p", CallCapacity: 10})
	if err != nil {
		t.Fatal(err)
	}
	route := placement.RouteOf(placement.PoolSpec{Name: "p", CallCapacityPerNode: 10}, nil, 0)
	want, _, wantCap, err := route.Place("c1", members, rand.New(rand.NewPCG(9, 0x5b)))
	if err != nil {
		t.Fatal(err)
	}
	if dec.Member != as.ID || dec.Member != want.Member || int(capacity) != wantCap || !reflect.DeepEqual(dec.Candidates, want.Candidates) {
		t.Fatalf("directory chose %s (capacity %d, %+v); the shared builder %s (capacity %d, %+v)",
			dec.Member, capacity, dec.Candidates, want.Member, wantCap, want.Candidates)
	}
}

// An activator answers with a code the directory acts on: another view's
// placement OTHER_VIEW, a call over the capacity FULL, an identity whose
// previous activation still stops STOPPING, a spawn OK with its PID.
func TestActivator_AnswersWithACode(t *testing.T) {
	as, _, topo, _ := directoryUnderTest(t)
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	spawn := func(act *actors.Activation) (*actor.PID, error) {
		return actor.NewPID(as.Address(), act.Kind+"/"+act.Identity), nil
	}
	l := newLookup(as, spawn, clock.Real{}, LookupConfig{}, fakeMembers{}, slog.New(slog.DiscardHandler), m)
	a := &activator{l: l, topo: topo}
	call := func(id string, view uint64) *clusterpb.ActivateReply {
		return a.activate(&clusterpb.Activate{Kind: actors.KindCall, Identity: id, Topology: view, CallCapacity: 1})
	}
	if r := call("c1", topo.hash+1); r.Code != clusterpb.ActivateCode_ACTIVATE_CODE_OTHER_VIEW {
		t.Fatalf("another view's placement: %v", r)
	}
	if r := call("c1", topo.hash); r.Code != clusterpb.ActivateCode_ACTIVATE_CODE_OK || r.Pid.GetId() != "call/c1" {
		t.Fatalf("the first call: %v", r)
	}
	if r := call("c2", topo.hash); r.Code != clusterpb.ActivateCode_ACTIVATE_CODE_FULL {
		t.Fatalf("a call over the capacity: %v", r)
	}
	l.local[entryKey(actors.KindCall, "c1")].stopping = true
	l.stoppingByKind[actors.KindCall]++
	if r := a.activate(&clusterpb.Activate{Kind: actors.KindCall, Identity: "c1", Topology: topo.hash}); r.Code != clusterpb.ActivateCode_ACTIVATE_CODE_STOPPING {
		t.Fatalf("an identity still stopping: %v", r)
	}
}
