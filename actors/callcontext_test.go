package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/callcontext"
	"github.com/switchboard-pbx/switchboard/persistence"
)

type sinkEvent struct{ account, typ, call, user, data string }

type callSink struct {
	mu  sync.Mutex
	evs []sinkEvent
}

func (r *callSink) AppendEvent(_ context.Context, account, typ, user string, data []byte) error {
	return r.AppendCallEvent(context.Background(), account, typ, "", user, data)
}

func (r *callSink) AppendCallEvent(_ context.Context, account, typ, call, user string, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, sinkEvent{account, typ, call, user, string(data)})
	return nil
}

func (r *callSink) types(user string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.evs {
		if e.user == user {
			out = append(out, e.typ)
		}
	}
	return out
}

func getContext(t *testing.T, s *System, call, account, user string) (*actorpb.ContextReply, callcontext.View) {
	t.Helper()
	rep := ask[*actorpb.ContextReply](t, s, KindCallContext, call, &actorpb.GetContext{Account: account, User: user})
	var v callcontext.View
	if rep.Error == nil {
		if err := json.Unmarshal(rep.View, &v); err != nil {
			t.Fatal(err)
		}
	}
	return rep, v
}

func patchContext(t *testing.T, s *System, call, app, user, patch string, ifMatch *uint64) *actorpb.ContextReply {
	t.Helper()
	return ask[*actorpb.ContextReply](t, s, KindCallContext, call, &actorpb.PatchContext{
		Account: "acme", App: app, User: user, Patch: []byte(patch), IfMatch: ifMatch})
}

func startCall(t *testing.T, s *System, id, caller, callee string) {
	t.Helper()
	rec := &actorpb.CallRecord{Account: "acme", Caller: caller, Callee: callee}
	if r := ask[*actorpb.CallReply](t, s, KindCall, id, &actorpb.StartCall{Call: rec}); r.Error != nil {
		t.Fatal(r.Error)
	}
}

// TestCallContext_Abstract1_AppsSupplementALiveCallThenItsRecord: the
// first abstract's flow: an app reads the context of a call (live, then
// ended and loaded from the store), supplements it in its own namespace,
// and another app sees the supplemented view.
func TestCallContext_Abstract1_AppsSupplementALiveCallThenItsRecord(t *testing.T) {
	sink := &callSink{}
	s := newSystem(t, persistence.NewMemory(), func(c *Config) { c.Events = sink })
	startCall(t, s, "c1", "alice", "bob")

	rep, v := getContext(t, s, "c1", "acme", "")
	if rep.Error != nil || !v.Live || v.Call["state"] != "active" || v.Version != 0 {
		t.Fatalf("live context = %+v %+v", rep.Error, v)
	}
	if r := patchContext(t, s, "c1", "crm", "bob", `{"customer":{"name":"Ada"},"ticket":"T-1"}`, nil); r.Error != nil || r.Version != 1 {
		t.Fatalf("crm patch: %v version %d", r.Error, r.Version)
	}
	one := uint64(1)
	r := patchContext(t, s, "c1", "helpdesk", "", `{"case":42}`, &one)
	if r.Error != nil || r.Version != 2 {
		t.Fatalf("helpdesk patch: %v version %d", r.Error, r.Version)
	}
	// A stale If-Match: refused, nothing changed.
	r = patchContext(t, s, "c1", "crm", "", `{"ticket":"T-9"}`, &one)
	if r.Refusal != actorpb.ContextRefusal_CONTEXT_REFUSAL_STALE || code(r.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("stale If-Match: %v %v", r.Refusal, r.Error)
	}
	// null deletes a member.
	if r := patchContext(t, s, "c1", "crm", "bob", `{"ticket":null}`, nil); r.Error != nil || !slices.Equal(r.Removed, []string{"/ticket"}) {
		t.Fatalf("null patch: %v removed %v", r.Error, r.Removed)
	}
	if r := ask[*actorpb.CallReply](t, s, KindCall, "c1", &actorpb.AnswerCall{Target: "bob"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if r := ask[*actorpb.CallReply](t, s, KindCall, "c1", &actorpb.EndCall{Status: 200, EndedBy: "caller"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	_, v = getContext(t, s, "c1", "acme", "alice")
	if v.Live || v.Call["state"] != "ended" || v.Version != 3 {
		t.Fatalf("after the end: live %v state %v version %d", v.Live, v.Call["state"], v.Version)
	}
	if got := string(v.Apps["crm"]); got != `{"customer":{"name":"Ada"}}` {
		t.Errorf("crm namespace = %s", got)
	}
	if got := string(v.Apps["helpdesk"]); got != `{"case":42}` {
		t.Errorf("helpdesk namespace = %s", got)
	}
	if w := v.Writers["crm"]; w.App != "crm" || w.User != "bob" || w.Version != 3 || w.At.IsZero() {
		t.Errorf("crm writer = %+v", w)
	}
	// Each party sees the call's events in order.
	want := []string{"call.ringing", "context.changed", "context.changed", "context.changed", "call.answered", "call.ended"}
	for _, u := range []string{"alice", "bob"} {
		if got := sink.types(u); !slices.Equal(got, want) {
			t.Errorf("events of %s = %v, want %v", u, got, want)
		}
	}

	// A new system on the same store (another node, or after kill -9)
	// reloads the context intact.
	s2 := newSystem(t, s.cfg.Store, nil)
	_, v2 := getContext(t, s2, "c1", "acme", "")
	if v2.Version != 3 || string(v2.Apps["crm"]) != string(v.Apps["crm"]) || v2.Call["state"] != "ended" {
		t.Fatalf("reloaded context = %+v", v2)
	}
}

func TestCallContext_TenancyAndBadPatch(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	startCall(t, s, "c2", "alice", "bob")
	tests := []struct {
		name, account, user string
		want                actorpb.Code
	}{
		{"the account", "acme", "", actorpb.Code_CODE_UNSPECIFIED},
		{"the caller", "acme", "alice", actorpb.Code_CODE_UNSPECIFIED},
		{"the callee", "acme", "bob", actorpb.Code_CODE_UNSPECIFIED},
		{"another user", "acme", "carol", actorpb.Code_CODE_NOT_FOUND},
		{"another account", "other", "", actorpb.Code_CODE_NOT_FOUND},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, _ := getContext(t, s, "c2", tc.account, tc.user)
			if code(rep.Error) != tc.want {
				t.Fatalf("get: %v, want %v", rep.Error, tc.want)
			}
			p := ask[*actorpb.ContextReply](t, s, KindCallContext, "c2", &actorpb.PatchContext{Account: tc.account, User: tc.user, App: "crm", Patch: []byte(`{"a":1}`)})
			if tc.want != actorpb.Code_CODE_UNSPECIFIED && code(p.Error) != tc.want {
				t.Fatalf("patch: %v, want %v", p.Error, tc.want)
			}
		})
	}
	before, _ := getContext(t, s, "c2", "acme", "")
	for _, bad := range []struct{ patch, field string }{
		{`{"a":{"":1}}`, "body/a/"},
		{`[1]`, "body"},
		{`{"x":`, "body"},
	} {
		r := patchContext(t, s, "c2", "crm", "", bad.patch, nil)
		if code(r.Error) != actorpb.Code_CODE_INVALID || r.Error.Field != bad.field {
			t.Errorf("patch %s: %v, want invalid %s", bad.patch, r.Error, bad.field)
		}
	}
	after, _ := getContext(t, s, "c2", "acme", "")
	if before.Version != after.Version || string(before.View) != string(after.View) {
		t.Fatalf("a refused patch changed the context: %s -> %s", before.View, after.View)
	}
	// The per-app limit is CODE_INVALID refined TOO_LARGE.
	big := `{"blob":"` + strings.Repeat("x", 70<<10) + `"}`
	if r := patchContext(t, s, "c2", "crm", "", big, nil); r.Refusal != actorpb.ContextRefusal_CONTEXT_REFUSAL_TOO_LARGE {
		t.Fatalf("a 70 KiB patch: %v %v", r.Refusal, r.Error)
	}
}

// TestCallContext_ReadingNeverActivatesACall: issue 12: reading contexts
// must not count as call load.
func TestCallContext_ReadingNeverActivatesACall(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	rep, _ := getContext(t, s, "nosuchcall", "acme", "")
	if code(rep.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("unknown call: %v", rep.Error)
	}
	putEndedCall(t, s, "ended1", time.Now())
	if rep, _ := getContext(t, s, "ended1", "acme", ""); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	if n := len(s.Activations(KindCall)); n != 0 {
		t.Fatalf("%d call activations after reading contexts; want 0", n)
	}
	waitFor(t, "the unknown call's context to stop", func() bool {
		act, ok := s.lookup.Peek(KindCallContext, "nosuchcall")
		if ok {
			s.lookup.Done(act) // balance Peek's pending count (LocalLookup), or it never stops
		}
		return !ok
	})
}

func putEndedCall(t *testing.T, s *System, id string, ended time.Time) {
	t.Helper()
	rec := &actorpb.CallRecord{Id: id, Account: "acme", Caller: "alice", Callee: "bob", State: "ended",
		StartedAt: timestamppb.New(ended.Add(-time.Minute)), EndedAt: timestamppb.New(ended)}
	b, _ := proto.Marshal(rec)
	if _, err := s.cfg.Store.Put(context.Background(), callKey(id), b, persistence.AnyVersion); err != nil {
		t.Fatal(err)
	}
}

// TestCallContext_BudgetEvictsLeastRecentlyUsed: the node's memory budget
// holds the cached contexts within it, evicting the least recently used.
func TestCallContext_BudgetEvictsLeastRecentlyUsed(t *testing.T) {
	const fit = 20
	s := newSystem(t, persistence.NewMemory(), func(c *Config) {
		c.ContextCacheBytes = fit * (callcontext.EntryOverhead + 200)
	})
	now := s.cfg.Clock.Now()
	for i := range 200 {
		id := fmt.Sprintf("call%03d", i)
		putEndedCall(t, s, id, now)
		if rep, _ := getContext(t, s, id, "acme", ""); rep.Error != nil {
			t.Fatal(rep.Error)
		}
		if st := s.ContextStats(); st.Bytes > st.LimitBytes {
			t.Fatalf("after %d contexts: %d bytes over the budget of %d", i+1, st.Bytes, st.LimitBytes)
		}
	}
	waitFor(t, "evicted contexts to passivate", func() bool { return len(s.Activations(KindCallContext)) <= fit })
	act, ok := s.lookup.Peek(KindCallContext, "call199")
	if !ok {
		t.Fatal("the most recently used context was evicted")
	}
	s.lookup.Done(act)
	st := s.ContextStats()
	if st.Evictions < 200-fit || st.Misses != 200 {
		t.Fatalf("stats = %+v", st)
	}
	// A read of an evicted context reloads it (a miss), a second read hits.
	getContext(t, s, "call000", "acme", "")
	getContext(t, s, "call000", "acme", "")
	if st2 := s.ContextStats(); st2.Misses != 201 || st2.Hits != st.Hits+1 {
		t.Fatalf("stats after re-reading = %+v", st2)
	}
}
