package node

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
)

func TestSweepsNow_OwnPreviousProcessAtOnceOthersAfterGraceByOneNode(t *testing.T) {
	live := []string{"self", "peer1", "peer2"}
	own := actors.CallProcess{ID: "old", Name: "a"}
	if !sweepsNow(own, "a", "self", live, 0, time.Minute) {
		t.Fatal("a node waits to end its own previous process's calls")
	}
	// Exactly one live node sweeps another node's process, after the grace.
	other := actors.CallProcess{ID: "dead", Name: "b"}
	sweepers := 0
	for _, self := range live {
		if sweepsNow(other, "name-of-"+self, self, live, time.Minute, time.Minute) {
			sweepers++
		}
		if sweepsNow(other, "name-of-"+self, self, live, time.Minute-time.Second, time.Minute) {
			t.Fatalf("%s sweeps before the grace ran out", self)
		}
	}
	if sweepers != 1 {
		t.Fatalf("%d nodes sweep one dead process; want 1", sweepers)
	}
	// The choice spreads over the nodes and survives reordering.
	picked := map[string]bool{}
	for _, id := range []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11", "p12"} {
		s := sweeperOf(id, live)
		if s != sweeperOf(id, []string{"peer2", "self", "peer1"}) {
			t.Fatalf("the sweeper of %s depends on the order of the live nodes", id)
		}
		picked[s] = true
	}
	if len(picked) != len(live) {
		t.Fatalf("12 processes are swept by only %v", picked)
	}
}

// TestNode_ShutdownEndsLiveCallsAsInterrupted: SIGTERM (Run's context
// ending) serves the calls up for half the shutdown timeout, then ends
// them with a record: after a restart none is left active.
func TestNode_ShutdownEndsLiveCallsAsInterrupted(t *testing.T) {
	dir := t.TempDir()
	n, cancel, done, _ := startNodeWith(t, "a", dir, true, func(c *Config) { c.ShutdownTimeout = 2 * time.Second })
	body, _ := json.Marshal(map[string]any{"account": "acme", "device": "alice", "callee": "bob", "hold_seconds": 3600})
	res, err := http.Post("http://"+n.HTTPAddr()+"/v1/calls", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var call struct{ ID, State string }
	_ = json.NewDecoder(res.Body).Decode(&call)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || call.State != "active" || n.Actors().LiveCalls() != 1 {
		t.Fatalf("POST /v1/calls: %d %+v, live calls %d", res.StatusCode, call, n.Actors().LiveCalls())
	}
	began := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < time.Second {
		t.Fatalf("the live call was ended after %v, before half the shutdown timeout", took)
	}

	stopped := time.Now()
	n2, _, _, _ := startNode(t, "a", dir, false)
	res, err = http.Get("http://" + n2.HTTPAddr() + "/v1/calls/" + call.ID)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		State       string    `json:"state"`
		Disposition string    `json:"disposition"`
		EndedBy     string    `json:"ended_by"`
		EndedAt     time.Time `json:"ended_at"`
	}
	_ = json.NewDecoder(res.Body).Decode(&rec)
	res.Body.Close()
	// Ended by the shutdown, not by the restarted node's sweep.
	if rec.State != "ended" || rec.Disposition != string(actors.DispositionInterrupted) || rec.EndedBy != "node" || rec.EndedAt.After(stopped) {
		t.Fatalf("the call after a shutdown: %d %+v", res.StatusCode, rec)
	}
}
