package httpapi

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// This file serves what routes SIP traffic: an account's trunks and
// routes, the feature servers the routes name, and a group's
// registrations. The checks are the actors' own (actors.NormalizeTrunkSources,
// CheckRoutes, NormalizeFeatureTargets), run here first so that bad input
// reaches no actor.

// ---- wire shapes ----

type trunkIn struct {
	Sources []string `json:"sources"`
	Group   string   `json:"group"`
}

type trunkOut struct {
	ID        string     `json:"id"`
	Account   string     `json:"account"`
	Sources   []string   `json:"sources"`
	Group     string     `json:"group,omitempty"`
	Version   uint64     `json:"version"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

type routeJSON struct {
	Method  string `json:"method"`
	User    string `json:"user"`
	Feature string `json:"feature"`
}

type routesIn struct {
	Routes []routeJSON `json:"routes"`
}

type routesOut struct {
	Account   string      `json:"account"`
	Routes    []routeJSON `json:"routes"`
	Version   uint64      `json:"version"`
	UpdatedAt *time.Time  `json:"updated_at,omitempty"`
}

type targetJSON struct {
	Address   string `json:"address"`
	Priority  int    `json:"priority"`
	Weight    int    `json:"weight"`
	Transport string `json:"transport"`
}

type featureServerIn struct {
	Targets []targetJSON `json:"targets"`
}

type featureServerOut struct {
	ID        string       `json:"id"`
	Targets   []targetJSON `json:"targets"`
	Version   uint64       `json:"version"`
	CreatedAt *time.Time   `json:"created_at,omitempty"`
	UpdatedAt *time.Time   `json:"updated_at,omitempty"`
}

type bindingOut struct {
	Device    string    `json:"device"`
	Contact   string    `json:"contact"`
	Source    string    `json:"source"`
	ExpiresAt time.Time `json:"expires_at"`
	// ExpiresIn is the whole seconds left.
	ExpiresIn int64  `json:"expires_in"`
	EdgeNode  string `json:"edge_node,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

func toTrunkOut(account string, r *actorpb.TrunkReply) trunkOut {
	t := r.Trunk
	return trunkOut{
		ID: t.Id, Account: account, Sources: t.Sources, Group: t.Group, Version: r.Version,
		CreatedAt: ts(t.CreatedAt), UpdatedAt: ts(t.UpdatedAt),
	}
}

func toRoutesOut(account string, r *actorpb.RoutesReply) routesOut {
	routes := each(r.Routes.GetRoutes(), func(rt *actorpb.Route) routeJSON {
		return routeJSON{Method: rt.Method, User: rt.User, Feature: rt.Feature}
	})
	return routesOut{Account: account, Routes: routes, Version: r.Version, UpdatedAt: ts(r.Routes.GetUpdatedAt())}
}

func toFeatureServerOut(r *actorpb.FeatureServerReply) any {
	f := r.Server
	targets := each(f.Targets, func(t *actorpb.FeatureTarget) targetJSON {
		return targetJSON{Address: t.Address, Priority: int(t.Priority), Weight: int(t.Weight), Transport: t.Transport}
	})
	return featureServerOut{ID: f.Id, Targets: targets, Version: r.Version, CreatedAt: ts(f.CreatedAt), UpdatedAt: ts(f.UpdatedAt)}
}

// ---- trunks ----

func (s *server) putTrunk(w http.ResponseWriter, r *http.Request) {
	var in trunkIn
	ids, ok := s.pathBody(w, r, &in, "a", "t")
	if !ok {
		return
	}
	sources, e := actors.NormalizeTrunkSources(in.Sources)
	im, imBad := ifMatch(r)
	if badInput(w, cmp.Or(fromActor(e), checkOptionalID("group", in.Group), imBad)) {
		return
	}
	msg := &actorpb.PutTrunk{Trunk: &actorpb.Trunk{Id: ids[1], Sources: sources, Group: in.Group}, IfMatch: im}
	answer(s, w, r, actors.KindAccount, ids[0], msg, func(rep *actorpb.TrunkReply) any { return toTrunkOut(ids[0], rep) })
}

func (s *server) getTrunk(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a", "t")
	if !ok {
		return
	}
	answer(s, w, r, actors.KindAccount, ids[0], &actorpb.GetTrunk{Trunk: ids[1]}, func(rep *actorpb.TrunkReply) any { return toTrunkOut(ids[0], rep) })
}

func (s *server) deleteTrunk(w http.ResponseWriter, r *http.Request) {
	s.remove(w, r, actors.KindAccount, []string{"a", "t"}, func(ids []string, im *uint64) proto.Message {
		return &actorpb.DeleteTrunk{Trunk: ids[1], IfMatch: im}
	})
}

func (s *server) listTrunks(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	after, limit, fe := parseIDPage(r.URL.Query())
	if !ok || badInput(w, fe) {
		return
	}
	rep, ok := askAs[*actorpb.TrunkListReply](s, w, r, actors.KindAccount, ids[0], &actorpb.ListTrunks{After: after, Limit: limit})
	if !ok || replyError(w, rep.Error) {
		return
	}
	out := each(rep.Trunks, func(t *actorpb.TrunkReply) trunkOut { return toTrunkOut(ids[0], t) })
	writeJSON(w, http.StatusOK, pageBody(map[string]any{"trunks": out}, rep.NextAfter))
}

// ---- routes ----

// putRoutes replaces an account's routes. Each feature a route names must
// be a provisioned feature server: the feature servers are asked here,
// since the account actor asks no other actor.
func (s *server) putRoutes(w http.ResponseWriter, r *http.Request) {
	var in routesIn
	ids, ok := s.pathBody(w, r, &in, "a")
	if !ok {
		return
	}
	if in.Routes == nil {
		badInput(w, badField("routes", `routes is required: a list of {"method","user","feature"}; [] removes every rule`))
		return
	}
	set := &actorpb.RouteSet{Routes: each(in.Routes, func(rt routeJSON) *actorpb.Route {
		return &actorpb.Route{Method: rt.Method, User: rt.User, Feature: rt.Feature}
	})}
	im, imBad := ifMatch(r)
	if badInput(w, cmp.Or(fromActor(actors.CheckRoutes(set.Routes)), imBad)) {
		return
	}
	checked := map[string]bool{}
	for i, rt := range set.Routes {
		if checked[rt.Feature] {
			continue
		}
		checked[rt.Feature] = true
		fs, ok := askAs[*actorpb.FeatureServerReply](s, w, r, actors.KindFeatureServer, rt.Feature, &actorpb.GetFeatureServer{})
		if !ok {
			return
		}
		if fs.Error.GetCode() == actorpb.Code_CODE_NOT_FOUND {
			badInput(w, badField(fmt.Sprintf("routes[%d].feature", i), "feature server %q does not exist; create it first with PUT /v1/feature-servers/%s", rt.Feature, rt.Feature))
			return
		}
		if replyError(w, fs.Error) {
			return
		}
	}
	answer(s, w, r, actors.KindAccount, ids[0], &actorpb.PutRoutes{Routes: set, IfMatch: im}, func(rep *actorpb.RoutesReply) any { return toRoutesOut(ids[0], rep) })
}

// getRoutes answers with the account's routes; an account that never set
// any has none, at version 0 and without an ETag.
func (s *server) getRoutes(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	if !ok {
		return
	}
	answer(s, w, r, actors.KindAccount, ids[0], &actorpb.GetRoutes{}, func(rep *actorpb.RoutesReply) any { return toRoutesOut(ids[0], rep) })
}

// ---- feature servers ----

func (s *server) putFeatureServer(w http.ResponseWriter, r *http.Request) {
	var in featureServerIn
	ids, ok := s.pathBody(w, r, &in, "f")
	if !ok {
		return
	}
	fsrv := &actorpb.FeatureServer{Id: ids[0]}
	for i, t := range in.Targets {
		for _, f := range []struct {
			name string
			v    int
		}{{"priority", t.Priority}, {"weight", t.Weight}} {
			if f.v < 0 || f.v > actors.MaxTargetPriority {
				badInput(w, badField(fmt.Sprintf("targets[%d].%s", i, f.name), "%s must be from 0 to %d", f.name, actors.MaxTargetPriority))
				return
			}
		}
		fsrv.Targets = append(fsrv.Targets, &actorpb.FeatureTarget{Address: t.Address, Priority: uint32(t.Priority), Weight: uint32(t.Weight), Transport: t.Transport})
	}
	targets, e := actors.NormalizeFeatureTargets(fsrv.Targets)
	im, imBad := ifMatch(r)
	if badInput(w, cmp.Or(fromActor(e), imBad)) {
		return
	}
	fsrv.Targets = targets
	answer(s, w, r, actors.KindFeatureServer, ids[0], &actorpb.PutFeatureServer{Server: fsrv, IfMatch: im}, toFeatureServerOut)
}

func (s *server) getFeatureServer(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "f")
	if !ok {
		return
	}
	answer(s, w, r, actors.KindFeatureServer, ids[0], &actorpb.GetFeatureServer{}, toFeatureServerOut)
}

func (s *server) deleteFeatureServer(w http.ResponseWriter, r *http.Request) {
	s.remove(w, r, actors.KindFeatureServer, []string{"f"}, func(_ []string, im *uint64) proto.Message {
		return &actorpb.DeleteFeatureServer{IfMatch: im}
	})
}

// ---- registrations ----

// listBindings answers GET /v1/accounts/{a}/groups/{g}/bindings: the
// group's live registrations, most recently updated first.
func (s *server) listBindings(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a", "g")
	q := r.URL.Query()
	limit, fe := parseLimit(q, defaultBindingLimit, maxBindingLimit)
	if !ok || badInput(w, fe) {
		return
	}
	msg := &actorpb.LookupBindings{Limit: uint32(limit)}
	if v := q.Get("after"); v != "" {
		// <device>/<contact> of the last binding of the previous page.
		dev, contact, ok := strings.Cut(v, "/")
		if !ok || contact == "" || checkID("after", dev) != nil {
			badInput(w, badField("after", "after must be the \"next\" of the previous page, <device>/<contact>, not %q", v))
			return
		}
		msg.AfterDevice, msg.AfterContact = dev, contact
	}
	rep, ok := askAs[*actorpb.RegisterReply](s, w, r, actors.KindDeviceGroup, ids[0]+"/"+ids[1], msg)
	if !ok || replyError(w, rep.Error) {
		return
	}
	now := s.cfg.Clock.Now()
	out := each(rep.Bindings, func(b *actorpb.Binding) bindingOut {
		at := b.ExpiresAt.AsTime().UTC()
		return bindingOut{
			Device: b.Device, Contact: b.Contact, Source: b.Source, ExpiresAt: at,
			ExpiresIn: max(0, int64(at.Sub(now)/time.Second)), EdgeNode: b.EdgeNode, UserAgent: b.UserAgent,
		}
	})
	body := map[string]any{"account": ids[0], "group": ids[1], "bindings": out}
	if rep.More && len(rep.Bindings) > 0 {
		last := rep.Bindings[len(rep.Bindings)-1]
		body["next"] = last.Device + "/" + last.Contact
	}
	writeJSON(w, http.StatusOK, body)
}
