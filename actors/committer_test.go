package actors

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// heldStore holds every write (Put, Delete, Batch) while held is set,
// and fails them while failing is set.
type heldStore struct {
	persistence.Store
	mu      sync.Mutex
	held    bool
	release chan struct{}
	failing atomic.Bool
	batches atomic.Int64 // batches that committed
}

var errStoreDown = errors.New("store down")

func newHeldStore() *heldStore {
	return &heldStore{Store: persistence.NewMemory(), release: make(chan struct{})}
}

func (h *heldStore) hold() {
	h.mu.Lock()
	h.held, h.release = true, make(chan struct{})
	h.mu.Unlock()
}

func (h *heldStore) unhold() {
	h.mu.Lock()
	if h.held {
		h.held = false
		close(h.release)
	}
	h.mu.Unlock()
}

func (h *heldStore) wait(ctx context.Context) error {
	h.mu.Lock()
	held, ch := h.held, h.release
	h.mu.Unlock()
	if held {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if h.failing.Load() {
		return errStoreDown
	}
	return nil
}

func (h *heldStore) Put(ctx context.Context, k string, v []byte, e uint64) (uint64, error) {
	if err := h.wait(ctx); err != nil {
		return 0, err
	}
	return h.Store.Put(ctx, k, v, e)
}

func (h *heldStore) Delete(ctx context.Context, k string, e uint64) error {
	if err := h.wait(ctx); err != nil {
		return err
	}
	return h.Store.Delete(ctx, k, e)
}

func (h *heldStore) Batch(ctx context.Context, ws []persistence.Write) ([]persistence.WriteResult, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	res, err := h.Store.Batch(ctx, ws)
	if err == nil {
		h.batches.Add(1)
	}
	return res, err
}

func inStore(t *testing.T, st persistence.Store, key string) bool {
	t.Helper()
	_, err := st.Get(context.Background(), key)
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestCall_RepliesBeforeItsRecordIsDurable: with the store holding every
// write, a call starts, is answered and ends (the SIP edge waits for
// these replies); reads see its latest record meanwhile, and its
// activation stays (the record's only writer) until the record is
// durable, then stops.
func TestCall_RepliesBeforeItsRecordIsDurable(t *testing.T) {
	st := newHeldStore()
	// An interval that never runs out: the test says when to flush.
	s, clk, _ := callSystem(t, st, func(c *Config) { c.RecordFlushInterval = time.Hour })
	t.Cleanup(st.unhold)
	st.hold()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	steps := []struct {
		name string
		msg  proto.Message
	}{
		{"start", &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "bob"}}},
		{"answer", &actorpb.AnswerCall{Target: "192.0.2.9:5060"}},
		{"end", &actorpb.EndCall{Status: 200, EndedBy: "caller", Disposition: "completed"}},
	}
	for _, step := range steps {
		clk.Advance(time.Second)
		rep, err := s.Request(ctx, KindCall, "c1", step.msg)
		if err != nil {
			t.Fatalf("%s waited for the store: %v", step.name, err)
		}
		if r := rep.(*actorpb.CallReply); r.Error != nil {
			t.Fatalf("%s: %v", step.name, r.Error)
		}
	}
	rec, live, err := s.ReadCall(ctx, "c1")
	if err != nil || live || rec.GetState() != "ended" || rec.GetDurationMs() != 1000 {
		t.Fatalf("ReadCall while the record is pending = %+v, live %v, %v; want the ended record", rec, live, err)
	}
	if pending, ok, err := s.pendingCall("c1"); !ok || err != nil || pending.GetState() != "ended" {
		t.Fatalf("pending record = %+v, %v, %v", pending, ok, err)
	}
	if inStore(t, st.Store, callKey("c1")) {
		t.Fatal("the record reached the store while it held every write")
	}
	if n := len(s.Activations(KindCall)); n != 1 {
		t.Fatalf("%d call activations while the record is pending; want 1 (it stays its only writer)", n)
	}
	st.unhold()
	rec = stored(t, s, "c1") // flushes
	if rec.GetState() != "ended" || rec.GetDurationMs() != 1000 {
		t.Fatalf("stored record = %+v", rec)
	}
	waitFor(t, "the ended call's activation to stop once its record is durable", func() bool {
		return len(s.Activations(KindCall)) == 0
	})
	if inStore(t, st.Store, liveCallKey(s.NodeID(), "c1")) || !inStore(t, st.Store, userCallKey("acme", "alice", rec.StartedAt.AsTime(), "c1")) {
		t.Fatal("the index entries did not follow the record")
	}
	// Start, answer and end of one call queued together: one commit
	// carried them (the live-call entry and the caller's and callee's
	// recent-calls entries with the record).
	if n := st.batches.Load(); n != 1 {
		t.Fatalf("%d batches committed the call; want 1", n)
	}
}

// TestCall_DurableStartRepliesOnceStored: a start that a client is told of
// (StartCall.durable, POST /v1/calls) replies only once the record is in
// the store, however long the committer's interval; a retried one too. A
// start without it (the SIP edge's) leaves its record queued.
func TestCall_DurableStartRepliesOnceStored(t *testing.T) {
	st := persistence.NewMemory()
	s, _, _ := callSystem(t, st, func(c *Config) { c.RecordFlushInterval = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := func(id string, durable bool) {
		t.Helper()
		rep, err := s.Request(ctx, KindCall, id, &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "bob"}, Durable: durable})
		if err != nil || rep.(*actorpb.CallReply).Error != nil {
			t.Fatalf("start %s (durable %v): %v %v", id, durable, rep, err)
		}
	}
	start("queued", false)
	if inStore(t, st, callKey("queued")) {
		t.Fatal("a start without durable waited for the store")
	}
	start("queued", true) // a retried start, now one a client is told of
	start("told", true)
	for _, id := range []string{"queued", "told"} {
		if !inStore(t, st, callKey(id)) {
			t.Fatalf("call %s replied durable before its record was in the store", id)
		}
	}
}

// TestCall_RecordsQueuedAtCloseAreWritten: a clean shutdown writes every
// record the committer holds, however long its interval.
func TestCall_RecordsQueuedAtCloseAreWritten(t *testing.T) {
	st := persistence.NewMemory()
	s, _, _ := callSystem(t, st, func(c *Config) { c.RecordFlushInterval = time.Hour })
	startCallOn(t, s, "c1")
	startCallOn(t, s, "c2")
	if r := callReq(t, s, "c2", &actorpb.EndCall{Status: 486, EndedBy: "callee", Disposition: "busy"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if inStore(t, st, callKey("c1")) {
		t.Fatal("a record was written before the hour-long interval or a close")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, id := range []string{"c1", "c2"} {
		cur, err := loadOne[*actorpb.CallRecord](context.Background(), st, callKey(id))
		if err != nil || cur == nil {
			t.Fatalf("record %s after a clean shutdown: %v, %v", id, cur, err)
		}
		got[id] = cur.rec.State
	}
	if got["c1"] != "active" || got["c2"] != "ended" || !inStore(t, st, liveCallKey(s.NodeID(), "c1")) || inStore(t, st, liveCallKey(s.NodeID(), "c2")) {
		t.Fatalf("after close: states %v; the index of active calls must hold c1 only", got)
	}
}

// lockedBuffer is a log sink for tests.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCall_StoreFailureIsLoggedAndRetried: a failing store neither fails
// the call nor drops its record: the failure is logged, the record stays
// readable, and it is written once the store is back.
func TestCall_StoreFailureIsLoggedAndRetried(t *testing.T) {
	st := newHeldStore()
	var logs lockedBuffer
	s, _, _ := callSystem(t, st, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	st.failing.Store(true)
	startCallOn(t, s, "c1")
	waitFor(t, "the failed commit to be logged", func() bool {
		return bytes.Contains([]byte(logs.String()), []byte("committing call records failed"))
	})
	if rec, _, err := s.ReadCall(context.Background(), "c1"); err != nil || rec.GetState() != "active" {
		t.Fatalf("ReadCall while the store fails = %+v, %v", rec, err)
	}
	st.failing.Store(false)
	waitFor(t, "the record to be written once the store is back", func() bool { return inStore(t, st.Store, callKey("c1")) })
	if !inStore(t, st.Store, liveCallKey(s.NodeID(), "c1")) {
		t.Fatal("the live-call entry was dropped")
	}
}

// recordingStore remembers, per key, the values its batches committed,
// in commit order.
type recordingStore struct {
	persistence.Store
	mu     sync.Mutex
	values map[string][]string
}

func (r *recordingStore) Batch(ctx context.Context, ws []persistence.Write) ([]persistence.WriteResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, err := r.Store.Batch(ctx, ws)
	if err == nil {
		for i, w := range ws {
			if res[i].Err == nil {
				r.values[w.Key] = append(r.values[w.Key], string(w.Value))
			}
		}
	}
	return res, err
}

// TestCommitter_KeyOrderAndCompareAndSet: a writer's states of a key are
// committed in the order written (coalesced, never reordered), each by
// compare-and-set on the version the previous commit got; a write behind
// which another process changed the key loses, changes nothing, and is
// reported to its owner.
func TestCommitter_KeyOrderAndCompareAndSet(t *testing.T) {
	st := &recordingStore{Store: persistence.NewMemory(), values: map[string][]string{}}
	w, err := newCommitter(st, slog.New(slog.DiscardHandler), time.Millisecond, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	const n = 3000
	var ck, other *commitKey
	for i := 1; i <= n; i++ {
		ck, _ = w.put(context.Background(), ck, persistence.Write{Key: "k", Value: []byte(strconv.Itoa(i)), Expect: persistence.MustNotExist})
		other, _ = w.put(context.Background(), other, persistence.Write{Key: "j", Value: []byte(strconv.Itoa(i)), Expect: persistence.AnyVersion})
	}
	if err := w.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.failed(ck); err != nil {
		t.Fatalf("a single writer's chain of compare-and-sets failed: %v", err)
	}
	st.mu.Lock()
	committed := st.values["k"]
	st.mu.Unlock()
	last := 0
	for _, v := range committed {
		i, _ := strconv.Atoi(v)
		if i <= last {
			t.Fatalf("state %d committed after state %d: %v", i, last, committed)
		}
		last = i
	}
	if last != n || len(committed) >= n {
		t.Fatalf("%d commits of %d states, the last %d; want fewer commits (coalesced) ending at %d", len(committed), n, last, n)
	}
	it, err := st.Get(context.Background(), "k")
	if err != nil || string(it.Value) != strconv.Itoa(n) {
		t.Fatalf("stored k = %q, %v", it.Value, err)
	}

	// Another process writes k behind the committer.
	if _, err := st.Store.Put(context.Background(), "k", []byte("theirs"), persistence.AnyVersion); err != nil {
		t.Fatal(err)
	}
	ck, _ = w.put(context.Background(), ck, persistence.Write{Key: "k", Value: []byte("mine")})
	if err := w.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.failed(ck); !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("failed after a lost compare-and-set = %v; want ErrConflict", err)
	}
	if it, _ := st.Get(context.Background(), "k"); string(it.Value) != "theirs" {
		t.Fatalf("the losing write changed the key: %q", it.Value)
	}
}
