package placement

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Rendezvous is plain rendezvous (HRW) placement, like protoactor-go's
// disthash: always the top-ranked eligible member, whatever its load. It is
// a baseline for simulations; loads are recorded in Candidates but ignored.
// It ignores rng.
type Rendezvous struct{}

// Name returns NameRendezvous.
func (Rendezvous) Name() string { return NameRendezvous }

// Place implements Strategy.
func (r Rendezvous) Place(kind, identity string, members []Member, _ *rand.Rand) (Decision, error) {
	d, rs, _, err := start(r.Name(), kind, identity, members)
	if err != nil {
		return d, err
	}
	chosen := -1
	for i := range d.Candidates {
		c := &d.Candidates[i]
		switch {
		case !c.Eligible:
		case chosen < 0:
			chosen = i
		default:
			c.Why = "lower rank"
		}
	}
	d.choose(rs, chosen)
	if chosen == 0 {
		d.Reason = fmt.Sprintf("chose preferred node %s, rank 1, load %d", d.MemberName, rs[0].load)
	} else {
		d.Reason = fmt.Sprintf("%schose %s, rank %d, load %d", passedOver(rs, d.Candidates, chosen),
			d.MemberName, chosen+1, rs[chosen].load)
	}
	return d, nil
}

// Random places on an eligible member drawn uniformly with rng. It is a
// baseline for simulations. The draw indexes the eligible members in
// rendezvous order, so it does not depend on the order of the members
// slice. It needs a non-nil rng.
type Random struct{}

// Name returns NameRandom.
func (Random) Name() string { return NameRandom }

// Place implements Strategy.
func (r Random) Place(kind, identity string, members []Member, rng *rand.Rand) (Decision, error) {
	if rng == nil {
		err := fmt.Errorf("%w: the random strategy needs a *rand.Rand, got nil", ErrInvalidArgument)
		return Decision{Strategy: r.Name(), Reason: err.Error()}, err
	}
	d, rs, n, err := start(r.Name(), kind, identity, members)
	if err != nil {
		return d, err
	}
	draw, chosen := rng.IntN(n), -1
	for i := range d.Candidates {
		c := &d.Candidates[i]
		if !c.Eligible {
			continue
		}
		if draw == 0 {
			chosen = i
		} else {
			c.Why = "not drawn"
		}
		draw--
	}
	d.choose(rs, chosen)
	d.Reason = fmt.Sprintf("drew %s, rank %d, load %d, uniformly from %d eligible nodes",
		d.MemberName, chosen+1, rs[chosen].load, n)
	return d, nil
}

// LeastLoaded places on the eligible member with the fewest activations of
// the kind, the better rendezvous rank breaking ties. It is a baseline for
// simulations: on stale load figures every placer sends work to the same
// node until the next report (herding). It ignores rng.
type LeastLoaded struct{}

// Name returns NameLeastLoaded.
func (LeastLoaded) Name() string { return NameLeastLoaded }

// Place implements Strategy.
func (l LeastLoaded) Place(kind, identity string, members []Member, _ *rand.Rand) (Decision, error) {
	d, rs, n, err := start(l.Name(), kind, identity, members)
	if err != nil {
		return d, err
	}
	chosen, ties := -1, 0
	for i, r := range rs {
		switch {
		case r.m.Draining:
		case chosen < 0 || r.load < rs[chosen].load:
			chosen, ties = i, 0
		case r.load == rs[chosen].load:
			ties++
		}
	}
	least := rs[chosen].load
	tied, above := "tied at load "+strconv.Itoa(least)+", lower rank", "above the least load "+strconv.Itoa(least)
	for i := range d.Candidates {
		c := &d.Candidates[i]
		switch {
		case !c.Eligible || i == chosen:
		case c.Load == least:
			c.Why = tied
		default:
			c.Why = above
		}
	}
	d.choose(rs, chosen)
	d.Reason = fmt.Sprintf("chose %s, rank %d, with the fewest activations of %s (%d) among %d eligible nodes",
		d.MemberName, chosen+1, kind, least, n)
	if ties > 0 {
		d.Reason += fmt.Sprintf("; %d more tied, better rank wins", ties)
	}
	return d, nil
}
