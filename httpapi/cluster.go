package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
)

// Cluster is what the debug endpoints need of the node's cluster
// membership. A node always has one (a single node is a cluster of one).
type Cluster interface {
	// Members lists every member this node knows of, itself included.
	Members() []MemberView
	// Activations asks every alive member for a page of its activations
	// (ActivationQuery); err reports members that did not answer (the
	// others are still listed).
	Activations(ctx context.Context, q ActivationQuery) ([]MemberActivations, error)
	// Placement tells where (kind, id) lives and why, from its directory
	// owner; ok is false when it has no activation.
	Placement(ctx context.Context, kind, id string) (p PlacementView, ok bool, err error)
}

// ActivationQuery asks each member for at most Limit of its activations
// of Kind ("" for all) whose keys sort after After, in key order.
type ActivationQuery struct {
	Kind  string
	After actors.ActivationKey
	Limit int
}

// MemberActivations is one member's answer to an ActivationQuery.
type MemberActivations struct {
	// Node and NodeID name the member.
	Node, NodeID string
	// Activations are in key order, at most the query's limit.
	Activations []ActivationView
	// Counts are all its activations (of the query's kind, if any) by kind.
	Counts map[string]int
	// More tells that the limit left some out.
	More bool
}

// MemberView is one member as /debug/cluster shows it.
type MemberView struct {
	Name      string            `json:"name"`
	ID        string            `json:"id"`
	Pool      string            `json:"pool"`
	Addresses map[string]string `json:"addresses"`
	// Status is alive, suspect, dead, left or draining.
	Status string   `json:"status"`
	Load   LoadView `json:"load"`
	// LastHeard is when this node last heard from the member; LoadAge how
	// old its load report is.
	LastHeard      *time.Time `json:"last_heard,omitempty"`
	LoadAgeSeconds *float64   `json:"load_age_seconds,omitempty"`
	Local          bool       `json:"local,omitempty"`
}

// LoadView is a member's gossiped load.
type LoadView struct {
	Activations map[string]int `json:"activations"`
	ActiveCalls int            `json:"active_calls"`
	CPU         float64        `json:"cpu"`
	Draining    bool           `json:"draining"`
}

// ActivationView is one activation somewhere in the cluster.
type ActivationView struct {
	Kind          string     `json:"kind"`
	ID            string     `json:"id"`
	Node          string     `json:"node"`
	NodeID        string     `json:"node_id"`
	ActivatedAt   time.Time  `json:"activated_at"`
	LastMessageAt *time.Time `json:"last_message_at,omitempty"`
}

// PlacementView is where an activation lives and why.
type PlacementView struct {
	Node       string          `json:"node"`
	NodeID     string          `json:"node_id"`
	Owner      string          `json:"directory_owner"`
	OwnerID    string          `json:"directory_owner_id"`
	State      string          `json:"state"`
	Strategy   string          `json:"strategy,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	PlacedAt   *time.Time      `json:"placed_at,omitempty"`
	Adopted    bool            `json:"adopted,omitempty"`
	Candidates []CandidateView `json:"candidates,omitempty"`
}

// CandidateView is one member's figures as the strategy saw them.
type CandidateView struct {
	Node     string `json:"node"`
	NodeID   string `json:"node_id"`
	Rank     int    `json:"rank"`
	Load     int64  `json:"load"`
	Capacity int64  `json:"capacity,omitempty"`
	Eligible bool   `json:"eligible"`
	Why      string `json:"why,omitempty"`
}

// clusterView answers GET /debug/cluster.
func (s *server) clusterView(w http.ResponseWriter, _ *http.Request) {
	members := []MemberView{{Name: s.cfg.Node, Status: "alive", Local: true}}
	if s.cfg.Cluster != nil {
		members = s.cfg.Cluster.Members()
	}
	counts := map[string]int{}
	for _, m := range members {
		counts[m.Status]++
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": s.cfg.Node, "members": members, "counts": counts})
}

// drain answers POST /v1/admin/drain: the node stops taking placements,
// passivates its actors and leaves.
func (s *server) drain(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Drain == nil {
		writeError(w, http.StatusNotImplemented, "", "this node cannot drain")
		return
	}
	s.cfg.Drain()
	writeJSON(w, http.StatusAccepted, map[string]string{"node": s.cfg.Node, "status": "draining"})
}
