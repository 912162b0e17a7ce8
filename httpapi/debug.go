package httpapi

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
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
	if !slices.Contains(actors.Kinds(), kind) {
		return badField("kind", "unknown actor kind %q; known kinds: %v", kind, actors.Kinds())
	}
	return nil
}

// listActivations answers GET /debug/actors?kind=&scope=&limit=&after=:
// a page of the activations in key order (kind, then id), with "next" to
// pass as after while more follow, and the counts by kind. The edge
// actors of this node's SIP edge (kind "" or edge) come on the first
// page, at most limit of them, oldest first; counts tell how many there
// are.
func (s *server) listActivations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kind := q.Get("kind")
	var kindBad, edgeAfterBad *fieldError
	if kind != "" && kind != KindEdge {
		kindBad = checkKind(kind)
	}
	limit, limitBad := parseLimit(q, defaultActivationLimit, maxActivationLimit)
	after, afterBad := s.parseActivationCursor(q.Get("after"))
	if kind == KindEdge && q.Get("after") != "" {
		edgeAfterBad = badField("after", "edge actors are listed oldest first without a cursor: leave after out and raise limit (at most %d)", maxActivationLimit)
	}
	if badInput(w, cmp.Or(kindBad, limitBad, afterBad, edgeAfterBad)) {
		return
	}
	switch sc := q.Get("scope"); sc {
	case "", "local":
	case "cluster":
		if s.cfg.Cluster != nil {
			s.listClusterActivations(w, r, ActivationQuery{Kind: kind, After: after, Limit: limit})
			return
		}
	default:
		badInput(w, badField("scope", "scope must be local or cluster, not %q", sc))
		return
	}
	out := []activationOut{}
	counts := map[string]int{}
	body := map[string]any{"node": s.cfg.Node, "scope": "local"}
	if kind != KindEdge {
		acts, more := s.cfg.Actors.ActivationPage(kind, after, limit)
		out = each(acts, s.activationOut)
		if more {
			body["next"] = activationCursor(acts[len(acts)-1].Key())
		}
		for k, n := range s.cfg.Actors.ActivationCounts() {
			if kind == "" || k == kind {
				counts[k] = n
			}
		}
	}
	body["counts"] = map[string]map[string]int{s.cfg.Node: counts}
	body["activations"] = out
	if ev, ok := s.cfg.SIP.(EdgeActorsView); ok && (kind == "" && q.Get("after") == "" || kind == KindEdge) {
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

func (s *server) listClusterActivations(w http.ResponseWriter, r *http.Request, q ActivationQuery) {
	pages, err := s.cfg.Cluster.Activations(r.Context(), q)
	counts := map[string]map[string]int{}
	for _, p := range pages {
		counts[cmp.Or(p.Node, p.NodeID)] = p.Counts
	}
	acts, more := mergeActivations(pages, q.Limit)
	body := map[string]any{"node": s.cfg.Node, "scope": "cluster", "counts": counts, "activations": acts}
	if more && len(acts) > 0 {
		last := acts[len(acts)-1]
		body["next"] = activationCursor(actors.ActivationKey{Kind: last.Kind, Identity: last.ID})
	}
	if err != nil {
		body["incomplete"] = err.Error()
	}
	writeJSON(w, http.StatusOK, body)
}

// mergeActivations merges the members' pages into the cluster's first
// limit activations in key order (then by member), and tells whether more
// follow. Each member answered its own first limit, so the cluster's
// first limit are among them: the merge costs O(members x limit), never
// the size of the cluster. An identity found on two members (a duplicate
// about to be evicted) is not split across pages.
func mergeActivations(pages []MemberActivations, limit int) ([]ActivationView, bool) {
	all := []ActivationView{}
	more := false
	for _, p := range pages {
		all = append(all, p.Activations...)
		more = more || p.More
	}
	key := func(a ActivationView) actors.ActivationKey { return actors.ActivationKey{Kind: a.Kind, Identity: a.ID} }
	slices.SortFunc(all, func(a, b ActivationView) int {
		return cmp.Or(key(a).Compare(key(b)), strings.Compare(a.NodeID, b.NodeID))
	})
	n := min(limit, len(all))
	for n > 0 && n < len(all) && key(all[n]) == key(all[n-1]) {
		n++
	}
	return all[:n], more || n < len(all)
}

// describeActor answers GET /debug/actors/{kind}/{id}: where the actor
// lives and its state, secrets redacted. It activates the actor.
func (s *server) describeActor(w http.ResponseWriter, r *http.Request) {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	if badInput(w, cmp.Or(checkKind(kind), s.checkIdentity(kind, id))) {
		return
	}
	_, wasActive := s.cfg.Actors.FindActivation(kind, id)
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
	if a, ok := s.cfg.Actors.FindActivation(kind, id); ok {
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
