package node

import (
	"context"
	"maps"
	"time"

	"github.com/switchboard-pbx/switchboard/cluster"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/cluster/gossip"
	"github.com/switchboard-pbx/switchboard/httpapi"
)

// clusterView adapts the cluster membership to the debug endpoints.
type clusterView struct{ m *cluster.Membership }

func (v clusterView) Members() []httpapi.MemberView {
	now := time.Now()
	var out []httpapi.MemberView
	for _, g := range v.m.Members() {
		st := string(g.Status)
		if g.Load.Draining && (g.Status == gossip.StatusAlive || g.Status == gossip.StatusSuspect) {
			st = "draining"
		}
		mv := httpapi.MemberView{
			Name: g.Meta.Name, ID: g.ID, Pool: g.Meta.Pool, Status: st, Local: g.Local,
			Addresses: map[string]string{"gossip": g.Addr, "actor": g.Meta.Actor, "http": g.Meta.HTTP, "sip": g.Meta.SIP, "dns": g.Meta.DNS},
			Load:      httpapi.LoadView{Activations: orEmpty(g.Load.Activations), ActiveCalls: g.Load.ActiveCalls, CPU: g.Load.CPU, Draining: g.Load.Draining},
		}
		maps.DeleteFunc(mv.Addresses, func(_, a string) bool { return a == "" })
		if !g.SeenAt.IsZero() {
			t := g.SeenAt.UTC()
			mv.LastHeard = &t
		}
		if !g.LoadAt.IsZero() {
			age := now.Sub(g.LoadAt).Seconds()
			mv.LoadAgeSeconds = &age
		}
		out = append(out, mv)
	}
	return out
}

func (v clusterView) names() map[string]string {
	names := map[string]string{}
	for _, g := range v.m.Members() {
		names[g.ID] = g.Meta.Name
	}
	return names
}

func (v clusterView) Activations(ctx context.Context, q httpapi.ActivationQuery) ([]httpapi.MemberActivations, error) {
	lists, err := v.m.ClusterActivations(ctx, &clusterpb.ListActivations{Kind: q.Kind, AfterKind: q.After.Kind, AfterIdentity: q.After.Identity, Limit: uint32(q.Limit)})
	names := v.names()
	var out []httpapi.MemberActivations
	for _, l := range lists {
		ma := httpapi.MemberActivations{Node: names[l.MemberId], NodeID: l.MemberId, More: l.More, Counts: map[string]int{}}
		for k, n := range l.Counts {
			ma.Counts[k] = int(n)
		}
		for _, a := range l.Activations {
			av := httpapi.ActivationView{
				Kind: a.Kind, ID: a.Identity, Node: ma.Node, NodeID: l.MemberId,
				ActivatedAt: time.UnixMilli(a.ActivatedAtUnixMs).UTC(),
			}
			if a.LastMessageAtUnixMs > 0 {
				t := time.UnixMilli(a.LastMessageAtUnixMs).UTC()
				av.LastMessageAt = &t
			}
			ma.Activations = append(ma.Activations, av)
		}
		out = append(out, ma)
	}
	return out, err
}

func (v clusterView) Placement(ctx context.Context, kind, id string) (httpapi.PlacementView, bool, error) {
	rep, err := v.m.Describe(ctx, kind, id)
	if err != nil {
		return httpapi.PlacementView{}, false, err
	}
	names := v.names()
	p := httpapi.PlacementView{Owner: names[rep.OwnerId], OwnerID: rep.OwnerId, State: rep.State}
	if !rep.Found {
		return p, false, nil
	}
	if pl := rep.Placement; pl != nil {
		p.NodeID, p.Node = pl.MemberId, names[pl.MemberId]
		p.Strategy, p.Reason, p.Adopted = pl.Strategy, pl.Reason, pl.Adopted
		if pl.PlacedAtUnixMs > 0 {
			t := time.UnixMilli(pl.PlacedAtUnixMs).UTC()
			p.PlacedAt = &t
		}
		for _, c := range pl.Candidates {
			p.Candidates = append(p.Candidates, httpapi.CandidateView{
				Node: names[c.Id], NodeID: c.Id, Rank: int(c.Rank), Load: c.Load, Capacity: c.Capacity, Eligible: c.Eligible, Why: c.Why,
			})
		}
	}
	if p.NodeID == "" && rep.Pid != nil {
		// An adopted entry may lack its original placement: name the host by address.
		for _, g := range v.m.Members() {
			if g.Meta.Actor == rep.Pid.Address {
				p.NodeID, p.Node = g.ID, g.Meta.Name
			}
		}
	}
	return p, true, nil
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}
