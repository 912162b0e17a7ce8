package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// hangups records what Config.Hangup was told.
type hangups struct {
	mu   sync.Mutex
	recs []*actorpb.CallRecord
}

func (h *hangups) HangUp(_ context.Context, rec *actorpb.CallRecord) {
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
}

func (h *hangups) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		out = append(out, r.Id)
	}
	slices.Sort(out)
	return out
}

// callSystem is a System on a fake clock whose call timers fire only when
// the test says (fire).
func callSystem(t *testing.T, store persistence.Store, mod func(*Config)) (*System, *clock.Fake, *hangups) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	h := &hangups{}
	s := newSystem(t, store, func(c *Config) {
		c.Clock, c.Node, c.Hangup, c.CallTimerTick = clk, "n1", h, time.Hour
		if mod != nil {
			mod(c)
		}
	})
	return s, clk, h
}

func callReq(t *testing.T, s *System, id string, m proto.Message) *actorpb.CallReply {
	t.Helper()
	return ask[*actorpb.CallReply](t, s, KindCall, id, m)
}

func startCallOn(t *testing.T, s *System, id string) *actorpb.CallRecord {
	t.Helper()
	r := callReq(t, s, id, &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "bob"}})
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	return r.Call
}

// fire runs the node's call timers once, as its timer loop does, and
// waits until each call named handled what it was told (a read queued
// behind the deadline is answered after it).
func fire(t *testing.T, s *System, ids ...string) {
	t.Helper()
	s.fireDueCalls()
	for _, id := range ids {
		if _, _, err := s.ReadCall(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
}

// stored reads a call's record from the store (nil when absent), once
// the writes queued on s are durable.
func stored(t *testing.T, s *System, id string) *actorpb.CallRecord {
	t.Helper()
	if err := s.commits.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	cur, err := loadOne[*actorpb.CallRecord](context.Background(), s.cfg.Store, callKey(id))
	if err != nil {
		t.Fatal(err)
	}
	if cur == nil {
		return nil
	}
	return cur.rec
}

// hasKey tells whether key is in s's store, once the writes queued on s
// are durable.
func hasKey(t *testing.T, s *System, key string) bool {
	t.Helper()
	if err := s.commits.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := s.cfg.Store.Get(context.Background(), key)
	return err == nil
}

// TestCall_RecordStoredFromTheStart: the record is in the store while the
// call is up (state active, naming its process), indexed by process, and
// counted as a live call; its end writes the record, drops the index
// entry and the count.
func TestCall_RecordStoredFromTheStart(t *testing.T) {
	s, clk, _ := callSystem(t, persistence.NewMemory(), nil)
	startCallOn(t, s, "c1")
	rec := stored(t, s, "c1")
	if rec.GetState() != "active" || rec.NodeId != s.NodeID() || rec.Node != "n1" || rec.ExpiresAt == nil {
		t.Fatalf("record at start = %+v", rec)
	}
	if !hasKey(t, s, liveCallKey(s.NodeID(), "c1")) {
		t.Fatal("the call is not in its process's index of active calls")
	}
	if s.LiveCalls() != 1 || len(s.Activations(KindCall)) != 1 || !s.Activations(KindCall)[0].LiveCall() {
		t.Fatalf("live calls %d, activations %d", s.LiveCalls(), len(s.Activations(KindCall)))
	}
	clk.Advance(2 * time.Second)
	if r := callReq(t, s, "c1", &actorpb.AnswerCall{Target: "192.0.2.9:5060"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if rec := stored(t, s, "c1"); rec.AnsweredAt == nil || rec.State != "active" {
		t.Fatalf("record after answer = %+v", rec)
	}
	clk.Advance(5 * time.Second)
	if r := callReq(t, s, "c1", &actorpb.EndCall{Status: 200, EndedBy: "caller", Disposition: "completed"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if rec := stored(t, s, "c1"); rec.State != "ended" || rec.DurationMs != 5000 || rec.ExpiresAt != nil {
		t.Fatalf("record after end = %+v", rec)
	}
	if hasKey(t, s, liveCallKey(s.NodeID(), "c1")) {
		t.Fatal("an ended call stays in the index of active calls")
	}
	if s.LiveCalls() != 0 {
		t.Fatalf("live calls after the end = %d", s.LiveCalls())
	}
	waitFor(t, "the ended call to stop", func() bool { return len(s.Activations(KindCall)) == 0 })
}

// TestCall_ReadsAddNoLoad: reading 1,000 ended calls and 1,000 unknown
// ids leaves no call activation and no live call, and so does a request
// (activating) to an unknown id; a live call is read from its actor.
func TestCall_ReadsAddNoLoad(t *testing.T) {
	var activated atomic.Int64 // call activations
	s, _, _ := callSystem(t, persistence.NewMemory(), func(c *Config) {
		c.OnActivated = func(a *Activation) {
			if a.Kind == KindCall {
				activated.Add(1)
			}
		}
	})
	const n = 1000
	for i := range n {
		id := fmt.Sprintf("ended-%04d", i)
		startCallOn(t, s, id)
		if r := callReq(t, s, id, &actorpb.EndCall{Disposition: "completed", Status: 200}); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
	waitFor(t, "ended calls to stop", func() bool { return len(s.Activations(KindCall)) == 0 })
	before := activated.Load()
	ctx := context.Background()
	for i := range n {
		rec, live, err := s.ReadCall(ctx, fmt.Sprintf("ended-%04d", i))
		if err != nil || rec.GetState() != "ended" || live {
			t.Fatalf("ended call %d: %+v live %v err %v", i, rec, live, err)
		}
		if rec, _, err := s.ReadCall(ctx, fmt.Sprintf("unknown-%04d", i)); err != nil || rec != nil {
			t.Fatalf("unknown call %d: %+v %v", i, rec, err)
		}
	}
	if a, l, n := len(s.Activations(KindCall)), s.LiveCalls(), activated.Load()-before; a != 0 || l != 0 || n != 0 {
		t.Fatalf("after 2,000 reads: %d call activations (%d made), %d live calls; want none", a, n, l)
	}
	// A request (the edge's GetCall) does activate an unknown id, but the
	// activation neither counts nor stays.
	if r := callReq(t, s, "unknown-x", &actorpb.GetCall{}); code(r.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("unknown call: %+v", r.Error)
	}
	if s.LiveCalls() != 0 {
		t.Fatal("an unknown call counts as live")
	}
	waitFor(t, "the unknown call's activation to stop", func() bool { return len(s.Activations(KindCall)) == 0 })

	startCallOn(t, s, "up")
	rec, live, err := s.ReadCall(ctx, "up")
	if err != nil || !live || rec.State != "active" {
		t.Fatalf("live call: %+v live %v err %v", rec, live, err)
	}
}

// TestCall_RFC4028_10_SessionNotRefreshedExpires: a session refreshed in
// time goes on; one not refreshed before its interval runs out ends with
// disposition expired, a record, and the edge told to hang up.
func TestCall_RFC4028_10_SessionNotRefreshedExpires(t *testing.T) {
	s, clk, h := callSystem(t, persistence.NewMemory(), nil)
	startCallOn(t, s, "c1")
	if r := callReq(t, s, "c1", &actorpb.AnswerCall{SessionExpiresMs: 90_000}); r.Error != nil ||
		!r.Call.ExpiresAt.AsTime().Equal(clk.Now().Add(90*time.Second)) {
		t.Fatalf("answer with a session: %+v", r)
	}
	if r := callReq(t, s, "c1", &actorpb.RefreshCall{}); code(r.Error) != actorpb.Code_CODE_INVALID || r.Error.Field != "session_expires_ms" {
		t.Fatalf("refresh without an interval: %+v", r.Error)
	}
	clk.Advance(60 * time.Second)
	if r := callReq(t, s, "c1", &actorpb.RefreshCall{SessionExpiresMs: 90_000}); r.Error != nil {
		t.Fatal(r.Error)
	}
	clk.Advance(60 * time.Second) // 120 s: past the first interval, within the refreshed one
	fire(t, s, "c1")
	if rec, live, _ := s.ReadCall(context.Background(), "c1"); !live || rec.State != "active" {
		t.Fatalf("a refreshed session ended: %+v", rec)
	}
	clk.Advance(30 * time.Second) // 150 s: the refreshed interval ran out
	fire(t, s, "c1")
	rec := stored(t, s, "c1")
	if rec.State != "ended" || rec.Disposition != string(DispositionExpired) || rec.EndedBy != "expiry" || rec.Status != 200 ||
		rec.DurationMs != 150_000 {
		t.Fatalf("expired call's record = %+v", rec)
	}
	waitFor(t, "the edge to be told to hang up", func() bool { return slices.Equal(h.ids(), []string{"c1"}) })
	if s.LiveCalls() != 0 || hasKey(t, s, liveCallKey(s.NodeID(), "c1")) {
		t.Fatal("the expired call is still counted or indexed")
	}
}

// TestCall_MaxDurationEndsTheCall: a call ends at its maximum length even
// when its session is refreshed, and a session interval never reaches past
// it.
func TestCall_MaxDurationEndsTheCall(t *testing.T) {
	s, clk, h := callSystem(t, persistence.NewMemory(), func(c *Config) { c.MaxCallDuration = time.Hour })
	started := clk.Now()
	startCallOn(t, s, "long")
	if r := callReq(t, s, "long", &actorpb.AnswerCall{SessionExpiresMs: (2 * time.Hour).Milliseconds()}); r.Error != nil ||
		!r.Call.ExpiresAt.AsTime().Equal(started.Add(time.Hour)) {
		t.Fatalf("a session past the maximum length: %+v", r)
	}
	for range 3 { // refreshed every 20 minutes
		clk.Advance(20*time.Minute - time.Second)
		fire(t, s, "long")
		if r := callReq(t, s, "long", &actorpb.RefreshCall{SessionExpiresMs: (30 * time.Minute).Milliseconds()}); r.Error != nil {
			t.Fatalf("refresh at %v: %v", clk.Now().Sub(started), r.Error)
		}
	}
	if len(h.ids()) != 0 {
		t.Fatal("hung up before the maximum length")
	}
	clk.Advance(3 * time.Second) // one hour and no more
	fire(t, s, "long")
	rec := stored(t, s, "long")
	if rec.State != "ended" || rec.Disposition != string(DispositionExpired) || rec.EndedBy != "expiry" {
		t.Fatalf("record at the maximum length = %+v", rec)
	}
	waitFor(t, "the edge to be told to hang up", func() bool { return slices.Equal(h.ids(), []string{"long"}) })

	// With no maximum, only the session bounds a call.
	s2, clk2, _ := callSystem(t, persistence.NewMemory(), func(c *Config) { c.MaxCallDuration = 0 })
	if rec := startCallOn(t, s2, "free"); rec.ExpiresAt != nil {
		t.Fatalf("no maximum, yet expires_at %v", rec.ExpiresAt.AsTime())
	}
	clk2.Advance(100 * time.Hour)
	fire(t, s2, "free")
	if rec := stored(t, s2, "free"); rec.State != "active" {
		t.Fatalf("a call with no limit ended: %+v", rec)
	}
}

// TestCall_GoneProcessCallsAreInterrupted: the calls of a process that is
// gone (its System closed without ending them, as a crash leaves them)
// are ended by another process with disposition interrupted, and the
// index forgets that process; a live process's call refuses the sweep.
func TestCall_GoneProcessCallsAreInterrupted(t *testing.T) {
	store := persistence.NewMemory()
	a, _, _ := callSystem(t, store, nil)
	b, _, hb := callSystem(t, store, nil)
	for _, id := range []string{"a1", "a2", "a3"} {
		startCallOn(t, a, id)
	}
	startCallOn(t, b, "b1")
	if r := callReq(t, a, "a1", &actorpb.InterruptCall{NodeId: a.NodeID()}); code(r.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("a live call took a sweep: %+v", r.Error)
	}
	// A BYE of a3 reaches b after a died: b ends it from the stored record.
	deadA := a.NodeID()
	_ = a.Close()
	if rec := stored(t, b, "a1"); rec.State != "active" {
		t.Fatalf("a crash should leave the record active: %+v", rec)
	}
	if r := callReq(t, b, "a3", &actorpb.EndCall{Disposition: "completed", Status: 200, EndedBy: "callee"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	procs, err := b.CallProcesses(context.Background())
	if err != nil || !slices.ContainsFunc(procs, func(p CallProcess) bool { return p.ID == deadA && p.Name == "n1" }) {
		t.Fatalf("processes with calls = %+v, %v", procs, err)
	}
	if _, err := b.InterruptCalls(context.Background(), b.NodeID()); err == nil {
		t.Fatal("a process swept its own live calls")
	}
	ended, err := b.InterruptCalls(context.Background(), deadA)
	if err != nil || ended != 2 {
		t.Fatalf("InterruptCalls = %d, %v; want 2 (a3 had ended)", ended, err)
	}
	for _, id := range []string{"a1", "a2"} {
		rec := stored(t, b, id)
		if rec.State != "ended" || rec.Disposition != string(DispositionInterrupted) || rec.EndedBy != "node" {
			t.Fatalf("%s after the sweep: %+v", id, rec)
		}
	}
	if rec := stored(t, b, "a3"); rec.Disposition != "completed" {
		t.Fatalf("the sweep overwrote a3: %+v", rec)
	}
	if procs, _ := b.CallProcesses(context.Background()); len(procs) != 1 || procs[0].ID != b.NodeID() {
		t.Fatalf("processes with calls after the sweep = %+v; want only b's", procs)
	}
	if again, err := b.InterruptCalls(context.Background(), deadA); err != nil || again != 0 {
		t.Fatalf("a second sweep ended %d (%v)", again, err)
	}
	if len(hb.ids()) != 0 || stored(t, b, "b1").State != "active" || b.LiveCalls() != 1 {
		t.Fatal("the sweep touched the sweeper's own call or hung up a call it never carried")
	}
	waitFor(t, "the swept calls' activations to stop", func() bool { return len(b.Activations(KindCall)) == 1 })
}

// TestCall_EndLiveCallsAtShutdown: a drain ends the calls still up with
// disposition interrupted and tells the edge to hang each up; no call
// starts after it, and the process leaves no index behind.
func TestCall_EndLiveCallsAtShutdown(t *testing.T) {
	s, _, h := callSystem(t, persistence.NewMemory(), nil)
	for _, id := range []string{"x", "y", "z"} {
		startCallOn(t, s, id)
	}
	if err := s.EndLiveCalls(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"x", "y", "z"} {
		if rec := stored(t, s, id); rec.State != "ended" || rec.Disposition != string(DispositionInterrupted) || rec.EndedBy != "node" {
			t.Fatalf("%s after the drain: %+v", id, rec)
		}
	}
	if got := h.ids(); !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("hung up %v", got)
	}
	if procs, _ := s.CallProcesses(context.Background()); s.LiveCalls() != 0 || len(procs) != 0 {
		t.Fatalf("after the drain: %d live calls, processes with calls %+v", s.LiveCalls(), procs)
	}
	if r := callReq(t, s, "late", &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme"}}); code(r.Error) != actorpb.Code_CODE_UNAVAILABLE {
		t.Fatalf("a call started during shutdown: %+v", r.Error)
	}
}

// TestCall_HoldEndsATestCall: a call started with hold_ms ends completed
// once the hold passed by the node's clock.
func TestCall_HoldEndsATestCall(t *testing.T) {
	s, clk, h := callSystem(t, persistence.NewMemory(), nil)
	if r := callReq(t, s, "held", &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme"}, HoldMs: 30_000}); r.Error != nil {
		t.Fatal(r.Error)
	}
	clk.Advance(29 * time.Second)
	fire(t, s, "held")
	if stored(t, s, "held").State != "active" {
		t.Fatal("ended before its hold")
	}
	clk.Advance(time.Second)
	fire(t, s, "held")
	if rec := stored(t, s, "held"); rec.State != "ended" || rec.Disposition != "completed" || rec.DurationMs != 30_000 {
		t.Fatalf("after the hold: %+v", rec)
	}
	if len(h.ids()) != 0 {
		t.Fatal("a completed test call was hung up")
	}
}

func TestCallTimers_DueInOrderReplacedSkipped(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ct := newCallTimers()
	ct.set("b", t0.Add(2*time.Second))
	ct.set("a", t0.Add(time.Second))
	ct.set("c", t0.Add(3*time.Second))
	ct.set("c", t0.Add(10*time.Second)) // refreshed
	ct.set("b", time.Time{})            // ended
	if got := ct.due(t0.Add(5 * time.Second)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("due at 5 s = %v", got)
	}
	if got := ct.due(t0.Add(10 * time.Second)); !slices.Equal(got, []string{"c"}) || ct.len() != 0 {
		t.Fatalf("due at 10 s = %v, %d left", got, ct.len())
	}
}

// TestCall_GoneProcessCallWhoseDialogGoesOnIsAdopted: an answered call
// whose dialog runs between the parties' edges (its dialog stored with
// the answer; the caller's edge was another node) goes on when the
// process that carried it dies: the sweep of a survivor adopts it instead
// of interrupting it. It counts there, and its session expiry runs there:
// not refreshed, it ends expired and is hung up. A call never answered
// is interrupted as before.
func TestCall_GoneProcessCallWhoseDialogGoesOnIsAdopted(t *testing.T) {
	store := persistence.NewMemory()
	a, _, _ := callSystem(t, store, nil)
	b, clk, hb := callSystem(t, store, func(c *Config) { c.Node = "n2" })
	if r := callReq(t, a, "x", &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "bob", EdgeNode: "n3"}}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if r := callReq(t, a, "x", &actorpb.AnswerCall{Target: "127.0.0.1:5062", SessionExpiresMs: 90_000, Dialog: &actorpb.CallDialog{CallId: "x", InviteCseq: 2}}); r.Error != nil {
		t.Fatal(r.Error)
	}
	startCallOn(t, a, "y")
	deadA := a.NodeID()
	_ = a.Close()
	ended, err := b.InterruptCalls(context.Background(), deadA)
	if err != nil || ended != 1 {
		t.Fatalf("InterruptCalls = %d, %v; want 1 (y; x is adopted)", ended, err)
	}
	if rec := stored(t, b, "y"); rec.Disposition != string(DispositionInterrupted) {
		t.Fatalf("the unanswered call after the sweep: %+v", rec)
	}
	rec := stored(t, b, "x")
	if rec.State != "active" || rec.NodeId != b.NodeID() || rec.Node != "n2" || rec.GetDialog().GetCallId() != "x" {
		t.Fatalf("the answered call after the sweep: %+v; want active, carried by b", rec)
	}
	if procs, _ := b.CallProcesses(context.Background()); b.LiveCalls() != 1 || len(procs) != 1 || procs[0].ID != b.NodeID() {
		t.Fatalf("after the adoption: %d live calls, processes with calls %+v; want x at b only", b.LiveCalls(), procs)
	}
	clk.Advance(91 * time.Second)
	fire(t, b, "x")
	if rec := stored(t, b, "x"); rec.State != "ended" || rec.Disposition != string(DispositionExpired) {
		t.Fatalf("the adopted call past its session: %+v; want expired", rec)
	}
	waitFor(t, "the edge to be told to hang the adopted call up", func() bool { return slices.Equal(hb.ids(), []string{"x"}) })
}
