package placement

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Tier 1 of two-tier load balancing (abstract 4: "a cluster of computing
// resources for processing calls for the device group ... is assigned to the
// device group based on prescribed conditions"): ChoosePool assigns a device
// group to a pool of nodes.

// Defaults of a pool that was never configured.
const (
	// DefaultCallCapacityPerNode is how many concurrent calls one node
	// carries: a conservative figure for a 2-4 core node relaying SIP
	// signalling only (media flows end to end or through a separate relay).
	DefaultCallCapacityPerNode = 500
	// DefaultHighWater is the utilization (active calls over capacity) above
	// which a pool takes no new device groups: 15% is left for the groups it
	// already serves to grow into before calls start to overflow.
	DefaultHighWater = 0.85
)

// PoolSpec is a pool's prescribed conditions, as PUT /v1/pools/{p} sets
// them. The zero value of a field means its default (see WithDefaults).
type PoolSpec struct {
	Name                string
	CallCapacityPerNode int               // concurrent calls per node; 0: DefaultCallCapacityPerNode
	HighWater           float64           // 0..1; above it the pool takes no new groups; 0: DefaultHighWater
	Labels              map[string]string // e.g. region=eu; a group's labels must all match
	Overflow            string            // pool that takes calls when none of this pool's nodes qualifies; "" for none
}

// DefaultPoolSpec is the spec of a pool that was never configured.
func DefaultPoolSpec(name string) PoolSpec {
	return PoolSpec{Name: name, CallCapacityPerNode: DefaultCallCapacityPerNode, HighWater: DefaultHighWater}
}

// WithDefaults returns s with every zero field set to its default.
func (s PoolSpec) WithDefaults() PoolSpec {
	s.CallCapacityPerNode = cmp.Or(s.CallCapacityPerNode, DefaultCallCapacityPerNode)
	s.HighWater = cmp.Or(s.HighWater, DefaultHighWater)
	return s
}

// Validate reports whether s, with defaults applied, is usable.
func (s PoolSpec) Validate() error {
	s = s.WithDefaults()
	switch {
	case s.Name == "":
		return fmt.Errorf("%w: a pool needs a name", ErrInvalidArgument)
	case s.CallCapacityPerNode < 0:
		return fmt.Errorf("%w: pool %s: call capacity per node %d must be > 0 (default %d)",
			ErrInvalidArgument, s.Name, s.CallCapacityPerNode, DefaultCallCapacityPerNode)
	case math.IsNaN(s.HighWater) || s.HighWater <= 0 || s.HighWater > 1:
		return fmt.Errorf("%w: pool %s: high-water %v must be in (0, 1] (default %v)",
			ErrInvalidArgument, s.Name, s.HighWater, DefaultHighWater)
	case s.Overflow == s.Name:
		return fmt.Errorf("%w: pool %s overflows into itself; name another pool or none", ErrInvalidArgument, s.Name)
	}
	return nil
}

// PoolState is a pool as tier 1 sees it: its spec and its alive members,
// whose Load.ActiveCalls are the caller's best figures (gossiped reports
// plus its own increments).
type PoolState struct {
	Spec  PoolSpec
	Nodes []Member // alive members of the pool; draining ones count as absent
	// Reserved is load the caller expects but the reports do not show yet,
	// added to the active calls: tier 1's optimistic increment. A caller that
	// assigns many groups between two reports (all groups register at
	// start-up, before any call) reserves each group's expected concurrent
	// calls here, so that they do not all pick the same emptiest pool.
	Reserved int
}

// GroupSpec is a device group as tier 1 sees it.
type GroupSpec struct {
	ID      string
	Size    int               // devices in the group
	Pinned  string            // pool pinned in provisioning; "" for none
	Labels  map[string]string // each must equal the pool's label of the same key
	Current string            // persisted choice, "" if none yet
}

// PoolDecision is a tier-1 choice and the reason for it.
type PoolDecision struct {
	Pool       string          // chosen pool; "" on error
	Kept       bool            // the group stays in Current
	Reason     string          // one human sentence
	Candidates []PoolCandidate // every pool passed in, by name
}

// PoolCandidate is one pool's figures as ChoosePool saw them.
type PoolCandidate struct {
	Pool        string
	Nodes       int     // alive, not draining
	Utilization float64 // (active calls + reserved) / (nodes * capacity per node); 1 with no nodes
	Headroom    int     // capacity - active calls - reserved; may be negative
	Eligible    bool    // meets the conditions for a new group
	Why         string  // why not eligible; "" if eligible
}

// ChoosePool assigns group g a pool among pools:
//
//  1. the pinned pool, if it is among pools and has alive nodes;
//  2. else Current, while it still meets the conditions: alive nodes,
//     utilization under its high-water mark, the group's labels matching;
//  3. else, among the pools meeting the conditions, the one with the most
//     headroom (capacity - active calls), which is also the best fit for the
//     group's size; equal headroom (pools of equal capacity before any
//     call) goes to the pool that ranks first for the group by rendezvous
//     (Hash(Key(KindDeviceGroup, g.ID), pool name)), so that groups created
//     in a burst, before the reports show their calls, spread over the
//     pools instead of all taking the same one;
//  4. else ErrNoCapacity.
//
// A pool's zero spec fields take their defaults. ChoosePool is pure and does
// not depend on the order of pools; duplicate or empty pool names are
// ErrInvalidArgument.
func ChoosePool(g GroupSpec, pools []PoolState) (PoolDecision, error) {
	var d PoolDecision
	ps := slices.Clone(pools)
	slices.SortFunc(ps, func(a, b PoolState) int { return cmp.Compare(a.Spec.Name, b.Spec.Name) })
	d.Candidates = make([]PoolCandidate, len(ps))
	for i := range ps {
		ps[i].Spec = ps[i].Spec.WithDefaults()
		if err := ps[i].Spec.Validate(); err != nil {
			d.Reason = err.Error()
			return d, err
		}
		if i > 0 && ps[i].Spec.Name == ps[i-1].Spec.Name {
			err := fmt.Errorf("%w: pool %q appears twice", ErrInvalidArgument, ps[i].Spec.Name)
			d.Reason = err.Error()
			return d, err
		}
		d.Candidates[i] = assess(g, ps[i])
	}
	find := func(name string) int { // names are not empty: "" is not found
		i, ok := slices.BinarySearchFunc(d.Candidates, name, func(c PoolCandidate, n string) int { return cmp.Compare(c.Pool, n) })
		if !ok {
			return -1
		}
		return i
	}

	var why string // why the pinned or current pool was not taken
	if g.Pinned != "" {
		switch i := find(g.Pinned); {
		case i < 0:
			why = fmt.Sprintf("pinned pool %s is unknown; ", g.Pinned)
		case d.Candidates[i].Nodes == 0:
			why = fmt.Sprintf("pinned pool %s has no alive nodes; ", g.Pinned)
		default:
			d.Pool, d.Kept = g.Pinned, g.Current == g.Pinned
			d.Reason = fmt.Sprintf("pinned to pool %s in provisioning (%d nodes, utilization %.2f)",
				g.Pinned, d.Candidates[i].Nodes, d.Candidates[i].Utilization)
			return d, nil
		}
	}
	if g.Current != "" && g.Current != g.Pinned {
		switch i := find(g.Current); {
		case i < 0:
			why += fmt.Sprintf("current pool %s is gone; ", g.Current)
		case d.Candidates[i].Eligible:
			d.Pool, d.Kept = g.Current, true
			d.Reason = fmt.Sprintf("kept current pool %s: it still meets the conditions (%d nodes, utilization %.2f under high-water %.2f)",
				g.Current, d.Candidates[i].Nodes, d.Candidates[i].Utilization, ps[i].Spec.HighWater)
			return d, nil
		default:
			why += fmt.Sprintf("current pool %s no longer meets the conditions (%s); ", g.Current, d.Candidates[i].Why)
		}
	}

	best, eligible := -1, 0
	hk := xxhash.Sum64String(Key(KindDeviceGroup, g.ID))
	for i, c := range d.Candidates {
		if !c.Eligible {
			continue
		}
		eligible++
		if best < 0 || c.Headroom > d.Candidates[best].Headroom ||
			c.Headroom == d.Candidates[best].Headroom && weight(hk, c.Pool) > weight(hk, d.Candidates[best].Pool) {
			best = i
		}
	}
	if best < 0 {
		d.Reason = why + fmt.Sprintf("none of %d pools meets the conditions for group %s", len(ps), g.ID)
		return d, fmt.Errorf("%w for device group %s: %s; add nodes to a pool, raise its high-water mark or relax the group's labels",
			ErrNoCapacity, g.ID, d.Reason)
	}
	c := d.Candidates[best]
	d.Pool = c.Pool
	fit := "fits"
	if c.Headroom < g.Size {
		fit = "is less than"
	}
	d.Reason = why + fmt.Sprintf("chose pool %s with the most headroom, %d calls (%s the %d devices the group had then), among %d pools meeting the conditions",
		c.Pool, c.Headroom, fit, g.Size, eligible)
	return d, nil
}

// assess computes p's figures and whether it meets the conditions for g.
func assess(g GroupSpec, p PoolState) PoolCandidate {
	c := PoolCandidate{Pool: p.Spec.Name}
	calls := max(0, p.Reserved)
	for _, m := range p.Nodes {
		if m.Draining {
			continue
		}
		c.Nodes++
		calls += max(0, m.Load.ActiveCalls)
	}
	capacity := c.Nodes * p.Spec.CallCapacityPerNode
	c.Headroom = capacity - calls
	c.Utilization = 1
	if capacity > 0 {
		c.Utilization = float64(calls) / float64(capacity)
	}
	switch {
	case c.Nodes == 0:
		c.Why = "no alive nodes"
	case c.Utilization >= p.Spec.HighWater:
		c.Why = fmt.Sprintf("utilization %.2f at or above high-water %.2f", c.Utilization, p.Spec.HighWater)
	default:
		if miss := mismatched(g.Labels, p.Spec.Labels); miss != "" {
			c.Why = "labels do not match: " + miss
		} else {
			c.Eligible = true
		}
	}
	return c
}

// mismatched lists the group's labels the pool does not carry with the same
// value, e.g. "region=eu (pool has us)", or "" if all match.
func mismatched(want, have map[string]string) string {
	var miss []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if v, ok := have[k]; !ok {
			miss = append(miss, fmt.Sprintf("%s=%s (pool has none)", k, want[k]))
		} else if v != want[k] {
			miss = append(miss, fmt.Sprintf("%s=%s (pool has %s)", k, want[k], v))
		}
	}
	return strings.Join(miss, ", ")
}
