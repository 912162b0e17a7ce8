package placement

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func callMembers(seed uint64, calls ...int) []Member {
	ms := testMembers(seed, len(calls))
	for i, c := range calls {
		ms[i].Load.ActiveCalls = c
	}
	return ms
}

// TestPowerOfTwo_Abstract4_PredefinedConditions: "call load balancers ...
// determine if predefined conditions are currently being met" (abstract 4):
// never a draining node, one at capacity or one at the CPU limit.
func TestPowerOfTwo_Abstract4_PredefinedConditions(t *testing.T) {
	p := PowerOfTwo{Capacity: 10, CPULimit: 0.8}
	tests := []struct {
		name   string
		setup  func(ms []Member)
		want   string // node name, "" for an error
		err    error
		reason string
	}{
		{"only the node with room", func(ms []Member) { ms[0].Load.ActiveCalls, ms[1].Load.ActiveCalls = 10, 12 }, "node-3", nil, "the only one"},
		{"draining never chosen", func(ms []Member) { ms[0].Draining, ms[1].Draining = true, true }, "node-3", nil, "the only one"},
		{"hot CPU never chosen", func(ms []Member) { ms[0].Load.CPU, ms[2].Load.CPU = 0.8, 0.95 }, "node-2", nil, "the only one"},
		{"all full", func(ms []Member) {
			for i := range ms {
				ms[i].Load.ActiveCalls = 10
			}
		}, "", ErrNoCapacity, "none of 3 nodes"},
		{"all draining", func(ms []Member) {
			for i := range ms {
				ms[i].Draining = true
			}
		}, "", ErrNoMembers, "draining"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := callMembers(3, 0, 0, 0)
			tt.setup(ms)
			d, err := p.Place(KindCall, "call-1", ms, rand.New(rand.NewPCG(1, 1)))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if d.MemberName != tt.want && !(tt.want == "" && d.Member == "") {
				t.Errorf("chose %q, want %q (%s)", d.MemberName, tt.want, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.reason) || d.Strategy != NamePowerOfTwo {
				t.Errorf("Reason %q (strategy %q), want it to mention %q", d.Reason, d.Strategy, tt.reason)
			}
			for _, c := range d.Candidates {
				if c.ID != d.Member && c.Why == "" {
					t.Errorf("candidate %s has no Why", c.Name)
				}
			}
		})
	}
}

// TestPowerOfTwo_TakesTheLessLoadedOfTwo: with many random draws the choice
// is never the more loaded of its two samples, and never a node that does
// not qualify; the most loaded qualifying node is never chosen.
func TestPowerOfTwo_TakesTheLessLoadedOfTwo(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	p := PowerOfTwo{Capacity: 100}
	for trial := range 3000 {
		ms := callMembers(uint64(trial), 0, 0, 0, 0, 0, 0)
		for i := range ms {
			ms[i].Load.ActiveCalls = rng.IntN(120)
			ms[i].Draining = rng.IntN(5) == 0
		}
		d, err := p.Place(KindCall, identity(trial), ms, rng)
		if err != nil {
			continue
		}
		var chosen, other *Candidate
		qualifying := 0
		for i := range d.Candidates {
			c := &d.Candidates[i]
			if c.ID == d.Member {
				chosen = c
			}
			if c.Why == "sampled, more loaded" {
				other = c
			}
			if c.Eligible {
				qualifying++
			}
		}
		if chosen.Load >= 100 || !chosen.Eligible {
			t.Fatalf("trial %d: chose %s with %d calls (eligible %v)", trial, chosen.Name, chosen.Load, chosen.Eligible)
		}
		if qualifying > 1 && (other == nil || other.Load < chosen.Load) {
			t.Fatalf("trial %d: chose %d calls over sample %+v", trial, chosen.Load, other)
		}
	}
}

// TestPowerOfTwo_DeterministicAndOrderIndependent: the same rng state gives
// the same decision, whatever the order of the members.
func TestPowerOfTwo_DeterministicAndOrderIndependent(t *testing.T) {
	ms := callMembers(5, 3, 1, 4, 1, 5, 9, 2, 6)
	for i := range 100 {
		a, _ := PowerOfTwo{}.Place(KindCall, identity(i), ms, rand.New(rand.NewPCG(uint64(i), 7)))
		rev := make([]Member, len(ms))
		for j := range ms {
			rev[len(ms)-1-j] = ms[j]
		}
		b, _ := PowerOfTwo{}.Place(KindCall, identity(i), rev, rand.New(rand.NewPCG(uint64(i), 7)))
		if a.Member != b.Member || a.Reason != b.Reason {
			t.Fatalf("call %d: %s then %s after reversing the members", i, a.MemberName, b.MemberName)
		}
	}
}

func TestPowerOfTwo_RejectsBadArguments(t *testing.T) {
	ms := callMembers(1, 0, 0)
	for name, tc := range map[string]struct {
		p   PowerOfTwo
		rng *rand.Rand
	}{
		"nil rng":     {PowerOfTwo{}, nil},
		"cpu limit 2": {PowerOfTwo{CPULimit: 2}, rand.New(rand.NewPCG(1, 1))},
		"capacity -1": {PowerOfTwo{Capacity: -1}, rand.New(rand.NewPCG(1, 1))},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tc.p.Place(KindCall, "c", ms, tc.rng); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

// TestPlaceCall_OverflowOnlyWhenThePoolHasNoQualifyingNode: "No node
// qualifies: the overflow pool if one is configured, else ErrNoCapacity"
// (issue 4).
func TestPlaceCall_OverflowOnlyWhenThePoolHasNoQualifyingNode(t *testing.T) {
	p := PowerOfTwo{Capacity: 5}
	tests := []struct {
		name           string
		pool, overflow []Member
		overflowed     bool
		err            error
	}{
		{"pool has room", callMembers(1, 4, 5), callMembers(2, 0), false, nil},
		{"pool full, overflow has room", callMembers(1, 5, 5), callMembers(2, 0), true, nil},
		{"pool empty, overflow has room", nil, callMembers(2, 0), true, nil},
		{"pool full, no overflow", callMembers(1, 5, 5), nil, false, ErrNoCapacity},
		{"both full", callMembers(1, 5, 5), callMembers(2, 5), false, ErrNoCapacity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, over, err := PlaceCall("call-9", CallPool{p, tt.pool}, CallPool{p, tt.overflow}, rand.New(rand.NewPCG(3, 3)))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) || over != tt.overflowed {
				t.Fatalf("overflowed %v err %v, want %v %v", over, err, tt.overflowed, tt.err)
			}
			if err == nil && d.Member == "" || d.Reason == "" {
				t.Errorf("decision %+v", d)
			}
			if over && !strings.Contains(d.Reason, "overflow: ") {
				t.Errorf("Reason %q does not explain the overflow", d.Reason)
			}
			if len(d.Candidates) != len(tt.pool)+map[bool]int{true: len(tt.overflow)}[tt.overflow != nil && (over || err != nil)] {
				t.Errorf("%d candidates for %d+%d members", len(d.Candidates), len(tt.pool), len(tt.overflow))
			}
		})
	}
}

// TestSetCallLoad_BaselinesCompareActiveCalls: LeastLoaded, fed SetCallLoad,
// picks the node with the fewest active calls.
func TestSetCallLoad_BaselinesCompareActiveCalls(t *testing.T) {
	ms := callMembers(8, 7, 3, 9)
	ms[1].Load.Activations = nil
	SetCallLoad(ms, KindCall)
	d, err := LeastLoaded{}.Place(KindCall, "c", ms, nil)
	if err != nil || d.MemberName != "node-2" {
		t.Fatalf("least-loaded chose %q, %v; want node-2", d.MemberName, err)
	}
}
