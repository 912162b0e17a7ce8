package httpapi

import "net/http"

// SIPView is the SIP edge as the debug endpoints show it. Its methods
// return JSON-ready values.
type SIPView interface {
	// Bans lists the sources banned for flooding.
	Bans() any
	// Targets lists the feature-server targets this node probes, up or
	// down.
	Targets() any
}

// EdgeActorsView is a SIPView that also lists the node's edge actors (the
// device flows its SIP edge holds), for /debug/actors.
type EdgeActorsView interface {
	// EdgeActors returns at most limit of them, oldest first, and how many
	// there are in all.
	EdgeActors(limit int) (list any, total int)
}

// KindEdge names the edge actors in /debug/actors (?kind=edge).
const KindEdge = "edge"

// sipView answers GET /debug/sip/bans and /debug/sip/targets: the SIP
// edge's view (Bans or Targets) under key.
func (s *server) sipView(key string, view func(SIPView) any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if s.cfg.SIP == nil {
			writeError(w, http.StatusNotImplemented, "", "this node runs no SIP edge")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{key: view(s.cfg.SIP)})
	}
}
