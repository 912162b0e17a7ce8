//go:build unix

package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// callLoadView is the members' call load as /debug/cluster shows it.
type callLoadView struct {
	Members []struct {
		Local bool `json:"local"`
		Load  struct {
			ActiveCalls int `json:"active_calls"`
		} `json:"load"`
	} `json:"members"`
}

// startHeldCall starts a call of device through POST /v1/calls that would
// last an hour, and returns it.
func startHeldCall(t *testing.T, n *proc, account, device, callee string) callJSON {
	t.Helper()
	r := n.call(t, http.MethodPost, "/v1/calls", map[string]any{"account": account, "device": device, "callee": callee, "hold_seconds": 3600})
	want(t, r, http.StatusCreated, "POST /v1/calls")
	c := decode[callJSON](t, r)
	if c.State != "active" || c.ID == "" {
		t.Fatalf("new call: %s", r)
	}
	return c
}

// waitInterrupted polls GET /v1/calls/{id} on n until the call ended, and
// checks that it was ended as interrupted by its node going away.
func waitInterrupted(t *testing.T, n *proc, id string, within time.Duration) {
	t.Helper()
	var last callJSON
	eventually(t, within, "call "+id+" to end", func() (bool, string) {
		r := n.call(t, http.MethodGet, "/v1/calls/"+id, nil)
		if r.Status == http.StatusOK {
			last = decode[callJSON](t, r)
		}
		return last.State == "ended", r.String()
	})
	if last.Disposition != "interrupted" || last.EndedBy != "node" {
		t.Fatalf("call %s ended as %+v; want disposition interrupted, ended_by node", id, last)
	}
}

// TestProcess_CallRecordSurvivesKillAndRestartEndsIt: a call's record is
// stored while the call is up, so that it survives a kill -9 of its node;
// the node started again ends its previous process's call as interrupted
// instead of leaving it active forever.
func TestProcess_CallRecordSurvivesKillAndRestartEndsIt(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	n := startNode(t, nodeOptions{args: []string{"--data", data, "--demo"}})
	c := startHeldCall(t, n, "acme", "alice", "bob")
	if r := n.call(t, http.MethodGet, "/v1/calls/"+c.ID, nil); r.Status != http.StatusOK || decode[callJSON](t, r).State != "active" {
		t.Fatalf("live call: %s", r)
	}
	eventually(t, 10*time.Second, "the live call to count in active_calls", func() (bool, string) {
		return localActiveCalls(t, n) == 1, fmt.Sprint(localActiveCalls(t, n))
	})
	n.Kill()

	again := startNode(t, nodeOptions{args: []string{"--data", data}})
	waitInterrupted(t, again, c.ID, 30*time.Second)

	// Reading 1,000 ended and 1,000 unknown calls adds no call load.
	for i := range 1000 {
		want(t, again.call(t, http.MethodGet, "/v1/calls/"+c.ID, nil), http.StatusOK, "GET of the ended call")
		want(t, again.call(t, http.MethodGet, fmt.Sprintf("/v1/calls/unknown-%04d", i), nil), http.StatusNotFound, "GET of an unknown call")
	}
	acts := decode[clActivations](t, again.call(t, http.MethodGet, "/debug/actors?kind=call&scope=local", nil))
	if len(acts.Activations) != 0 {
		t.Fatalf("2,000 reads left %d call activations: %+v", len(acts.Activations), acts.Activations)
	}
	if c := localActiveCalls(t, again); c != 0 {
		t.Fatalf("active_calls after the reads = %d; want 0", c)
	}
}

// localActiveCalls is n's own active_calls as its /debug/cluster shows it.
func localActiveCalls(t *testing.T, n *proc) int {
	t.Helper()
	for _, m := range decode[callLoadView](t, n.call(t, http.MethodGet, "/debug/cluster", nil)).Members {
		if m.Local {
			return m.Load.ActiveCalls
		}
	}
	t.Fatal("/debug/cluster lists no local member")
	return 0
}

// TestProcess_SurvivorEndsADeadNodesCalls: on the shared store, a node
// killed with calls up leaves their records active; a survivor ends them
// as interrupted once the grace after the dead node's lease passed.
func TestProcess_SurvivorEndsADeadNodesCalls(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	store := []string{"--store", dsn, "--call-sweep-grace", "1s", "--lease-ttl", "2s", "--lease-renew", "500ms"}
	a := startClusterNode(t, "a", store)
	b := startClusterNode(t, "b", store, a.gossip)
	nodes := []*clusterNode{a, b}
	waitAllAlive(t, nodes, nodes)
	waitServing(t, nodes)
	account := "t-sweep-" + randomID()
	want(t, a.call(t, http.MethodPut, "/v1/accounts/"+account, map[string]string{"display_name": "Sweep test"}), http.StatusCreated, "PUT account")
	want(t, a.call(t, http.MethodPut, "/v1/accounts/"+account+"/groups/desk", map[string]any{"display_name": "Desk"}), http.StatusCreated, "PUT group")
	want(t, a.call(t, http.MethodPut, "/v1/accounts/"+account+"/devices/alice", map[string]string{"group": "desk", "password": "pw-alice-sweep-1"}), http.StatusCreated, "PUT device")
	t.Cleanup(func() { _ = b.call(t, http.MethodDelete, "/v1/accounts/"+account, nil) })

	// Calls until one is placed on a, the node to kill.
	var onA callJSON
	for i := 0; onA.ID == "" && i < 40; i++ {
		if c := startHeldCall(t, a.proc, account, "alice", "bob"); c.Node == "a" {
			onA = c
		}
	}
	if onA.ID == "" {
		t.Fatal("tier 2 placed none of 40 calls on node a")
	}
	waitCallStored(t, dsn, onA.ID, func(*actorpb.CallRecord) bool { return true })
	a.Kill()
	if r := b.call(t, http.MethodGet, "/v1/calls/"+onA.ID, nil); r.Status != http.StatusOK || decode[callJSON](t, r).State == "" {
		t.Fatalf("the dead node's call is not readable on the survivor: %s", r)
	}
	waitInterrupted(t, b.proc, onA.ID, 60*time.Second)
}

// waitCallStored waits until call id's record in the shared store (dsn)
// satisfies ok: call records are group-committed, durable some
// milliseconds after the call's reply, and a test that kills the node
// must not kill it inside that window (a crash loses it, by design).
func waitCallStored(t *testing.T, dsn, id string, ok func(*actorpb.CallRecord) bool) {
	t.Helper()
	ctx, store := openPostgres(t, dsn)
	eventually(t, 10*time.Second, "call "+id+"'s record to be durable", func() (bool, string) {
		it, err := store.Get(ctx, "call/"+id)
		if err != nil {
			return false, err.Error()
		}
		rec := &actorpb.CallRecord{}
		if err := proto.Unmarshal(it.Value, rec); err != nil {
			return false, err.Error()
		}
		return ok(rec), rec.String()
	})
}
