package placement

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// placeAll places count new activations of kind, identities 0..count-1
// offset by from, feeding each decision back into the members' loads. check,
// if not nil, runs after each placement.
func placeAll(t *testing.T, s Strategy, kind string, ms []Member, from, count int, rng *rand.Rand,
	check func(placed int, d Decision)) map[string]string {
	t.Helper()
	where := make(map[string]string, count)
	for i := from; i < from+count; i++ {
		d, err := s.Place(kind, identity(i), ms, rng)
		if err != nil {
			t.Fatalf("Place %s: %v", identity(i), err)
		}
		apply(ms, kind, d)
		where[identity(i)] = d.Member
		if check != nil {
			check(i-from+1, d)
		}
	}
	return where
}

// TestBoundedLoad_Mirrokni2018_NoMemberAboveCeilOnePlusEpsilonMean: "the
// maximum load of a bin is at most ceil((1+eps) * m/n)" (Mirrokni, Thorup
// and Zadimoghaddam 2018, section 1). Placing activations one by one over 16
// members (64k with the default epsilon, 16k with the others), after every
// placement no member holds more than ceil((1+eps) * placed/n). Plain
// rendezvous is logged for comparison.
func TestBoundedLoad_Mirrokni2018_NoMemberAboveCeilOnePlusEpsilonMean(t *testing.T) {
	const n, kind = 16, "DeviceGroup"
	tests := []struct {
		eps    float64
		actors int
	}{
		{DefaultEpsilon, 64_000},
		{0.1, 16_000},
		{0.02, 16_000},
		{0, 16_000},
	}
	for _, tt := range tests {
		t.Run("eps="+strconv.FormatFloat(tt.eps, 'g', -1, 64)+"/actors="+strconv.Itoa(tt.actors), func(t *testing.T) {
			t.Parallel()
			ms := testMembers(6, n)
			placeAll(t, NewBoundedLoad(tt.eps), kind, ms, 0, tt.actors, nil, func(placed int, d Decision) {
				bound := int(math.Ceil((1 + tt.eps) * float64(placed) / n * (1 - capSlack)))
				for _, m := range ms {
					if got := m.Load.Activations[kind]; got > bound {
						t.Fatalf("after %d placements %s holds %d > ceil((1+%v)*%d/%d) = %d",
							placed, m.Name, got, tt.eps, placed, n, bound)
					}
				}
			})
			mean := float64(tt.actors) / n
			t.Logf("max/mean %.4f (bound ceil((1+eps)*mean)/mean = %.4f)",
				maxOverMean(activations(ms, kind), n, tt.actors), math.Ceil((1+tt.eps)*mean)/mean)
			if tt.eps == DefaultEpsilon {
				hrw := testMembers(6, n)
				placeAll(t, Rendezvous{}, kind, hrw, 0, tt.actors, nil, nil)
				t.Logf("reference, plain rendezvous: max/mean %.4f", maxOverMean(activations(hrw, kind), n, tt.actors))
			}
		})
	}
}

// TestBoundedLoad_Within3PercentOfMean: with Epsilon 0.02 and at least 1000
// activations per member, no member ends more than 3% above the mean: the
// bound ceil(1.02 * mean) is at most 1.02*mean + 1, and 1/mean <= 0.001.
// Any Epsilon <= 0.03 - 1/mean would do; 0.02 leaves room for rounding.
func TestBoundedLoad_Within3PercentOfMean(t *testing.T) {
	const eps, kind = 0.02, "Call"
	tests := []struct{ members, perMember int }{
		{8, 1000},
		{16, 1000},
		{64, 1000},
	}
	for _, tt := range tests {
		t.Run("members="+strconv.Itoa(tt.members)+"/per="+strconv.Itoa(tt.perMember), func(t *testing.T) {
			t.Parallel()
			ms := testMembers(7, tt.members)
			actors := tt.members * tt.perMember
			placeAll(t, NewBoundedLoad(eps), kind, ms, 0, actors, nil, nil)
			got := maxOverMean(activations(ms, kind), tt.members, actors)
			t.Logf("eps %v: max/mean %.4f", eps, got)
			if got > 1.03 {
				t.Errorf("max/mean %.4f > 1.03", got)
			}
		})
	}
}

// TestBoundedLoad_JoinSendsNewWorkToTheNewcomer: calls never migrate, so a
// joining member catches up only through new placements. Strategies place
// only new activations (old ones keep their member); with a
// tight bound the old members are at or over the new capacity, so the empty
// newcomer takes far more than the 1/(n+1) share plain rendezvous gives it,
// and no member exceeds ceil((1+eps) * mean).
func TestBoundedLoad_JoinSendsNewWorkToTheNewcomer(t *testing.T) {
	const n, perMember, fresh, eps, kind = 16, 1000, 4000, 0.02, "DeviceGroup"
	loadedThenJoin := func(s Strategy) []Member {
		ms := testMembers(8, n+1)
		placeAll(t, s, kind, ms[:n], 0, n*perMember, nil, nil)
		placeAll(t, s, kind, ms, n*perMember, fresh, nil, nil)
		return ms
	}
	ms := loadedThenJoin(NewBoundedLoad(eps))
	newcomer := ms[n].ID
	got := activations(ms, kind)
	hrw := loadedThenJoin(Rendezvous{})
	hrwGot := hrw[n].Load.Activations[kind]
	total := n*perMember + fresh
	mm := maxOverMean(got, n+1, total)
	t.Logf("newcomer took %d of %d new placements (plain rendezvous: %d; 1/(n+1) = %d); max/mean after %.4f",
		got[newcomer], fresh, hrwGot, fresh/(n+1), mm)
	if got[newcomer] < 2*hrwGot {
		t.Errorf("newcomer took %d new placements, want at least twice plain rendezvous' %d", got[newcomer], hrwGot)
	}
	if bound := math.Ceil((1+eps)*float64(total)/(n+1)) / (float64(total) / (n + 1)); mm > bound {
		t.Errorf("max/mean %.4f > %.4f after the join", mm, bound)
	}
}

// TestBoundedLoad_NeverErrNoCapacity: n*capacity > total, so some eligible
// member is always below capacity, even with Epsilon 0 and skewed loads;
// the choice is the best-ranked such member and all ranked ahead of it are
// draining or full.
func TestBoundedLoad_NeverErrNoCapacity(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	s := BoundedLoad{Epsilon: 0}
	for trial := range 2000 {
		ms := testMembers(uint64(trial), 1+rng.IntN(12))
		for i := range ms {
			ms[i].Load.Activations["Call"] = rng.IntN(50) * rng.IntN(3)
			ms[i].Draining = rng.IntN(4) == 0
		}
		ms[rng.IntN(len(ms))].Draining = false
		d, err := s.Place("Call", identity(trial), ms, nil)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		for _, c := range d.Candidates {
			if c.ID == d.Member {
				if c.Load >= c.Capacity || !c.Eligible {
					t.Fatalf("trial %d: chose %s with load %d, capacity %d", trial, c.Name, c.Load, c.Capacity)
				}
				break
			}
			if c.Eligible {
				t.Fatalf("trial %d: passed over eligible %s (rank %d) for %s", trial, c.Name, c.Rank, d.MemberName)
			}
		}
	}
}

func TestBoundedCapacity(t *testing.T) {
	tests := []struct {
		name           string
		eps            float64
		total, n, want int
	}{
		{"float error does not round up: 1.02*16000/16", 0.02, 15_999, 16, 1020},
		{"paper formula", 0.25, 29, 3, 13},
		{"eps 0 is the ceiling of the mean", 0, 10, 4, 3},
		{"first activation", 0.25, 0, 16, 1},
		{"one member", 0.25, 41, 1, 42},
		{"huge eps is capped at total+1", 1e300, 41, 4, 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := boundedCapacity(tt.eps, tt.total, tt.n); got != tt.want {
				t.Errorf("boundedCapacity(%v, %d, %d) = %d, want %d", tt.eps, tt.total, tt.n, got, tt.want)
			}
		})
	}
}

func TestBoundedLoad_RejectsBadEpsilon(t *testing.T) {
	for _, eps := range []float64{-0.1, math.NaN(), math.Inf(1)} {
		t.Run(strconv.FormatFloat(eps, 'g', -1, 64), func(t *testing.T) {
			d, err := NewBoundedLoad(eps).Place("Call", "x", testMembers(1, 3), nil)
			if err == nil || d.Member != "" {
				t.Errorf("Place with epsilon %v = %q, %v; want an error", eps, d.Member, err)
			}
			if errors.Is(err, ErrNoMembers) || errors.Is(err, ErrNoCapacity) {
				t.Errorf("bad epsilon reported as %v", err)
			}
		})
	}
}
