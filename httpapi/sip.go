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

// sipBans answers GET /debug/sip/bans.
func (s *server) sipBans(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.SIP == nil {
		writeError(w, http.StatusNotImplemented, "", "this node runs no SIP edge")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bans": s.cfg.SIP.Bans()})
}

// sipTargets answers GET /debug/sip/targets.
func (s *server) sipTargets(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.SIP == nil {
		writeError(w, http.StatusNotImplemented, "", "this node runs no SIP edge")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"targets": s.cfg.SIP.Targets()})
}
