package actors

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/placement"
)

// fakePools is a PoolSource whose figures a test changes.
type fakePools struct {
	mu     sync.Mutex
	states []placement.PoolState
}

func (f *fakePools) PoolStates(context.Context) ([]placement.PoolState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states, nil
}

func (f *fakePools) set(s []placement.PoolState) {
	f.mu.Lock()
	f.states = s
	f.mu.Unlock()
}

func poolWith(name string, nodes, callsEach int) placement.PoolState {
	st := placement.PoolState{Spec: placement.DefaultPoolSpec(name)}
	for i := range nodes {
		st.Nodes = append(st.Nodes, placement.Member{ID: name + string(rune('a'+i)), Pool: name, Load: placement.Load{ActiveCalls: callsEach}})
	}
	return st
}

// Tier 1 (abstract 4): a device group is assigned the pool that meets the
// prescribed conditions with the most headroom; the choice is sticky while
// the pool still meets them, and changes, with its reason, when it stops.
func TestTier1_GroupPoolByPrescribedConditionsAndSticky(t *testing.T) {
	fp := &fakePools{}
	fp.set([]placement.PoolState{poolWith("p1", 2, 400), poolWith("p2", 2, 10)})
	s := newSystem(t, persistence.NewMemory(), func(c *Config) { c.Pools = fp })
	provision(t, s, "acme", "hq")
	describe := func() *actorpb.Group {
		t.Helper()
		r := ask[*actorpb.GroupReply](t, s, KindAccount, "acme", &actorpb.DescribeGroup{Group: "hq"})
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		return r.Group
	}
	g := describe()
	if g.AssignedPool != "p2" || g.PoolReason == "" {
		t.Fatalf("first choice: %q (%s), want p2, the pool with most headroom", g.AssignedPool, g.PoolReason)
	}
	// p1 empties and now has more headroom; p2 still meets the conditions,
	// so the group stays.
	fp.set([]placement.PoolState{poolWith("p1", 2, 0), poolWith("p2", 2, 300)})
	if g := describe(); g.AssignedPool != "p2" {
		t.Fatalf("the group left a pool that still meets its conditions: %q", g.AssignedPool)
	}
	// p2 loses its nodes: it no longer meets the conditions.
	fp.set([]placement.PoolState{poolWith("p1", 2, 0), {Spec: placement.DefaultPoolSpec("p2")}})
	g = describe()
	if g.AssignedPool != "p1" || !strings.Contains(g.PoolReason, "p1") {
		t.Fatalf("after p2 lost its nodes: %q (%s)", g.AssignedPool, g.PoolReason)
	}
	// The change was persisted: a restarted node sees it.
	s2 := newSystem(t, s.cfg.Store, func(c *Config) { c.Pools = fp })
	if r := ask[*actorpb.GroupReply](t, s2, KindAccount, "acme", &actorpb.DescribeGroup{Group: "hq"}); r.Group.AssignedPool != "p1" {
		t.Fatalf("reloaded: %q", r.Group.AssignedPool)
	}
	// A pinned group goes to its pool even when another has more headroom.
	fp.set([]placement.PoolState{poolWith("p1", 2, 400), poolWith("p2", 2, 10)})
	if r := ask[*actorpb.GroupReply](t, s, KindAccount, "acme", &actorpb.PutGroup{Group: &actorpb.Group{Id: "ops", Pool: "p1"}}); r.Group.AssignedPool != "p1" {
		t.Fatalf("pinned group: %q", r.Group.AssignedPool)
	}
}
