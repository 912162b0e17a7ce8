package httpapi

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

// Pools tells the pools with their nodes, load and headroom (GET /v1/pools).
type Pools func(ctx context.Context) ([]PoolView, error)

// PoolView is one pool as GET /v1/pools shows it.
type PoolView struct {
	Name                string            `json:"name"`
	Configured          bool              `json:"configured"`
	CallCapacityPerNode int               `json:"call_capacity_per_node"`
	HighWater           float64           `json:"high_water"`
	Labels              map[string]string `json:"labels,omitempty"`
	Overflow            string            `json:"overflow,omitempty"`
	Nodes               []PoolNodeView    `json:"nodes"`
	ActiveCalls         int               `json:"active_calls"`
	Capacity            int               `json:"capacity"`
	Headroom            int               `json:"headroom"`
	Utilization         float64           `json:"utilization"`
}

// PoolNodeView is one alive node of a pool.
type PoolNodeView struct {
	Name        string  `json:"name"`
	ID          string  `json:"id"`
	ActiveCalls int     `json:"active_calls"`
	CPU         float64 `json:"cpu"`
	Draining    bool    `json:"draining,omitempty"`
}

type poolIn struct {
	CallCapacityPerNode *int              `json:"call_capacity_per_node"`
	HighWater           *float64          `json:"high_water"`
	Labels              map[string]string `json:"labels"`
	Overflow            string            `json:"overflow"`
}

// putPool answers PUT /v1/pools/{p}: a pool's prescribed conditions.
func (s *server) putPool(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("p")
	var in poolIn
	if badInput(w, checkID("pool", name)) || badInput(w, s.decode(w, r, &in)) {
		return
	}
	p := &actorpb.Pool{Name: name, Labels: in.Labels, Overflow: in.Overflow}
	if in.CallCapacityPerNode != nil {
		if *in.CallCapacityPerNode < 1 || *in.CallCapacityPerNode > 1_000_000 {
			badInput(w, badField("call_capacity_per_node", "must be a whole number from 1 to 1000000"))
			return
		}
		p.CallCapacityPerNode = uint32(*in.CallCapacityPerNode)
	}
	if in.HighWater != nil {
		if !(*in.HighWater > 0 && *in.HighWater <= 1) {
			badInput(w, badField("high_water", "must be a utilization above 0 and at most 1, e.g. 0.85"))
			return
		}
		p.HighWater = *in.HighWater
	}
	if in.Overflow == name {
		badInput(w, badField("overflow", "a pool cannot overflow into itself"))
		return
	}
	if badInput(w, cmp.Or(checkOptionalID("overflow", in.Overflow), checkLabels(in.Labels))) {
		return
	}
	answer(s, w, r, actors.KindPools, actors.PoolsIdentity, &actorpb.PutPool{Pool: p}, func(rep *actorpb.PoolsReply) any {
		spec := actors.PoolSpec(rep.Pools[0])
		return PoolView{
			Name: spec.Name, Configured: true, CallCapacityPerNode: spec.CallCapacityPerNode, HighWater: spec.HighWater,
			Labels: spec.Labels, Overflow: spec.Overflow, Nodes: []PoolNodeView{},
		}
	})
}

// deletePool answers DELETE /v1/pools/{p}: the pool's prescribed
// conditions go (its nodes stay, under the defaults); 404 when it is not
// configured, 409 while another pool overflows into it.
func (s *server) deletePool(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("p")
	if badInput(w, checkID("pool", name)) {
		return
	}
	rep, ok := askAs[*actorpb.PoolsReply](s, w, r, actors.KindPools, actors.PoolsIdentity, &actorpb.DeletePool{Name: name})
	if !ok || replyError(w, rep.Error) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listPools answers GET /v1/pools.
func (s *server) listPools(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Pools == nil {
		writeError(w, http.StatusNotImplemented, "", "this node does not know its cluster's pools")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	pools, err := s.cfg.Pools(ctx)
	if err != nil {
		unavailable(w, "pool figures unavailable; retry: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pools": pools})
}

type callIn struct {
	Account     string  `json:"account"`
	Device      string  `json:"device"`
	Callee      string  `json:"callee"`
	HoldSeconds float64 `json:"hold_seconds"`
}

// maxHold bounds a test call started through the API.
const maxHold = 24 * time.Hour

// startCall answers POST /v1/calls: a call of a device, placed by tier 2 on
// a node of its group's pool, that ends after hold_seconds. It stands in
// for the SIP edge until calls arrive over SIP.
func (s *server) startCall(w http.ResponseWriter, r *http.Request) {
	var in callIn
	if badInput(w, s.decode(w, r, &in)) || badInput(w, cmp.Or(checkID("account", in.Account), checkID("device", in.Device))) {
		return
	}
	if in.Callee == "" || len(in.Callee) > 128 {
		badInput(w, badField("callee", "callee is required (at most 128 characters)"))
		return
	}
	hold := time.Duration(in.HoldSeconds * float64(time.Second))
	if in.HoldSeconds <= 0 || hold > maxHold {
		badInput(w, badField("hold_seconds", "hold_seconds must be above 0 and at most 86400"))
		return
	}
	dev, ok := askAs[*actorpb.DeviceReply](s, w, r, actors.KindAccount, in.Account, &actorpb.GetDevice{Device: in.Device})
	if !ok || replyError(w, dev.Error) {
		return
	}
	grp, ok := askAs[*actorpb.GroupReply](s, w, r, actors.KindAccount, in.Account, &actorpb.DescribeGroup{Group: dev.Device.Group})
	if !ok || replyError(w, grp.Error) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	pool := grp.Group.AssignedPool
	hint, err := s.cfg.Actors.CallHint(ctx, pool)
	if err != nil {
		unavailable(w, "pool conditions unavailable; retry: "+err.Error())
		return
	}
	id := newCallID()
	rec := &actorpb.CallRecord{Account: in.Account, Caller: in.Device, Callee: in.Callee, Group: dev.Device.Group, Pool: pool}
	rep, err := s.cfg.Actors.RequestWithHint(ctx, actors.KindCall, id, hint, &actorpb.StartCall{Call: rec, HoldMs: hold.Milliseconds(), Durable: true})
	if errors.Is(err, placement.ErrNoCapacity) || errors.Is(err, placement.ErrNoMembers) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "", "no node of pool "+pool+" (or its overflow) can take the call now: "+err.Error())
		return
	}
	if err != nil {
		unavailable(w, "starting the call failed; retry: "+err.Error())
		return
	}
	cr, ok := rep.(*actorpb.CallReply)
	if !ok || replyError(w, cr.Error) {
		return
	}
	writeJSON(w, http.StatusCreated, actors.CallJSON(cr.Call))
}

// getCall answers GET /v1/calls/{id}: a live call from its actor, an
// ended or unknown one from the store. It never activates a call actor,
// so reading calls adds no call load.
func (s *server) getCall(w http.ResponseWriter, r *http.Request) {
	id, ok := callID(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	rec, _, err := s.cfg.Actors.ReadCall(ctx, id)
	if err != nil {
		unavailable(w, "reading the call failed; retry: "+err.Error())
		return
	}
	if rec == nil {
		writeError(w, http.StatusNotFound, "call", fmt.Sprintf("call %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, actors.CallJSON(rec))
}

func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return hex.EncodeToString(b[:])
}
