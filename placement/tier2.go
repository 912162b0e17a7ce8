package placement

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Tier 2 of two-tier load balancing (abstract 4: "call load balancers ...
// dynamically determine if predefined conditions are currently being met
// within an identified cluster of computing resources"): PowerOfTwo places a
// call on a node of the group's pool, PlaceCall falls back to the overflow
// pool.

// NamePowerOfTwo is PowerOfTwo's Name.
const NamePowerOfTwo = "power-of-two"

// DefaultCPULimit is the CPU share (0..1) at or above which a node takes no
// new calls: above it SIP retransmissions start to pile up.
const DefaultCPULimit = 0.9

// PowerOfTwo places calls by the power of two choices (Mitzenmacher, "The
// Power of Two Choices in Randomized Load Balancing", 2001): among the
// members meeting the predefined conditions (not draining, active calls
// under Capacity, CPU under CPULimit) it draws two at random with rng and
// takes the one with fewer active calls (then lower CPU, then better
// rendezvous rank). Unlike least-loaded, two random choices do not herd
// every placer onto the same node when load figures are stale; the caller
// adds its own placements since the last report to Load.ActiveCalls
// (optimistic increments) before calling.
//
// Members must be the alive members of one pool. The zero value is valid:
// Capacity 0 means DefaultCallCapacityPerNode, CPULimit 0 DefaultCPULimit.
// Place needs a non-nil rng; it draws from it only when at least two
// members qualify.
type PowerOfTwo struct {
	Capacity int     // concurrent calls per node (the pool's CallCapacityPerNode)
	CPULimit float64 // 0..1
}

// Name returns NamePowerOfTwo.
func (PowerOfTwo) Name() string { return NamePowerOfTwo }

func (p PowerOfTwo) withDefaults() PowerOfTwo {
	p.Capacity = cmp.Or(p.Capacity, DefaultCallCapacityPerNode)
	p.CPULimit = cmp.Or(p.CPULimit, DefaultCPULimit)
	return p
}

// Validate reports whether p, with defaults applied, is usable.
func (p PowerOfTwo) Validate() error {
	p = p.withDefaults()
	if p.Capacity < 0 {
		return fmt.Errorf("%w: call capacity %d must be > 0 (default %d)", ErrInvalidArgument, p.Capacity, DefaultCallCapacityPerNode)
	}
	if math.IsNaN(p.CPULimit) || p.CPULimit <= 0 || p.CPULimit > 1 {
		return fmt.Errorf("%w: CPU limit %v must be in (0, 1] (default %v)", ErrInvalidArgument, p.CPULimit, DefaultCPULimit)
	}
	return nil
}

// Place implements Strategy. Candidates' Load is each member's active calls
// and Capacity p's capacity. With no member qualifying it returns
// ErrNoCapacity, or ErrNoMembers when there are none or all are draining.
func (p PowerOfTwo) Place(kind, identity string, members []Member, rng *rand.Rand) (Decision, error) {
	if err := p.Validate(); err != nil {
		return Decision{Strategy: p.Name(), Reason: err.Error()}, err
	}
	if rng == nil {
		err := fmt.Errorf("%w: the power-of-two strategy needs a *rand.Rand, got nil", ErrInvalidArgument)
		return Decision{Strategy: p.Name(), Reason: err.Error()}, err
	}
	p = p.withDefaults()
	d, rs, _, err := start(p.Name(), kind, identity, members)
	if err != nil {
		return d, err
	}
	// qualifying indexes in rank order, so the draw does not depend on the
	// order of the members slice.
	var buf [64]int
	q := buf[:0]
	full, hot := "at capacity "+strconv.Itoa(p.Capacity), "CPU at or above "+strconv.FormatFloat(p.CPULimit, 'g', -1, 64)
	for i := range d.Candidates {
		c, m := &d.Candidates[i], rs[i].m
		c.Load, c.Capacity = max(0, m.Load.ActiveCalls), p.Capacity
		switch {
		case !c.Eligible: // draining
		case c.Load >= p.Capacity:
			c.Eligible, c.Why = false, full
		case m.Load.CPU >= p.CPULimit:
			c.Eligible, c.Why = false, hot
		default:
			q = append(q, i)
		}
	}
	switch len(q) {
	case 0:
		d.Reason = fmt.Sprintf("none of %d nodes meets the conditions (capacity %d calls, CPU under %v)",
			len(rs), p.Capacity, p.CPULimit)
		return d, fmt.Errorf("%w for %s: %s", ErrNoCapacity, Key(kind, identity), d.Reason)
	case 1:
		d.choose(rs, q[0])
		d.Reason = fmt.Sprintf("chose %s, the only one of %d nodes meeting the conditions, with %d active calls",
			d.MemberName, len(rs), d.Candidates[q[0]].Load)
		return d, nil
	}
	a := rng.IntN(len(q))
	b := rng.IntN(len(q) - 1)
	if b >= a {
		b++
	}
	ia, ib := q[a], q[b]
	if less(d.Candidates[ib], rs[ib].m.Load.CPU, d.Candidates[ia], rs[ia].m.Load.CPU) {
		ia, ib = ib, ia
	}
	for _, i := range q {
		if i != ia && i != ib {
			d.Candidates[i].Why = "not sampled"
		}
	}
	d.Candidates[ib].Why = "sampled, more loaded"
	d.choose(rs, ia)
	d.Reason = fmt.Sprintf("sampled %s (%d calls) and %s (%d calls) of %d nodes meeting the conditions; chose %s",
		d.MemberName, d.Candidates[ia].Load, displayName(rs[ib].m), d.Candidates[ib].Load, len(q), d.MemberName)
	return d, nil
}

// less orders two sampled candidates: fewer calls, then lower CPU, then
// better rank.
func less(a Candidate, cpuA float64, b Candidate, cpuB float64) bool {
	if a.Load != b.Load {
		return a.Load < b.Load
	}
	if cpuA != cpuB {
		return cpuA < cpuB
	}
	return a.Rank < b.Rank
}

// CallPool is a pool as tier 2 sees it: its conditions and its alive
// members, with the caller's best load figures.
type CallPool struct {
	Policy  PowerOfTwo
	Members []Member
}

// PlaceCall places call callID on a node of pool (the group's pool) and,
// when none qualifies there (ErrNoCapacity or ErrNoMembers), on a node of
// overflow (the pool's overflow pool; zero CallPool for none), each under
// its own Policy. It reports whether the call overflowed. The Decision's
// Candidates are the pool's followed by the overflow's; its Reason says why
// the pool was passed over. With neither able to take the call, the error
// wraps ErrNoCapacity: the SIP edge answers 503 with Retry-After.
func PlaceCall(callID string, pool, overflow CallPool, rng *rand.Rand) (d Decision, overflowed bool, err error) {
	d, err = pool.Policy.Place(KindCall, callID, pool.Members, rng)
	if err == nil || !(errors.Is(err, ErrNoCapacity) || errors.Is(err, ErrNoMembers)) {
		return d, false, err
	}
	if len(overflow.Members) == 0 {
		d.Reason = "pool: " + d.Reason + "; no overflow pool"
		return d, false, fmt.Errorf("%w for %s: %s", ErrNoCapacity, Key(KindCall, callID), d.Reason)
	}
	od, oerr := overflow.Policy.Place(KindCall, callID, overflow.Members, rng)
	od.Candidates = append(d.Candidates, od.Candidates...)
	od.Reason = "pool: " + d.Reason + "; overflow: " + od.Reason
	if oerr != nil {
		if errors.Is(oerr, ErrNoCapacity) || errors.Is(oerr, ErrNoMembers) {
			oerr = fmt.Errorf("%w for %s: %s", ErrNoCapacity, Key(KindCall, callID), od.Reason)
		}
		return od, false, oerr
	}
	return od, true, nil
}

// SetCallLoad copies each member's Load.ActiveCalls into
// Load.Activations[kind] (allocating the map if it is nil), so that the
// strategies that compare activations of a kind (Rendezvous, Random,
// LeastLoaded, BoundedLoad) can serve as baselines for calls. It modifies
// members in place; pass a copy if the caller's members must not change.
func SetCallLoad(members []Member, kind string) {
	for i := range members {
		if members[i].Load.Activations == nil {
			members[i].Load.Activations = make(map[string]int, 1)
		}
		members[i].Load.Activations[kind] = members[i].Load.ActiveCalls
	}
}
