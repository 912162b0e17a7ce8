package actors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

// poolsKey holds every pool's prescribed conditions (there are few pools).
const poolsKey = "pools"

// pools is the behavior of the pools kind: one actor that owns the
// prescribed conditions of every pool (PUT /v1/pools/{p}).
type pools struct {
	sys     *System
	set     *actorpb.PoolSet
	version uint64
}

func (p *pools) load(ctx context.Context) error {
	p.set, p.version = &actorpb.PoolSet{}, 0
	cur, err := loadOne[*actorpb.PoolSet](ctx, p.sys.cfg.Store, poolsKey)
	if cur != nil {
		p.set, p.version = cur.rec, cur.version
	}
	return err
}

func (p *pools) receive(t *turn, msg proto.Message) proto.Message {
	switch m := msg.(type) {
	case *actorpb.GetPools:
		return &actorpb.PoolsReply{Pools: p.set.Pools, Version: p.version}
	case *actorpb.PutPool:
		in := m.GetPool()
		if in == nil || in.Name == "" {
			return &actorpb.PoolsReply{Error: invalid("pool", "pool name is required")}
		}
		if err := PoolSpec(in).Validate(); err != nil {
			return &actorpb.PoolsReply{Error: invalid("pool", "%v", err)}
		}
		next := proto.Clone(p.set).(*actorpb.PoolSet)
		rec := proto.Clone(in).(*actorpb.Pool)
		rec.UpdatedAt = timestamppb.New(p.sys.cfg.Clock.Now())
		i := slices.IndexFunc(next.Pools, func(q *actorpb.Pool) bool { return q.Name == rec.Name })
		if i >= 0 {
			next.Pools[i] = rec
		} else {
			next.Pools = append(next.Pools, rec)
			sort.Slice(next.Pools, func(i, j int) bool { return next.Pools[i].Name < next.Pools[j].Name })
		}
		v, e := p.save(t, next)
		if e != nil {
			return &actorpb.PoolsReply{Error: e}
		}
		return &actorpb.PoolsReply{Pools: []*actorpb.Pool{rec}, Version: v, Created: i < 0}
	case *actorpb.DeletePool:
		i := slices.IndexFunc(p.set.Pools, func(q *actorpb.Pool) bool { return q.Name == m.Name })
		if i < 0 {
			return &actorpb.PoolsReply{Error: notFound("pool", "pool %q is not configured", m.Name)}
		}
		if j := slices.IndexFunc(p.set.Pools, func(q *actorpb.Pool) bool { return q.Overflow == m.Name }); j >= 0 {
			return &actorpb.PoolsReply{Error: conflict("pool", "pool %q overflows into %q; change its overflow first", p.set.Pools[j].Name, m.Name)}
		}
		gone := p.set.Pools[i]
		next := proto.Clone(p.set).(*actorpb.PoolSet)
		next.Pools = slices.Delete(next.Pools, i, i+1)
		v, e := p.save(t, next)
		if e != nil {
			return &actorpb.PoolsReply{Error: e}
		}
		return &actorpb.PoolsReply{Pools: []*actorpb.Pool{gone}, Version: v}
	}
	return errorReply(msg, invalid("", "pools actor does not handle %T", msg))
}

func (p *pools) debug(context.Context) proto.Message {
	return &actorpb.PoolsReply{Pools: p.set.GetPools(), Version: p.version}
}

// save stores next as the pool set, by compare-and-set on the version
// loaded.
func (p *pools) save(t *turn, next *actorpb.PoolSet) (uint64, *actorpb.Error) {
	v, err := putRecord(t.ctx, p.sys.cfg.Store, poolsKey, next, p.version) // 0: MustNotExist
	if err != nil {
		return 0, storeFailed(t, err, "pools")
	}
	p.set, p.version = next, v
	return v, nil
}

// PoolSpec converts a stored pool to placement's prescribed conditions,
// defaults filled.
func PoolSpec(p *actorpb.Pool) placement.PoolSpec {
	return placement.PoolSpec{
		Name: p.Name, CallCapacityPerNode: int(p.CallCapacityPerNode), HighWater: p.HighWater,
		Labels: p.Labels, Overflow: p.Overflow,
	}.WithDefaults()
}

// PoolSpecs asks the pools actor for every configured pool.
func (s *System) PoolSpecs(ctx context.Context) (map[string]placement.PoolSpec, error) {
	rep, err := s.Request(ctx, KindPools, PoolsIdentity, &actorpb.GetPools{})
	if err != nil {
		return nil, err
	}
	pr, ok := rep.(*actorpb.PoolsReply)
	if !ok {
		return nil, fmt.Errorf("actors: pools answered %T", rep)
	}
	if pr.Error != nil {
		return nil, errors.New(pr.Error.Message)
	}
	out := make(map[string]placement.PoolSpec, len(pr.Pools))
	for _, p := range pr.Pools {
		out[p.Name] = PoolSpec(p)
	}
	return out, nil
}

// groupHint places a device group's actor in the pool tier 1 assigned it.
func (s *System) groupHint(ctx context.Context, identity string) Hint {
	a, g, ok := splitGroupIdentity(identity)
	if !ok {
		return Hint{}
	}
	rep, _ := s.request(ctx, KindAccount, a, nil, &actorpb.DescribeGroup{Group: g}) // nil on error
	if gr, ok := rep.(*actorpb.GroupReply); ok && gr.Error == nil {
		return Hint{Pool: gr.Group.GetAssignedPool()}
	}
	return Hint{}
}

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
