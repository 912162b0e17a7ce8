package actors

import (
	"context"

	"github.com/switchboard-pbx/switchboard/placement"
)

// CallHint is the tier-2 placement hint of a call of a group assigned to
// pool: the pool, its overflow and their per-node call capacities, from
// the pools' prescribed conditions (defaults for a pool never
// configured).
func (s *System) CallHint(ctx context.Context, pool string) (Hint, error) {
	specs, err := s.PoolSpecs(ctx)
	if err != nil {
		return Hint{}, err
	}
	spec, ok := specs[pool]
	if !ok {
		spec = placement.DefaultPoolSpec(pool)
	}
	hint := Hint{Pool: pool, Overflow: spec.Overflow, CallCapacity: spec.CallCapacityPerNode}
	if spec.Overflow != "" {
		over, ok := specs[spec.Overflow]
		if !ok {
			over = placement.DefaultPoolSpec(spec.Overflow)
		}
		hint.OverflowCapacity = over.CallCapacityPerNode
	}
	return hint, nil
}

// IsLocal says whether (kind, identity) has a live activation on this
// node; it never activates one.
func (s *System) IsLocal(kind, identity string) bool {
	act, ok := s.lookup.Peek(kind, identity)
	return ok && act.PID != nil && act.PID.Address == s.as.Address()
}
