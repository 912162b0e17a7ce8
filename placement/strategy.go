package placement

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Load is what a node reports about itself (gossiped about once a second).
type Load struct {
	Activations map[string]int // live activations per actor kind
	ActiveCalls int
	CPU         float64 // 0..1 of the node's CPUs
}

// Member is a candidate node as placement sees it.
type Member struct {
	ID       string // unique per process (the actor system id)
	Name     string // human name
	Pool     string
	Draining bool // draining nodes never receive new placements
	Load     Load
}

// Candidate records one member's figures as a strategy saw them.
type Candidate struct {
	ID, Name string
	Rank     int    // rendezvous rank for this identity, 1 = preferred
	Load     int    // the figure the strategy compared (e.g. activations of the kind)
	Capacity int    // the bound it compared against (0 = none)
	Eligible bool   // false if draining or (BoundedLoad) at capacity
	Why      string // why not eligible / why passed over, e.g. "draining", "at capacity 13"; "" for the chosen one
}

// Decision is a placement and the reason for it.
type Decision struct {
	Member     string      // chosen member ID; "" when Place fails
	MemberName string      // chosen member's human name (its ID if it has none)
	Strategy   string      // Strategy.Name() of the strategy that decided
	Reason     string      // one human sentence, e.g. "preferred node b is at capacity 13 (load 13); chose c, rank 2, load 9"
	Candidates []Candidate // every member passed in, in rendezvous rank order
}

// Strategy places an actor. Place must be a pure function of its arguments:
// the same arguments (and an rng in the same state) give the same Decision,
// whatever the order of members. It must not modify members.
//
// On error the Decision still names the strategy and, where members could be
// ranked, lists the Candidates, so the failure can be explained.
// Implementations are safe for concurrent use; an rng is not.
type Strategy interface {
	Name() string
	Place(kind, identity string, members []Member, rng *rand.Rand) (Decision, error)
}

var (
	// ErrNoMembers means there is no eligible member at all: none is known,
	// or every one is draining.
	ErrNoMembers = errors.New("placement: no eligible member")
	// ErrNoCapacity means eligible members exist but none qualifies under a
	// strategy's hard limit. BoundedLoad never returns it: its capacity
	// always leaves room on at least one eligible member.
	ErrNoCapacity = errors.New("placement: no member has capacity")
	// ErrInvalidArgument means Place was called with arguments it cannot
	// use: a member with an empty or duplicate ID, or a nil rng for Random.
	ErrInvalidArgument = errors.New("placement: invalid argument")
	// ErrUnknownStrategy is returned by ByName for a name it does not know.
	ErrUnknownStrategy = errors.New("placement: unknown strategy")
)

// Strategy names, as Name returns them and ByName accepts them.
const (
	NameBoundedLoad = "bounded-load"
	NameRendezvous  = "rendezvous"
	NameRandom      = "random"
	NameLeastLoaded = "least-loaded"
)

// ByName returns the named strategy with its defaults (BoundedLoad gets
// DefaultEpsilon), for configuration files and flags.
func ByName(name string) (Strategy, error) {
	switch name {
	case NameBoundedLoad:
		return NewBoundedLoad(DefaultEpsilon), nil
	case NameRendezvous:
		return Rendezvous{}, nil
	case NameRandom:
		return Random{}, nil
	case NameLeastLoaded:
		return LeastLoaded{}, nil
	}
	return nil, fmt.Errorf("%w %q: use one of %s, %s, %s, %s", ErrUnknownStrategy, name,
		NameBoundedLoad, NameRendezvous, NameRandom, NameLeastLoaded)
}

// ranked is one member with its rendezvous weight and load of the kind.
type ranked struct {
	m    *Member
	w    uint64
	load int
}

// rankMembers returns members in rendezvous order for Key(kind, identity),
// with each one's activations of kind (negative reports count as 0). It
// rejects empty and duplicate IDs, which would make the order ambiguous.
func rankMembers(kind, identity string, members []Member) ([]ranked, error) {
	hk := xxhash.Sum64String(Key(kind, identity))
	rs := make([]ranked, len(members))
	for i := range members {
		m := &members[i]
		if m.ID == "" {
			return nil, fmt.Errorf("%w: member %d (name %q) has no ID", ErrInvalidArgument, i, m.Name)
		}
		rs[i] = ranked{m: m, w: weight(hk, m.ID), load: max(0, m.Load.Activations[kind])}
	}
	slices.SortFunc(rs, func(a, b ranked) int { return byRank(a.w, a.m.ID, b.w, b.m.ID) })
	for i := 1; i < len(rs); i++ {
		if rs[i].m.ID == rs[i-1].m.ID {
			return nil, fmt.Errorf("%w: member ID %q appears twice", ErrInvalidArgument, rs[i].m.ID)
		}
	}
	return rs, nil
}

// candidates lists rs as Candidates: rank order, the kind's load, draining
// members ineligible.
func candidates(rs []ranked) []Candidate {
	cs := make([]Candidate, len(rs))
	for i, r := range rs {
		cs[i] = Candidate{ID: r.m.ID, Name: r.m.Name, Rank: i + 1, Load: r.load, Eligible: !r.m.Draining}
		if r.m.Draining {
			cs[i].Why = "draining"
		}
	}
	return cs
}

// start ranks members and fills the common part of a Decision. It returns
// the number of eligible (not draining) members; with none, it returns
// ErrNoMembers and a Decision that says so.
func start(strategy, kind, identity string, members []Member) (Decision, []ranked, int, error) {
	d := Decision{Strategy: strategy}
	rs, err := rankMembers(kind, identity, members)
	if err != nil {
		d.Reason = err.Error()
		return d, nil, 0, err
	}
	d.Candidates = candidates(rs)
	eligible := 0
	for _, r := range rs {
		if !r.m.Draining {
			eligible++
		}
	}
	if eligible == 0 {
		hint := "start a node or wait for members to join"
		if len(rs) == 0 {
			d.Reason = "no members known"
		} else {
			d.Reason = fmt.Sprintf("all %d members are draining", len(rs))
			hint = "stop draining one or start a node"
		}
		return d, rs, 0, fmt.Errorf("%w for %s: %s; %s", ErrNoMembers, Key(kind, identity), d.Reason, hint)
	}
	return d, rs, eligible, nil
}

// choose records rs[i] as the decision's member.
func (d *Decision) choose(rs []ranked, i int) {
	d.Member = rs[i].m.ID
	d.MemberName = displayName(rs[i].m)
	d.Candidates[i].Why = ""
}

// displayName is a member's human name, or its ID if it has none.
func displayName(m *Member) string {
	if m.Name != "" {
		return m.Name
	}
	return m.ID
}

// passedOver describes the members ranked ahead of the chosen one at index
// chosen, e.g. "preferred node b is at capacity 13 (load 13); ", or "" if
// the chosen one is the preferred member.
func passedOver(rs []ranked, cs []Candidate, chosen int) string {
	if chosen == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "preferred node %s is %s", displayName(rs[0].m), whyLong(cs[0]))
	if chosen > 1 {
		fmt.Fprintf(&b, "; %d more passed over", chosen-1)
	}
	b.WriteString("; ")
	return b.String()
}

// whyLong is a Candidate's Why with its figures, for a Reason.
func whyLong(c Candidate) string {
	if c.Capacity > 0 && c.Load >= c.Capacity {
		return fmt.Sprintf("%s (load %d)", c.Why, c.Load)
	}
	return c.Why
}
