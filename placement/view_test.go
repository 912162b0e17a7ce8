package placement

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// An optimistic increment counts until a report as of a later time (which
// counts it) arrives; an older report changes nothing; estimates stay >= 0.
func TestLoadView_IncrementsExpireWithALaterReport(t *testing.T) {
	t0 := time.Unix(100, 0)
	v := NewLoadView()
	v.Report("a", Load{ActiveCalls: 10, Activations: map[string]int{KindDeviceGroup: 4}, CPU: 0.3}, t0)
	v.Add("a", KindCall, 3, t0.Add(time.Second))
	v.Add("a", KindDeviceGroup, 2, t0.Add(time.Second))
	steps := []struct {
		name        string
		do          func()
		calls, acts int
	}{
		{"increments count", func() {}, 13, 6},
		{"an older report is ignored", func() { v.Report("a", Load{ActiveCalls: 50}, t0.Add(-time.Second)) }, 13, 6},
		{"a report as of the increments' time does not count them", func() { v.Report("a", Load{ActiveCalls: 12}, t0.Add(time.Second)) }, 15, 2},
		{"a later report retires them", func() { v.Report("a", Load{ActiveCalls: 12}, t0.Add(2*time.Second)) }, 12, 0},
		{"ends below the report floor at 0", func() { v.Add("a", KindCall, -20, t0.Add(3*time.Second)) }, 0, 0},
		{"full until the next report", func() { v.MarkFull("a", 40, t0.Add(3*time.Second)) }, 40, 0},
		{"the next report clears full", func() { v.Report("a", Load{ActiveCalls: 7}, t0.Add(4*time.Second)) }, 7, 0},
	}
	for _, s := range steps {
		s.do()
		if got := v.ActiveCalls("a"); got != s.calls {
			t.Errorf("%s: active calls %d, want %d", s.name, got, s.calls)
		}
		if got := v.Activations("a", KindDeviceGroup); got != s.acts {
			t.Errorf("%s: device groups %d, want %d", s.name, got, s.acts)
		}
		if l := v.Load("a"); l.ActiveCalls != s.calls {
			t.Errorf("%s: Load().ActiveCalls %d, want %d", s.name, l.ActiveCalls, s.calls)
		}
	}
	v.Retain(func(string) bool { return false })
	if v.ActiveCalls("a") != 0 {
		t.Error("a forgotten member still has calls")
	}
}

// The full-node retry policy: a call refused by full nodes is placed again
// up to MaxFullRefusals times, then rejected.
func TestRetryAfterFull_BoundedRetries(t *testing.T) {
	for refused, want := range map[int]bool{1: true, 2: true, MaxFullRefusals: true, MaxFullRefusals + 1: false, 9: false} {
		if got := RetryAfterFull(refused); got != want {
			t.Errorf("RetryAfterFull(%d) = %v, want %v", refused, got, want)
		}
	}
}

// Each prescribed condition of the candidate builders excludes a node (tier
// 2) or a pool (tier 1): capacity, CPU, draining; high water, reserved.
func TestBuilders_EachConditionExcludes(t *testing.T) {
	node := func(id, pool string, calls int, cpu float64, draining bool) Member {
		return Member{ID: id, Name: id, Pool: pool, Draining: draining, Load: Load{ActiveCalls: calls, CPU: cpu}}
	}
	route := CallRoute{Pool: "p", Capacity: 10, CPULimit: 0.8, Overflow: "o", OverflowCapacity: 10}
	tier2 := []struct {
		name, why string
		bad       Member
	}{
		{"capacity", "at capacity 10", node("bad", "p", 10, 0.1, false)},
		{"cpu", "CPU at or above 0.8", node("bad", "p", 0, 0.85, false)},
		{"draining", "draining", node("bad", "p", 0, 0.1, true)},
	}
	for _, tt := range tier2 {
		t.Run("tier2/"+tt.name, func(t *testing.T) {
			members := []Member{tt.bad, node("good", "p", 5, 0.1, false), node("other", "x", 0, 0, false)}
			pool, over := route.Pools(members)
			if len(pool.Members) != 2 || len(over.Members) != 0 || pool.Policy.Capacity != 10 || pool.Policy.CPULimit != 0.8 {
				t.Fatalf("pools %+v / %+v", pool, over)
			}
			d, overflowed, capacity, err := route.Place("c1", members, rand.New(rand.NewPCG(1, 2)))
			if err != nil || d.Member != "good" || overflowed || capacity != 10 {
				t.Fatalf("chose %q (overflowed %v, capacity %d, err %v), want good", d.Member, overflowed, capacity, err)
			}
			for _, c := range d.Candidates {
				if c.ID == "bad" && (c.Eligible || c.Why != tt.why) {
					t.Errorf("bad node: eligible %v why %q, want %q", c.Eligible, c.Why, tt.why)
				}
			}
			// Alone, the bad node leaves the call to the overflow pool.
			members = []Member{tt.bad, node("spare", "o", 0, 0, false)}
			if d, overflowed, _, err := route.Place("c1", members, rand.New(rand.NewPCG(1, 2))); err != nil || !overflowed || d.Member != "spare" {
				t.Errorf("without a good node: %q overflowed %v err %v; want the overflow's spare", d.Member, overflowed, err)
			}
			if _, _, _, err := route.Place("c1", []Member{tt.bad}, rand.New(rand.NewPCG(1, 2))); !errors.Is(err, ErrNoCapacity) {
				t.Errorf("only the bad node: err %v, want ErrNoCapacity", err)
			}
		})
	}

	specs := map[string]PoolSpec{"a": {Name: "a", CallCapacityPerNode: 10, HighWater: 0.5}}
	tier1 := []struct {
		name     string
		members  []Member
		reserved map[string]int
		why      string
	}{
		{"high water", []Member{node("a1", "a", 5, 0, false)}, nil, "utilization 0.50 at or above high-water 0.50"},
		{"reserved", []Member{node("a1", "a", 1, 0, false)}, map[string]int{"a": 4}, "utilization 0.50 at or above high-water 0.50"},
		{"draining", []Member{node("a1", "a", 0, 0, true)}, nil, "no alive nodes"},
	}
	for _, tt := range tier1 {
		t.Run("tier1/"+tt.name, func(t *testing.T) {
			members := append(tt.members, node("b1", "b", 0, 0, false))
			states := PoolStates(specs, members, tt.reserved)
			if len(states) != 2 || states[0].Spec.Name != "a" || states[1].Spec.CallCapacityPerNode != DefaultCallCapacityPerNode {
				t.Fatalf("states %+v", states)
			}
			d, err := ChoosePool(GroupSpec{ID: "g", Current: "a"}, states)
			if err != nil || d.Pool != "b" || d.Candidates[0].Eligible || d.Candidates[0].Why != tt.why {
				t.Errorf("chose %q (err %v); pool a: %+v, want it excluded: %s", d.Pool, err, d.Candidates[0], tt.why)
			}
		})
	}
}
