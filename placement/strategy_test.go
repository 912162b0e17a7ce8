package placement

import (
	"errors"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

var allStrategies = []Strategy{NewBoundedLoad(DefaultEpsilon), Rendezvous{}, Random{}, LeastLoaded{}}

// cloneMembers deep-copies ms, load maps included.
func cloneMembers(ms []Member) []Member {
	out := slices.Clone(ms)
	for i := range out {
		out[i].Load.Activations = maps.Clone(ms[i].Load.Activations)
	}
	return out
}

// unevenMembers returns n members with varied loads of kind, some draining.
func unevenMembers(seed uint64, n int, kind string) []Member {
	ms := testMembers(seed, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range ms {
		ms[i].Load.Activations[kind] = r.IntN(20)
		ms[i].Draining = i%5 == 4
	}
	return ms
}

// TestPlace_PureFunction_SameInputsSameDecisionInAnyMemberOrder: the
// runtime and the simulator must agree, so a decision depends only on the
// arguments: the same members in any order, with an rng seeded alike, give
// the same Decision, Reason and Candidates included; and Place leaves the
// members as it found them.
func TestPlace_PureFunction_SameInputsSameDecisionInAnyMemberOrder(t *testing.T) {
	const kind = "DeviceGroup"
	for _, s := range allStrategies {
		t.Run(s.Name(), func(t *testing.T) {
			ms := unevenMembers(10, 12, kind)
			orig := cloneMembers(ms)
			shuffle := rand.New(rand.NewPCG(10, 10))
			for i := range 500 {
				first, err := s.Place(kind, identity(i), ms, rand.New(rand.NewPCG(uint64(i), 0)))
				if err != nil {
					t.Fatal(err)
				}
				again, _ := s.Place(kind, identity(i), ms, rand.New(rand.NewPCG(uint64(i), 0)))
				shuffled := cloneMembers(ms)
				shuffle.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
				other, _ := s.Place(kind, identity(i), shuffled, rand.New(rand.NewPCG(uint64(i), 0)))
				if !reflect.DeepEqual(first, again) {
					t.Fatalf("%s: same inputs, different decisions:\n%+v\n%+v", identity(i), first, again)
				}
				if !reflect.DeepEqual(first, other) {
					t.Fatalf("%s: decision depends on member order:\n%+v\n%+v", identity(i), first, other)
				}
			}
			if !reflect.DeepEqual(ms, orig) {
				t.Error("Place modified its members")
			}
		})
	}
}

// TestPlace_DrainingMembersNeverChosen: draining members are the preferred
// and the least loaded ones here, and still never receive a placement.
func TestPlace_DrainingMembersNeverChosen(t *testing.T) {
	const kind = "Call"
	for _, s := range allStrategies {
		t.Run(s.Name(), func(t *testing.T) {
			ms := testMembers(11, 8)
			for i := range ms {
				ms[i].Draining = i < 3
				if !ms[i].Draining {
					ms[i].Load.Activations[kind] = 50
				}
			}
			rng := rand.New(rand.NewPCG(11, 11))
			chosen := map[string]int{}
			for i := range 2000 {
				d, err := s.Place(kind, identity(i), ms, rng)
				if err != nil {
					t.Fatal(err)
				}
				apply(ms, kind, d)
				chosen[d.Member]++
				for _, c := range d.Candidates {
					if c.ID == d.Member && !c.Eligible {
						t.Fatalf("%s: chose ineligible %s (%s)", identity(i), c.Name, c.Why)
					}
					if slices.ContainsFunc(ms[:3], func(m Member) bool { return m.ID == c.ID }) &&
						(c.Eligible || c.Why != "draining") {
						t.Fatalf("%s: draining %s listed as eligible=%v why=%q", identity(i), c.Name, c.Eligible, c.Why)
					}
				}
			}
			for _, m := range ms[:3] {
				if chosen[m.ID] > 0 {
					t.Errorf("draining %s chosen %d times", m.Name, chosen[m.ID])
				}
			}
			if len(chosen) != 5 {
				t.Errorf("placed on %d members, want all 5 that are not draining", len(chosen))
			}
		})
	}
}

func TestPlace_NoEligibleMember_ErrNoMembers(t *testing.T) {
	allDraining := testMembers(12, 3)
	for i := range allDraining {
		allDraining[i].Draining = true
	}
	tests := []struct {
		name    string
		members []Member
	}{
		{"nil", nil},
		{"empty", []Member{}},
		{"all draining", allDraining},
	}
	for _, s := range allStrategies {
		for _, tt := range tests {
			t.Run(s.Name()+"/"+tt.name, func(t *testing.T) {
				d, err := s.Place("Call", "x", tt.members, rand.New(rand.NewPCG(1, 1)))
				if !errors.Is(err, ErrNoMembers) {
					t.Fatalf("err = %v, want ErrNoMembers", err)
				}
				if d.Member != "" || d.Strategy != s.Name() || d.Reason == "" || len(d.Candidates) != len(tt.members) {
					t.Errorf("decision %+v: want no member, the strategy, a reason and %d candidates", d, len(tt.members))
				}
			})
		}
	}
}

func TestPlace_InvalidArguments(t *testing.T) {
	dup := testMembers(13, 3)
	dup[2].ID = dup[0].ID
	noID := testMembers(13, 3)
	noID[1].ID = ""
	for _, s := range allStrategies {
		for name, ms := range map[string][]Member{"duplicate id": dup, "empty id": noID} {
			t.Run(s.Name()+"/"+name, func(t *testing.T) {
				if _, err := s.Place("Call", "x", ms, rand.New(rand.NewPCG(1, 1))); !errors.Is(err, ErrInvalidArgument) {
					t.Errorf("err = %v, want ErrInvalidArgument", err)
				}
			})
		}
	}
	t.Run("random/nil rng", func(t *testing.T) {
		if _, err := (Random{}).Place("Call", "x", testMembers(13, 3), nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	})
}

// namedByRank returns three members named, in rendezvous rank order for
// (kind, id), names[0], names[1], names[2], with the given loads of kind.
func namedByRank(t *testing.T, kind, id string, names [3]string, loads [3]int, draining [3]bool) []Member {
	t.Helper()
	ms := testMembers(14, 3)
	order := Rank(Key(kind, id), ids(ms))
	byID := map[string]*Member{}
	for i := range ms {
		byID[ms[i].ID] = &ms[i]
	}
	for r, mid := range order {
		m := byID[mid]
		m.Name, m.Load.Activations[kind], m.Draining = names[r], loads[r], draining[r]
	}
	return ms
}

// TestPlace_ReasonAndCandidatesExplainTheChoice pins the sentences ops read
// on the debug endpoint, and the figures behind them.
func TestPlace_ReasonAndCandidatesExplainTheChoice(t *testing.T) {
	const kind, id = "DeviceGroup", "acct-7/grp-3"
	names := [3]string{"b", "c", "a"} // rank 1, 2, 3
	type cand struct {
		load, capacity int
		eligible       bool
		why            string
	}
	tests := []struct {
		name     string
		s        Strategy
		loads    [3]int
		draining [3]bool
		want     string
		member   string
		cands    [3]cand
	}{
		{
			name: "bounded/preferred at capacity", s: NewBoundedLoad(0.25), loads: [3]int{13, 9, 7},
			// capacity = ceil(1.25 * (29+1) / 3) = 13
			want:   "preferred node b is at capacity 13 (load 13); chose c, rank 2, load 9",
			member: "c",
			cands:  [3]cand{{13, 13, false, "at capacity 13"}, {9, 13, true, ""}, {7, 13, true, "lower rank"}},
		},
		{
			name: "bounded/preferred below capacity", s: NewBoundedLoad(0.25), loads: [3]int{12, 9, 8},
			want:   "chose preferred node b, rank 1, load 12 below capacity 13",
			member: "b",
			cands:  [3]cand{{12, 13, true, ""}, {9, 13, true, "lower rank"}, {8, 13, true, "lower rank"}},
		},
		{
			name: "bounded/preferred draining, second over capacity", s: NewBoundedLoad(0.25),
			loads: [3]int{0, 20, 2}, draining: [3]bool{true, false, false},
			// eligible total 22, capacity = ceil(1.25 * 23 / 2) = 15
			want:   "preferred node b is draining; 1 more passed over; chose a, rank 3, load 2",
			member: "a",
			cands:  [3]cand{{0, 0, false, "draining"}, {20, 15, false, "over capacity 15"}, {2, 15, true, ""}},
		},
		{
			name: "rendezvous/preferred draining", s: Rendezvous{},
			loads: [3]int{1, 30, 2}, draining: [3]bool{true, false, false},
			want:   "preferred node b is draining; chose c, rank 2, load 30",
			member: "c",
			cands:  [3]cand{{1, 0, false, "draining"}, {30, 0, true, ""}, {2, 0, true, "lower rank"}},
		},
		{
			name: "leastloaded/tie goes to the better rank", s: LeastLoaded{}, loads: [3]int{9, 4, 4},
			want:   "chose c, rank 2, with the fewest activations of DeviceGroup (4) among 3 eligible nodes; 1 more tied, better rank wins",
			member: "c",
			cands:  [3]cand{{9, 0, true, "above the least load 4"}, {4, 0, true, ""}, {4, 0, true, "tied at load 4, lower rank"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := namedByRank(t, kind, id, names, tt.loads, tt.draining)
			d, err := tt.s.Place(kind, id, ms, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Reason != tt.want {
				t.Errorf("Reason = %q\nwant     %q", d.Reason, tt.want)
			}
			if d.MemberName != tt.member || d.Strategy != tt.s.Name() {
				t.Errorf("chose %s by %s, want %s by %s", d.MemberName, d.Strategy, tt.member, tt.s.Name())
			}
			for r, c := range d.Candidates {
				w := tt.cands[r]
				got := cand{c.Load, c.Capacity, c.Eligible, c.Why}
				if c.Rank != r+1 || c.Name != names[r] || got != w {
					t.Errorf("candidate %d = %+v, want rank %d %s %+v", r, c, r+1, names[r], w)
				}
			}
		})
	}
}

// TestRandom_UniformOverEligibleMembers: draws spread evenly (chi-square at
// p=1e-4) over the members that are not draining, and follow the rng.
func TestRandom_UniformOverEligibleMembers(t *testing.T) {
	const draws = 40_000
	ms := testMembers(15, 10)
	ms[3].Draining = true
	ms[7].Draining = true
	sequence := func(seed uint64) ([]string, map[string]int) {
		rng := rand.New(rand.NewPCG(seed, 0))
		seq, counts := make([]string, draws), map[string]int{}
		for i := range draws {
			d, err := Random{}.Place("Call", "same-identity", ms, rng)
			if err != nil {
				t.Fatal(err)
			}
			seq[i] = d.Member
			counts[d.Member]++
		}
		return seq, counts
	}
	seq1, counts := sequence(1)
	if _, bad := counts[ms[3].ID]; bad || len(counts) != 8 {
		t.Fatalf("drew %d distinct members, draining included=%v; want the 8 eligible", len(counts), bad)
	}
	chi, crit := chiSquare(counts, 8, draws), chiSquareCritical(7, 3.719)
	t.Logf("chi-square %.1f (critical %.1f), max/mean %.4f", chi, crit, maxOverMean(counts, 8, draws))
	if chi > crit {
		t.Errorf("chi-square %.1f > %.1f: draws not uniform", chi, crit)
	}
	if seq2, _ := sequence(2); slices.Equal(seq1, seq2) {
		t.Error("seeds 1 and 2 drew the same sequence: the rng is not used")
	}
}

func TestLeastLoaded_FewestActivationsOfTheKind(t *testing.T) {
	ms := testMembers(16, 6)
	for i := range ms {
		ms[i].Load.Activations["Call"] = 10 + i
		ms[i].Load.Activations["Account"] = 100 - i // other kinds do not count
		ms[i].Load.ActiveCalls = 1000 - i
	}
	for i := range 200 {
		d, err := LeastLoaded{}.Place("Call", identity(i), ms, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Member != ms[0].ID {
			t.Fatalf("%s: chose %s, want %s with the fewest calls", identity(i), d.MemberName, ms[0].Name)
		}
	}
}

func TestByName(t *testing.T) {
	for _, name := range []string{NameBoundedLoad, NameRendezvous, NameRandom, NameLeastLoaded} {
		t.Run(name, func(t *testing.T) {
			s, err := ByName(name)
			if err != nil || s.Name() != name {
				t.Fatalf("ByName(%q) = %v, %v", name, s, err)
			}
		})
	}
	t.Run("bounded-load gets the default epsilon", func(t *testing.T) {
		s, _ := ByName(NameBoundedLoad)
		if b, ok := s.(*BoundedLoad); !ok || b.Epsilon != DefaultEpsilon {
			t.Errorf("ByName(bounded-load) = %#v, want epsilon %v", s, DefaultEpsilon)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, err := ByName("power-of-two"); !errors.Is(err, ErrUnknownStrategy) {
			t.Errorf("err = %v, want ErrUnknownStrategy", err)
		}
	})
}

// TestPlace_NegativeLoadsCountAsZero: a corrupt report must not make a
// member look emptier than empty (or break BoundedLoad's capacity).
func TestPlace_NegativeLoadsCountAsZero(t *testing.T) {
	ms := testMembers(17, 2)
	ms[0].Load.Activations["Call"] = -1000
	ms[1].Load.Activations["Call"] = 0
	for _, s := range allStrategies {
		t.Run(s.Name(), func(t *testing.T) {
			d, err := s.Place("Call", "x", ms, rand.New(rand.NewPCG(1, 1)))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range d.Candidates {
				if c.Load != 0 {
					t.Errorf("%s load %d, want 0", c.Name, c.Load)
				}
			}
		})
	}
}
