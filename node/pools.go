package node

import (
	"context"

	"github.com/switchboard-pbx/switchboard/httpapi"
	"github.com/switchboard-pbx/switchboard/placement"
)

// poolSource tells tier 1 the pools as this node sees them, built by
// placement.PoolStates: each pool's prescribed conditions (the pools actor;
// defaults for a pool never configured) and its alive, not draining nodes
// with their gossiped loads. It reserves nothing: a node does not learn the
// pools that tier 1 chose elsewhere until the calls show in the reports.
type poolSource struct{ n *Node }

func (p poolSource) PoolStates(ctx context.Context) ([]placement.PoolState, error) {
	specs, err := p.n.actors.PoolSpecs(ctx)
	if err != nil {
		return nil, err
	}
	return placement.PoolStates(specs, p.n.membership.PlacementMembers(), nil), nil
}

// pools answers GET /v1/pools.
func (n *Node) pools(ctx context.Context) ([]httpapi.PoolView, error) {
	configured, err := n.actors.PoolSpecs(ctx)
	if err != nil {
		return nil, err
	}
	states := placement.PoolStates(configured, n.membership.PlacementMembers(), nil)
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
