package placement

import (
	"cmp"
	"maps"
	"math/rand/v2"
	"slices"
)

// The builders of the pools' candidate nodes, shared by the runtime and the
// simulator so that both judge the same nodes by the same conditions:
//
//   - tier 1 (ChoosePool): PoolStates gives each pool its members that are
//     not draining and the load reserved for it; ChoosePool then applies
//     alive nodes, high water (with the reserved load) and labels;
//   - tier 2 (PlaceCall): CallRoute.Pools gives the group's pool and its
//     overflow their members (draining ones kept, so that the decision says
//     why they were passed over) and their PowerOfTwo conditions: call
//     capacity per node and CPU limit.

// PoolStates builds tier 1's view: one PoolState per pool named in specs or
// carried by a member (a pool never configured gets DefaultPoolSpec), in
// name order, with the members of that pool that are not draining, and
// reserved[pool] as its Reserved load. members' loads are the caller's best
// figures; a nil reserved reserves nothing.
func PoolStates(specs map[string]PoolSpec, members []Member, reserved map[string]int) []PoolState {
	byPool := map[string][]Member{}
	for _, m := range members {
		if !m.Draining {
			byPool[m.Pool] = append(byPool[m.Pool], m)
		}
	}
	for name := range specs {
		if _, ok := byPool[name]; !ok {
			byPool[name] = nil
		}
	}
	names := slices.Sorted(maps.Keys(byPool))
	out := make([]PoolState, 0, len(names))
	for _, name := range names {
		spec, ok := specs[name]
		if !ok {
			spec = DefaultPoolSpec(name)
		}
		out = append(out, PoolState{Spec: spec, Nodes: byPool[name], Reserved: reserved[name]})
	}
	return out
}

// CallRoute is where a device group's calls go: the group's pool and its
// overflow pool, with each one's call capacity per node, and the CPU limit
// of both. Zero capacities and CPU limit take PowerOfTwo's defaults.
type CallRoute struct {
	Pool             string
	Capacity         int
	Overflow         string // "" for none
	OverflowCapacity int
	CPULimit         float64
}

// RouteOf is the call route of a group assigned to pool, whose overflow
// (if any) is overflow; cpuLimit 0 is DefaultCPULimit.
func RouteOf(pool PoolSpec, overflow *PoolSpec, cpuLimit float64) CallRoute {
	pool = pool.WithDefaults()
	r := CallRoute{Pool: pool.Name, Capacity: pool.CallCapacityPerNode, CPULimit: cpuLimit}
	if overflow != nil {
		o := overflow.WithDefaults()
		r.Overflow, r.OverflowCapacity = o.Name, o.CallCapacityPerNode
	}
	return r
}

// Pools returns the route's call pools: the members of r.Pool and of
// r.Overflow (none when r.Overflow is ""), each under its PowerOfTwo
// conditions. It does not modify members.
func (r CallRoute) Pools(members []Member) (pool, overflow CallPool) {
	pool.Policy = PowerOfTwo{Capacity: r.Capacity, CPULimit: r.CPULimit}
	overflow.Policy = PowerOfTwo{Capacity: r.OverflowCapacity, CPULimit: r.CPULimit}
	for _, m := range members {
		switch {
		case m.Pool == r.Pool:
			pool.Members = append(pool.Members, m)
		case r.Overflow != "" && m.Pool == r.Overflow:
			overflow.Members = append(overflow.Members, m)
		}
	}
	return pool, overflow
}

// Place places call callID by PlaceCall over r's pools among members. It
// also returns the call capacity per node of the pool it chose, which the
// chosen node enforces.
func (r CallRoute) Place(callID string, members []Member, rng *rand.Rand) (d Decision, overflowed bool, capacity int, err error) {
	pool, over := r.Pools(members)
	d, overflowed, err = PlaceCall(callID, pool, over, rng)
	capacity = cmp.Or(r.Capacity, DefaultCallCapacityPerNode)
	if overflowed {
		capacity = cmp.Or(r.OverflowCapacity, DefaultCallCapacityPerNode)
	}
	return d, overflowed, capacity, err
}
