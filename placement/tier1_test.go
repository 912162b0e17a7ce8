package placement

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// poolOf returns a pool named name with nodes alive members, each carrying
// calls active calls.
func poolOf(name string, nodes, calls int, labels map[string]string) PoolState {
	ms := testMembers(uint64(len(name))*7919+uint64(nodes), nodes)
	for i := range ms {
		ms[i].ID = name + "-" + ms[i].ID
		ms[i].Pool = name
		ms[i].Load.ActiveCalls = calls
	}
	return PoolState{Spec: PoolSpec{Name: name, CallCapacityPerNode: 100, HighWater: 0.8, Labels: labels}, Nodes: ms}
}

// TestChoosePool_Abstract4_PrescribedConditions: "The cluster is assigned to
// the device group based on prescribed conditions" (abstract 4): pinned
// first, then the sticky current pool while it meets the conditions, then
// the eligible pool with the most headroom.
func TestChoosePool_Abstract4_PrescribedConditions(t *testing.T) {
	eu := map[string]string{"region": "eu"}
	us := map[string]string{"region": "us"}
	tests := []struct {
		name     string
		group    GroupSpec
		pools    []PoolState
		want     string
		kept     bool
		err      error
		reason   string // substring of Reason
		ineligib string // pool expected ineligible
	}{
		{"most headroom wins", GroupSpec{ID: "g", Size: 10},
			[]PoolState{poolOf("a", 2, 50, nil), poolOf("b", 4, 50, nil)}, "b", false, nil, "most headroom, 200", ""},
		{"pinned wins over headroom", GroupSpec{ID: "g", Pinned: "a"},
			[]PoolState{poolOf("a", 2, 79, nil), poolOf("b", 4, 0, nil)}, "a", false, nil, "pinned to pool a", ""},
		{"pinned without alive nodes falls through", GroupSpec{ID: "g", Pinned: "a"},
			[]PoolState{poolOf("a", 0, 0, nil), poolOf("b", 1, 0, nil)}, "b", false, nil, "pinned pool a has no alive nodes", "a"},
		{"current kept while it meets the conditions", GroupSpec{ID: "g", Current: "a"},
			[]PoolState{poolOf("a", 2, 70, nil), poolOf("b", 4, 0, nil)}, "a", true, nil, "kept current pool a", ""},
		{"current over high-water is left", GroupSpec{ID: "g", Current: "a"},
			[]PoolState{poolOf("a", 2, 80, nil), poolOf("b", 1, 0, nil)}, "b", false, nil, "current pool a no longer meets", "a"},
		{"current without nodes is left", GroupSpec{ID: "g", Current: "a"},
			[]PoolState{poolOf("a", 0, 0, nil), poolOf("b", 1, 0, nil)}, "b", false, nil, "no alive nodes", "a"},
		{"labels must match", GroupSpec{ID: "g", Labels: eu},
			[]PoolState{poolOf("a", 1, 0, eu), poolOf("b", 8, 0, us)}, "a", false, nil, "among 1 pools", "b"},
		{"current with changed labels is left", GroupSpec{ID: "g", Labels: eu, Current: "b"},
			[]PoolState{poolOf("a", 1, 0, eu), poolOf("b", 8, 0, us)}, "a", false, nil, "labels do not match: region=eu (pool has us)", "b"},
		{"none eligible", GroupSpec{ID: "g"},
			[]PoolState{poolOf("a", 2, 90, nil), poolOf("b", 0, 0, nil)}, "", false, ErrNoCapacity, "none of 2 pools", "a"},
		{"no pools", GroupSpec{ID: "g"}, nil, "", false, ErrNoCapacity, "none of 0 pools", ""},
		{"duplicate pool names", GroupSpec{ID: "g"},
			[]PoolState{poolOf("a", 1, 0, nil), poolOf("a", 2, 0, nil)}, "", false, ErrInvalidArgument, "twice", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ChoosePool(tt.group, tt.pools)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if d.Pool != tt.want || d.Kept != tt.kept {
				t.Errorf("pool %q kept %v, want %q kept %v (%s)", d.Pool, d.Kept, tt.want, tt.kept, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Reason %q does not mention %q", d.Reason, tt.reason)
			}
			for _, c := range d.Candidates {
				if tt.ineligib != "" && c.Pool == tt.ineligib && (c.Eligible || c.Why == "") {
					t.Errorf("pool %s: eligible %v, why %q; want ineligible with a reason", c.Pool, c.Eligible, c.Why)
				}
				if c.Pool == d.Pool && !d.Kept && tt.group.Pinned != d.Pool && !c.Eligible {
					t.Errorf("chose ineligible pool %s", c.Pool)
				}
			}
		})
	}
}

func TestChoosePool_FiguresAndDefaults(t *testing.T) {
	p := poolOf("a", 4, 100, nil)
	p.Spec = PoolSpec{Name: "a"} // never configured
	p.Reserved = 200
	d, err := ChoosePool(GroupSpec{ID: "g"}, []PoolState{p})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Candidates[0]
	capacity := 4 * DefaultCallCapacityPerNode
	if c.Nodes != 4 || c.Headroom != capacity-600 || c.Utilization != 600.0/float64(capacity) {
		t.Errorf("figures %+v, want 4 nodes, headroom %d, utilization %v", c, capacity-600, 600.0/float64(capacity))
	}
	p.Nodes[0].Draining = true
	d, _ = ChoosePool(GroupSpec{ID: "g"}, []PoolState{p})
	if d.Candidates[0].Nodes != 3 {
		t.Errorf("draining node counted: %d nodes", d.Candidates[0].Nodes)
	}
}

func TestPoolSpec_Validate(t *testing.T) {
	for _, s := range []PoolSpec{{}, {Name: "a", HighWater: 1.5}, {Name: "a", CallCapacityPerNode: -1}, {Name: "a", Overflow: "a"}} {
		if err := s.Validate(); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidArgument", s, err)
		}
	}
	if err := DefaultPoolSpec("a").Validate(); err != nil {
		t.Errorf("default spec: %v", err)
	}
}

// TestChoosePool_PureAndOrderIndependent: the same inputs in any order give
// the same decision.
func TestChoosePool_PureAndOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for trial := range 200 {
		var pools []PoolState
		for i := range 1 + rng.IntN(6) {
			pools = append(pools, poolOf(string(rune('a'+i)), rng.IntN(4), rng.IntN(100), nil))
		}
		g := GroupSpec{ID: "g", Size: rng.IntN(50), Current: string(rune('a' + rng.IntN(6)))}
		want, werr := ChoosePool(g, pools)
		rng.Shuffle(len(pools), func(i, j int) { pools[i], pools[j] = pools[j], pools[i] })
		got, gerr := ChoosePool(g, pools)
		if got.Pool != want.Pool || got.Reason != want.Reason || (werr == nil) != (gerr == nil) {
			t.Fatalf("trial %d: %q/%v then %q/%v after shuffling", trial, want.Pool, werr, got.Pool, gerr)
		}
		if want.Pool != "" && want.Reason == "" {
			t.Fatalf("trial %d: empty reason", trial)
		}
	}
}

// Groups created in a burst, before any call shows in the reports, see
// pools of equal headroom: each goes to the pool that ranks first for it by
// rendezvous, so they spread over the pools instead of all taking one, and
// the same group always makes the same choice.
func TestChoosePool_EqualHeadroomSpreadsGroupsByRendezvous(t *testing.T) {
	pools := []PoolState{poolOf("east", 4, 0, nil), poolOf("west", 4, 0, nil)}
	got := map[string]int{}
	for i := range 2000 {
		g := GroupSpec{ID: fmt.Sprintf("acct/grp-%d", i)}
		d, err := ChoosePool(g, pools)
		if err != nil {
			t.Fatal(err)
		}
		want := "east"
		if Hash(Key(KindDeviceGroup, g.ID), "west") > Hash(Key(KindDeviceGroup, g.ID), "east") {
			want = "west"
		}
		if d.Pool != want {
			t.Fatalf("group %s chose %s, want %s, the pool that ranks first for it", g.ID, d.Pool, want)
		}
		got[d.Pool]++
	}
	if got["east"] < 900 || got["west"] < 900 {
		t.Errorf("2000 groups split %v over two pools of equal headroom; want about half each", got)
	}
}
