package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

type activationOut struct {
	Kind          string     `json:"kind"`
	ID            string     `json:"id"`
	Node          string     `json:"node"`
	ActivatedAt   time.Time  `json:"activated_at"`
	LastMessageAt *time.Time `json:"last_message_at,omitempty"`
}

func (s *server) activationOut(a *actors.Activation) activationOut {
	out := activationOut{Kind: a.Kind, ID: a.Identity, Node: s.cfg.Node, ActivatedAt: a.ActivatedAt.UTC()}
	if t := a.LastMessageAt(); !t.IsZero() {
		t = t.UTC()
		out.LastMessageAt = &t
	}
	return out
}

func checkKind(kind string) *fieldError {
	if !slices.Contains(actors.Kinds, kind) {
		return badField("kind", "unknown actor kind %q; known kinds: %v", kind, actors.Kinds)
	}
	return nil
}

// listActivations answers GET /debug/actors?kind=&scope=local.
func (s *server) listActivations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind != "" && kind != KindEdge {
		if fe := checkKind(kind); fe != nil {
			writeFieldError(w, fe)
			return
		}
	}
	switch sc := q.Get("scope"); sc {
	case "", "local":
	case "cluster":
		if s.cfg.Cluster != nil {
			s.listClusterActivations(w, r, kind)
			return
		}
	default:
		writeFieldError(w, badField("scope", "scope must be local or cluster, not %q", sc))
		return
	}
	var acts []*actors.Activation
	if kind != KindEdge {
		acts = s.cfg.Actors.Activations(kind)
	}
	out := make([]activationOut, 0, len(acts))
	counts := map[string]int{}
	for _, a := range acts {
		out = append(out, s.activationOut(a))
		counts[a.Kind]++
	}
	body := map[string]any{
		"node":        s.cfg.Node,
		"scope":       "local",
		"counts":      map[string]map[string]int{s.cfg.Node: counts},
		"activations": out,
	}
	if ev, ok := s.cfg.SIP.(EdgeActorsView); ok && (kind == "" || kind == KindEdge) {
		limit := defaultEdgeLimit
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeFieldError(w, badField("limit", "limit must be a positive integer, not %q", v))
				return
			}
			limit = n
		}
		// The device flows this node's SIP edge holds, by node.
		list, total := ev.EdgeActors(limit)
		counts[KindEdge] = total
		body["edge_actors"] = map[string]any{s.cfg.Node: list}
	}
	if s.cfg.Apps != nil {
		// The call context cache: count, bytes, budget, hit ratio.
		body["context_cache"] = s.cfg.Apps.ContextStats()
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *server) listClusterActivations(w http.ResponseWriter, r *http.Request, kind string) {
	acts, err := s.cfg.Cluster.Activations(r.Context(), kind)
	counts := map[string]map[string]int{}
	for _, a := range acts {
		if counts[a.Node] == nil {
			counts[a.Node] = map[string]int{}
		}
		counts[a.Node][a.Kind]++
	}
	if acts == nil {
		acts = []ActivationView{}
	}
	body := map[string]any{"node": s.cfg.Node, "scope": "cluster", "counts": counts, "activations": acts}
	if err != nil {
		body["incomplete"] = err.Error()
	}
	writeJSON(w, http.StatusOK, body)
}

// describeActor answers GET /debug/actors/{kind}/{id}: where the actor
// lives and its state, secrets redacted. It activates the actor.
func (s *server) describeActor(w http.ResponseWriter, r *http.Request) {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	if fe := checkKind(kind); fe != nil {
		writeFieldError(w, fe)
		return
	}
	if fe := s.checkIdentity(kind, id); fe != nil {
		writeFieldError(w, fe)
		return
	}
	wasActive := s.find(kind, id) != nil
	rep, ok := askAs[*actorpb.DebugStateReply](s, w, r, kind, id, &actorpb.DebugState{})
	if !ok || replyError(w, rep.Error) {
		return
	}
	body := map[string]any{
		"kind":       kind,
		"id":         id,
		"node":       s.cfg.Node,
		"was_active": wasActive,
		"state":      json.RawMessage(rep.Json),
	}
	if a := s.find(kind, id); a != nil {
		body["activation"] = s.activationOut(a)
	}
	if s.cfg.Cluster == nil {
		body["placement"] = map[string]string{"strategy": "local", "reason": "single node: every actor lives here"}
	} else {
		p, ok, err := s.cfg.Cluster.Placement(r.Context(), kind, id)
		switch {
		case err != nil:
			body["placement_error"] = err.Error()
		case ok:
			body["placement"] = p
			body["node"] = p.Node
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *server) find(kind, id string) *actors.Activation {
	for _, a := range s.cfg.Actors.Activations(kind) {
		if a.Identity == id {
			return a
		}
	}
	return nil
}

func (s *server) checkIdentity(kind, id string) *fieldError {
	if kind == actors.KindDeviceGroup {
		account, group, ok := strings.Cut(id, "/")
		if !ok {
			return badField("id", "a devicegroup id is <account>/<group>")
		}
		if fe := checkID("id", account); fe != nil {
			return fe
		}
		return checkID("id", group)
	}
	return checkID("id", id)
}
