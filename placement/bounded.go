package placement

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// DefaultEpsilon is BoundedLoad's default slack: no member takes more than
// about 1.25 times the mean activations of a kind. Smaller values balance
// more tightly but send more identities away from their preferred member.
const DefaultEpsilon = 0.25

// BoundedLoad is bounded-load rendezvous: consistent hashing with bounded
// loads (Mirrokni, Thorup and Zadimoghaddam, SODA 2018) applied to
// rendezvous hashing. It walks the eligible members in rendezvous order for
// the identity and takes the first whose activations of the kind are below
//
//	capacity = ceil((1+Epsilon) * (total+1) / n)
//
// where total is the sum of the kind's activations over the eligible
// members and n their number. Draining members are ineligible. Since
// n*capacity > total, some eligible member is always below capacity, so
// Place fails only when no member is eligible. Fed its own decisions, it
// keeps every member at or below ceil((1+Epsilon) * mean) activations.
//
// It ignores rng. The zero value (Epsilon 0) is valid and balances as
// tightly as possible.
type BoundedLoad struct {
	Epsilon float64 // slack above the mean, >= 0; see DefaultEpsilon
}

// NewBoundedLoad returns a BoundedLoad with the given Epsilon.
func NewBoundedLoad(eps float64) *BoundedLoad { return &BoundedLoad{Epsilon: eps} }

// Name returns NameBoundedLoad.
func (BoundedLoad) Name() string { return NameBoundedLoad }

// Validate reports whether Epsilon is usable: finite and not negative.
func (b BoundedLoad) Validate() error {
	if math.IsNaN(b.Epsilon) || math.IsInf(b.Epsilon, 0) || b.Epsilon < 0 {
		return fmt.Errorf("placement: bounded-load epsilon %v must be a finite number >= 0 (default %v)",
			b.Epsilon, DefaultEpsilon)
	}
	return nil
}

// Place implements Strategy.
func (b BoundedLoad) Place(kind, identity string, members []Member, _ *rand.Rand) (Decision, error) {
	if err := b.Validate(); err != nil {
		return Decision{Strategy: b.Name(), Reason: err.Error()}, err
	}
	d, rs, n, err := start(b.Name(), kind, identity, members)
	if err != nil {
		return d, err
	}
	total := 0
	for _, r := range rs {
		if !r.m.Draining {
			total += r.load
		}
	}
	capacity := boundedCapacity(b.Epsilon, total, n)

	chosen := -1
	atCap, overCap := "at capacity "+strconv.Itoa(capacity), "over capacity "+strconv.Itoa(capacity)
	for i := range d.Candidates {
		c := &d.Candidates[i]
		if !c.Eligible {
			continue // draining
		}
		c.Capacity = capacity
		switch {
		case c.Load > capacity:
			c.Eligible, c.Why = false, overCap
		case c.Load == capacity:
			c.Eligible, c.Why = false, atCap
		case chosen < 0:
			chosen = i
		default:
			c.Why = "lower rank"
		}
	}
	if chosen < 0 { // unreachable: n*capacity > total
		d.Reason = fmt.Sprintf("all %d eligible members are at capacity %d", n, capacity)
		return d, fmt.Errorf("%w for %s: %s", ErrNoCapacity, Key(kind, identity), d.Reason)
	}
	d.choose(rs, chosen)
	if chosen == 0 {
		d.Reason = fmt.Sprintf("chose preferred node %s, rank 1, load %d below capacity %d",
			d.MemberName, rs[0].load, capacity)
	} else {
		d.Reason = fmt.Sprintf("%schose %s, rank %d, load %d", passedOver(rs, d.Candidates, chosen),
			d.MemberName, chosen+1, rs[chosen].load)
	}
	return d, nil
}

// capSlack absorbs floating-point error in the capacity formula, so that
// (1+0.02)*16000/16, which float64 computes as 1020.0000000000001, is 1020
// and not 1021.
const capSlack = 1e-9

// boundedCapacity is ceil((1+eps) * (total+1) / n) for n > 0, never below
// ceil((total+1)/n), so some member is always below it, and never above
// total+1, beyond which any bound is the same as none.
func boundedCapacity(eps float64, total, n int) int {
	balls := total + 1
	c := math.Ceil((1 + eps) * float64(balls) / float64(n) * (1 - capSlack))
	if c >= float64(balls) {
		return balls
	}
	return max(int(c), (balls+n-1)/n)
}
