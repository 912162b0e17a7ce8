package node

import (
	"context"
	"sort"

	"github.com/switchboard-pbx/switchboard/httpapi"
	"github.com/switchboard-pbx/switchboard/placement"
)

// poolSource tells tier 1 the pools as this node sees them: each pool's
// prescribed conditions (the pools actor; defaults for a pool never
// configured) and its alive, not draining nodes with their gossiped loads.
type poolSource struct{ n *Node }

func (p poolSource) PoolStates(ctx context.Context) ([]placement.PoolState, error) {
	specs, err := p.n.actors.PoolSpecs(ctx)
	if err != nil {
		return nil, err
	}
	nodes := map[string][]placement.Member{}
	for _, m := range p.n.member.PlacementMembers() {
		if !m.Draining {
			nodes[m.Pool] = append(nodes[m.Pool], m)
		}
	}
	names := map[string]bool{}
	for name := range specs {
		names[name] = true
	}
	for name := range nodes {
		names[name] = true
	}
	out := make([]placement.PoolState, 0, len(names))
	for name := range names {
		spec, ok := specs[name]
		if !ok {
			spec = placement.DefaultPoolSpec(name)
		}
		out = append(out, placement.PoolState{Spec: spec, Nodes: nodes[name]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out, nil
}

// pools answers GET /v1/pools.
func (n *Node) pools(ctx context.Context) ([]httpapi.PoolView, error) {
	states, err := poolSource{n}.PoolStates(ctx)
	if err != nil {
		return nil, err
	}
	configured, err := n.actors.PoolSpecs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.PoolView, 0, len(states))
	for _, st := range states {
		_, isConfigured := configured[st.Spec.Name]
		v := httpapi.PoolView{
			Name: st.Spec.Name, Configured: isConfigured, CallCapacityPerNode: st.Spec.CallCapacityPerNode,
			HighWater: st.Spec.HighWater, Labels: st.Spec.Labels, Overflow: st.Spec.Overflow, Nodes: []httpapi.PoolNodeView{},
		}
		for _, m := range st.Nodes {
			v.Nodes = append(v.Nodes, httpapi.PoolNodeView{Name: m.Name, ID: m.ID, ActiveCalls: m.Load.ActiveCalls, CPU: m.Load.CPU, Draining: m.Draining})
			v.ActiveCalls += m.Load.ActiveCalls
		}
		v.Capacity = len(st.Nodes) * st.Spec.CallCapacityPerNode
		v.Headroom = max(0, v.Capacity-v.ActiveCalls)
		if v.Capacity > 0 {
			v.Utilization = float64(v.ActiveCalls) / float64(v.Capacity)
		}
		out = append(out, v)
	}
	return out, nil
}
