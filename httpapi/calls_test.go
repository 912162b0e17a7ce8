package httpapi

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
)

// TestGetCall_ReadingAddsNoCallLoad: GET /v1/calls/{id} of 1,000 ended
// calls and 1,000 unknown ids activates no call actor and leaves no live
// call; a live call is read from its actor, active, and an unknown one is
// a 404 naming the call.
func TestGetCall_ReadingAddsNoCallLoad(t *testing.T) {
	var activated atomic.Int64
	f := newFixtureWith(t, "tok", clock.Real{}, func(c *actors.Config) {
		c.OnActivated = func(a *actors.Activation) {
			if a.Kind == actors.KindCall {
				activated.Add(1)
			}
		}
	})
	ctx := context.Background()
	request := func(id string, msg proto.Message) {
		t.Helper()
		rep, err := f.sys.Request(ctx, actors.KindCall, id, msg)
		if cr, ok := rep.(*actorpb.CallReply); err != nil || !ok || cr.Error != nil {
			t.Fatalf("%s %T: %v %v", id, msg, rep, err)
		}
	}
	const n = 1000
	for i := range n {
		id := fmt.Sprintf("ended-%04d", i)
		request(id, &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "bob"}})
		request(id, &actorpb.EndCall{Disposition: "completed", Status: 200, EndedBy: "caller"})
	}
	request("live", &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "bob"}})
	before := activated.Load()

	for i := range n {
		r := f.do("GET", fmt.Sprintf("/v1/calls/ended-%04d", i), "")
		if r.code != 200 || r.json(t)["state"] != "ended" || r.json(t)["disposition"] != "completed" {
			t.Fatalf("ended call %d: %d %s", i, r.code, r.body)
		}
		r = f.do("GET", fmt.Sprintf("/v1/calls/unknown-%04d", i), "")
		if r.code != 404 || r.json(t)["field"] != "call" {
			t.Fatalf("unknown call %d: %d %s", i, r.code, r.body)
		}
	}
	if r := f.do("GET", "/v1/calls/live", ""); r.code != 200 || r.json(t)["state"] != "active" {
		t.Fatalf("live call: %d %s", r.code, r.body)
	}
	if made := activated.Load() - before; made != 0 {
		t.Fatalf("2,001 reads activated %d call actors; want 0", made)
	}
	if live, acts := f.sys.LiveCalls(), len(f.sys.Activations(actors.KindCall)); live != 1 || acts != 1 {
		t.Fatalf("after the reads: %d live calls, %d call activations; want the one live call", live, acts)
	}
}
