package actors

import (
	"cmp"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// This file holds the account actor's routing: its trunks (trusted SIP
// peers), its route set (request type -> feature server) and the edge view
// that the SIP edge reads to serve a request for the account.

func (a *account) putTrunk(t *turn, m *actorpb.PutTrunk) proto.Message {
	in := m.GetTrunk()
	if !ValidID(in.GetId()) {
		return &actorpb.TrunkReply{Error: invalid("trunk", "%q is not a valid trunk id", in.GetId())}
	}
	sources, e := NormalizeTrunkSources(in.Sources)
	if e != nil {
		return &actorpb.TrunkReply{Error: e}
	}
	if in.Group != "" {
		if _, ok := a.groups[in.Group]; !ok {
			return &actorpb.TrunkReply{Error: invalid("group", "group %q does not exist in account %q; create it first with PUT /v1/accounts/%s/groups/%s", in.Group, a.id, a.id, in.Group)}
		}
	}
	cur := a.trunks[in.Id]
	if e := ifMatch(m.IfMatch, cur.ver(), "trunk "+in.Id); e != nil {
		return &actorpb.TrunkReply{Error: e}
	}
	now := timestamppb.New(a.sys.cfg.Clock.Now())
	rec := &actorpb.Trunk{Id: in.Id, Sources: sources, Group: in.Group, CreatedAt: now, UpdatedAt: now}
	if cur != nil {
		rec.CreatedAt = cur.rec.CreatedAt
	}
	v, err := putRecord(t.ctx, a.store(), trunkKey(a.id, in.Id), rec, cur.ver())
	if err != nil {
		return &actorpb.TrunkReply{Error: storeFailed(t, err, "trunk "+in.Id)}
	}
	a.trunks[in.Id] = &versioned[*actorpb.Trunk]{rec: rec, version: v}
	return &actorpb.TrunkReply{Trunk: rec, Version: v, Created: cur == nil}
}

func (a *account) deleteTrunk(t *turn, m *actorpb.DeleteTrunk) proto.Message {
	cur := a.trunks[m.Trunk] // handle checked that it exists
	if e := ifMatch(m.IfMatch, cur.version, "trunk "+m.Trunk); e != nil {
		return &actorpb.TrunkReply{Error: e}
	}
	if err := a.store().Delete(t.ctx, trunkKey(a.id, m.Trunk), cur.version); err != nil {
		return &actorpb.TrunkReply{Error: storeFailed(t, err, "trunk "+m.Trunk)}
	}
	delete(a.trunks, m.Trunk)
	return &actorpb.TrunkReply{Trunk: cur.rec, Version: cur.version}
}

// listTrunks pages the account's trunks like listDevices; without a
// limit it answers them all.
func (a *account) listTrunks(t *turn, m *actorpb.ListTrunks) *actorpb.TrunkListReply {
	ids, next, e := pageOf(t, a, "trunk", a.trunks, trunkPrefix(a.id), m.After, m.Limit, nil)
	out := &actorpb.TrunkListReply{Error: e, NextAfter: next}
	for _, id := range ids {
		tr := a.trunks[id]
		out.Trunks = append(out.Trunks, &actorpb.TrunkReply{Trunk: tr.rec, Version: tr.version})
	}
	return out
}

// trunkOf returns a trunk that names group, or "".
func (a *account) trunkOf(group string) string {
	for _, id := range sortedKeys(a.trunks) {
		if a.trunks[id].rec.Group == group {
			return id
		}
	}
	return ""
}

// putRoutes replaces the account's route set. Whether each feature server
// exists is not checked here: the account never asks another actor (see
// doc.go), so the HTTP layer asks the feature servers before it writes.
func (a *account) putRoutes(t *turn, m *actorpb.PutRoutes) proto.Message {
	in := m.GetRoutes().GetRoutes()
	if e := CheckRoutes(in); e != nil {
		return &actorpb.RoutesReply{Error: e}
	}
	if e := ifMatch(m.IfMatch, a.routes.ver(), "routes of account "+a.id); e != nil {
		return &actorpb.RoutesReply{Error: e}
	}
	rec := &actorpb.RouteSet{UpdatedAt: timestamppb.New(a.sys.cfg.Clock.Now())}
	for _, r := range in {
		rec.Routes = append(rec.Routes, &actorpb.Route{Method: r.Method, User: r.User, Feature: r.Feature})
	}
	v, err := putRecord(t.ctx, a.store(), routesKey(a.id), rec, a.routes.ver())
	if err != nil {
		return &actorpb.RoutesReply{Error: storeFailed(t, err, "routes of account "+a.id)}
	}
	a.routes = &versioned[*actorpb.RouteSet]{rec: rec, version: v}
	return &actorpb.RoutesReply{Routes: rec, Version: v}
}

// getRoutes returns the route set; an account that never set one has an
// empty set at version 0.
func (a *account) getRoutes() *actorpb.RoutesReply {
	if a.routes == nil {
		return &actorpb.RoutesReply{Routes: &actorpb.RouteSet{}}
	}
	return &actorpb.RoutesReply{Routes: a.routes.rec, Version: a.routes.version}
}

// edgeView is what the SIP edge needs for a request to the account. It is
// the only reply that carries a device's HA1s; it never leaves the nodes.
// Asked for the account level, it checks tier 1 again for every group (a
// group keeps its pool while the pool still meets the prescribed
// conditions): each node asks for it when its snapshot is missing or
// older than accountview's MaxAge, so pools are re-checked that often.
func (a *account) edgeView(t *turn, m *actorpb.GetSecretEdgeView) *actorpb.SecretEdgeView {
	d, found := a.devices[m.Device]
	found = found && m.Device != ""
	var dev *actorpb.Device
	if found {
		// A copy: the caller may redact it in place.
		dev = proto.Clone(d.rec).(*actorpb.Device)
	}
	if m.DeviceOnly {
		return &actorpb.SecretEdgeView{Device: dev, Found: found}
	}
	out := &actorpb.SecretEdgeView{Account: a.acct.rec, Routes: a.getRoutes().Routes, Device: dev, Found: found, GroupPools: map[string]string{}}
	for _, id := range sortedKeys(a.trunks) {
		out.Trunks = append(out.Trunks, a.trunks[id].rec)
	}
	pools := map[string]bool{}
	for _, id := range sortedKeys(a.groups) {
		g := a.groups[id]
		a.assignPool(t, g)
		if p := cmp.Or(g.rec.AssignedPool, g.rec.Pool); p != "" {
			pools[p] = true
			out.GroupPools[id] = p
		}
	}
	out.Pools = sortedKeys(pools)
	return out
}
