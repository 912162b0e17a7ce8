package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/events"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// Two nodes append to one account at once (issue 11, section 4: "each
// event has a per-account sequence"): every acknowledged event is in the
// stream exactly once, sequences are 1..N without a gap, each appender's
// events keep their order, and a subscriber on either node sees the
// other's appends live.
func TestAppend_TwoNodesConcurrently_GapFreeOrderedAndSeenAcrossNodes(t *testing.T) {
	for _, eng := range engines(t) {
		t.Run(eng.name, func(t *testing.T) {
			storeA, storeB := eng.open(t), eng.open(t)
			a := testAccount(t, storeA)
			nodeA := newStream(t, storeA, "a", nil)
			nodeB := newStream(t, storeB, "b", nil)
			const writers, each = 4, 25
			total := 2 * writers * each

			// Subscribed before any append: the live path, across nodes.
			liveOnA, err := nodeA.Subscribe(t.Context(), a, 0, events.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			defer liveOnA.Close()
			liveOnB, err := nodeB.Subscribe(t.Context(), a, 0, events.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			defer liveOnB.Close()

			var mu sync.Mutex
			acked := make(map[string]events.Event)
			var wg sync.WaitGroup
			for w := range 2 * writers {
				node := nodeA
				if w%2 == 1 {
					node = nodeB
				}
				wg.Go(func() {
					for i := range each {
						data, _ := json.Marshal(map[string]int{"writer": w, "i": i})
						e, err := node.Append(t.Context(), a, events.Event{Type: "test.append", Data: data})
						if err != nil {
							t.Errorf("writer %d append %d: %v", w, i, err)
							return
						}
						mu.Lock()
						acked[e.ID] = e
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if len(acked) != total {
				t.Fatalf("%d appends acknowledged, want %d", len(acked), total)
			}

			check := func(name string, got []events.Event) {
				t.Helper()
				last := map[int]int{}
				for i, e := range got {
					if e.Seq != uint64(i+1) {
						t.Fatalf("%s: event %d has seq %d, want %d (a gap or a reorder)", name, i, e.Seq, i+1)
					}
					if ack, ok := acked[e.ID]; !ok || ack.Seq != e.Seq {
						t.Fatalf("%s: seq %d id %s was not acknowledged with that seq (ack %+v)", name, e.Seq, e.ID, ack)
					}
					var d struct{ Writer, I int }
					if err := json.Unmarshal(e.Data, &d); err != nil {
						t.Fatal(err)
					}
					if prev, ok := last[d.Writer]; ok && d.I != prev+1 || !ok && d.I != 0 {
						t.Fatalf("%s: writer %d's event %d follows its event %d", name, d.Writer, d.I, prev)
					}
					last[d.Writer] = d.I
				}
			}
			check("live on node a", read(t, liveOnA, total))
			check("live on node b", read(t, liveOnB, total))
			backlog, err := nodeB.Subscribe(t.Context(), a, 0, events.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			defer backlog.Close()
			check("backlog on node b", read(t, backlog, total))
		})
	}
}

// "Last-Event-ID resumes with nothing lost or reordered" (issue 11,
// section 4): a subscriber that read part of the stream and went away
// resumes after the last id it saw and gets the rest, including what was
// appended while it was away.
func TestSubscribe_ResumeAfterDisconnect_NothingLost(t *testing.T) {
	for _, eng := range engines(t) {
		t.Run(eng.name, func(t *testing.T) {
			store := eng.open(t)
			a := testAccount(t, store)
			s := newStream(t, store, "n", nil)
			appendN(t, s, a, 5)
			sub, err := s.Subscribe(t.Context(), a, 0, events.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			got := read(t, sub, 3)
			sub.Close()
			lastID := got[2].Seq
			appendN(t, s, a, 4)
			sub, err = s.Subscribe(t.Context(), a, lastID, events.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			for i, e := range read(t, sub, 6) {
				if want := lastID + 1 + uint64(i); e.Seq != want {
					t.Fatalf("resumed event %d has seq %d, want %d", i, e.Seq, want)
				}
			}
		})
	}
}

func appendN(t *testing.T, s *events.Stream, account string, n int) []events.Event {
	t.Helper()
	out := make([]events.Event, n)
	for i := range n {
		e, err := s.Append(t.Context(), account, events.Event{Type: "test.n", User: fmt.Sprintf("u%d", i%2)})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = e
	}
	return out
}

// Filters on type (by prefix), user and call (issue 11, section 4) select
// events and still advance the cursor past the others.
func TestSubscribe_FiltersByTypePrefixUserAndCall(t *testing.T) {
	store := persistence.NewMemory()
	s := newStream(t, store, "n", nil)
	for _, e := range []events.Event{
		{Type: "fraud.incident.opened", User: "alice"},
		{Type: "call.ringing", User: "alice", Call: "c1"},
		{Type: "call.ringing", User: "bob", Call: "c2"},
		{Type: "context.changed", User: "bob", Call: "c2"},
		{Type: "fraud.action", User: "bob"},
	} {
		if _, err := s.Append(t.Context(), "acme", e); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		filter events.Filter
		want   []uint64
	}{
		{"all", events.Filter{}, []uint64{1, 2, 3, 4, 5}},
		{"type prefix", events.Filter{Types: []string{"fraud."}}, []uint64{1, 5}},
		{"two types", events.Filter{Types: []string{"call.ringing", "context."}}, []uint64{2, 3, 4}},
		{"user", events.Filter{User: "bob"}, []uint64{3, 4, 5}},
		{"call and type", events.Filter{Call: "c2", Types: []string{"context."}}, []uint64{4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := s.Subscribe(t.Context(), "acme", 0, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			for i, e := range read(t, sub, len(tc.want)) {
				if e.Seq != tc.want[i] {
					t.Fatalf("event %d: seq %d, want %d", i, e.Seq, tc.want[i])
				}
			}
			if sub.Cursor() < tc.want[len(tc.want)-1] {
				t.Fatalf("cursor %d", sub.Cursor())
			}
		})
	}
}

// "Past [the retention window], the stream says so" (issue 11, section 4):
// a resume point whose successors were pruned gets a ResetError naming
// where the stream goes on, then the events kept; one past the end of the
// stream is reported too.
func TestSubscribe_PastRetention_ReportsResetThenContinues(t *testing.T) {
	store := persistence.NewMemory()
	clk := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	s := newStream(t, store, "n", func(c *events.Config) { c.Clock = clk })
	appendN(t, s, "acme", 3)
	clk.Advance(25 * time.Hour)
	appendN(t, s, "acme", 2)
	n, err := s.Prune(t.Context(), "acme")
	if err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v; want the 3 old events", n, err)
	}

	sub, err := s.Subscribe(t.Context(), "acme", 1, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r := nextReset(t, sub)
	if r.After != 1 || r.Next != 4 || r.Reason != events.ResetExpired {
		t.Fatalf("reset %+v, want after 1, next 4, expired", r)
	}
	if got := read(t, sub, 2); got[0].Seq != 4 || got[1].Seq != 5 {
		t.Fatalf("after the reset: %d, %d; want 4, 5", got[0].Seq, got[1].Seq)
	}

	// Resuming at the last pruned event loses nothing: no reset.
	sub2, err := s.Subscribe(t.Context(), "acme", 3, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	if got := read(t, sub2, 1); got[0].Seq != 4 {
		t.Fatalf("resume after 3: seq %d", got[0].Seq)
	}

	ahead, err := s.Subscribe(t.Context(), "acme", 99, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer ahead.Close()
	if r := nextReset(t, ahead); r.Reason != events.ResetAhead || r.Next != 6 {
		t.Fatalf("reset %+v, want ahead, next 6", r)
	}
}

// The last event is never pruned, and pruning deletes only what is older
// than the window.
func TestPrune_KeepsTheWindowAndTheLastEvent(t *testing.T) {
	store := persistence.NewMemory()
	clk := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	s := newStream(t, store, "n", func(c *events.Config) { c.Clock = clk })
	appendN(t, s, "acme", 2)
	clk.Advance(23 * time.Hour)
	if n, _ := s.Prune(t.Context(), "acme"); n != 0 {
		t.Fatalf("pruned %d events inside the window", n)
	}
	clk.Advance(2 * time.Hour)
	if n, _ := s.Prune(t.Context(), "acme"); n != 1 {
		t.Fatalf("pruned %d events, want 1 (never the last)", n)
	}
	sub, err := s.Subscribe(t.Context(), "acme", 0, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if r := nextReset(t, sub); r.Next != 2 {
		t.Fatalf("reset %+v", r)
	}
	if got := read(t, sub, 1); got[0].Seq != 2 {
		t.Fatalf("seq %d", got[0].Seq)
	}
}

// An appender that dies between writing the head and writing the event's
// log slot leaves the event in the head only: subscribers still get it,
// and the next append (on another node) copies it to its slot before
// moving on, so no gap appears.
func TestAppend_AppenderDiedBeforeItsSlot_NoGap(t *testing.T) {
	store := persistence.NewMemory()
	s := newStream(t, store, "n", nil)
	appendN(t, s, "acme", 2)
	// What a dead appender leaves: head at 3, no slot 3.
	it, err := store.Get(t.Context(), "evhead/acme")
	if err != nil {
		t.Fatal(err)
	}
	orphan := events.Event{Seq: 3, Account: "acme", Type: "test.orphan", ID: "orphan", Time: time.Now().UTC()}
	raw, _ := json.Marshal(orphan)
	if _, err := store.Put(t.Context(), "evhead/acme", raw, it.Version); err != nil {
		t.Fatal(err)
	}
	other := newStream(t, store, "other", nil)
	sub, err := other.Subscribe(t.Context(), "acme", 2, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got := read(t, sub, 1); got[0].ID != "orphan" {
		t.Fatalf("got %+v, want the orphan from the head", got[0])
	}
	e, err := other.Append(t.Context(), "acme", events.Event{Type: "test.after"})
	if err != nil || e.Seq != 4 {
		t.Fatalf("Append = %d, %v; want seq 4", e.Seq, err)
	}
	if _, err := store.Get(t.Context(), "evlog/acme/00000000000000000003"); err != nil {
		t.Fatalf("slot 3 was not written before the head moved on: %v", err)
	}
	all, err := other.Subscribe(t.Context(), "acme", 0, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	for i, e := range read(t, all, 4) {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

func TestAppend_BadInput(t *testing.T) {
	s := newStream(t, persistence.NewMemory(), "n", nil)
	tests := []struct {
		name    string
		account string
		e       events.Event
		want    error
	}{
		{"empty account", "", events.Event{Type: "a"}, events.ErrInvalid},
		{"slash in account", "a/b", events.Event{Type: "a"}, events.ErrInvalid},
		{"empty type", "acme", events.Event{}, events.ErrInvalid},
		{"newline in type", "acme", events.Event{Type: "call\nevent: x"}, events.ErrInvalid},
		{"upper-case type", "acme", events.Event{Type: "Call.Ringing"}, events.ErrInvalid},
		{"control in user", "acme", events.Event{Type: "a", User: "x\r"}, events.ErrInvalid},
		{"data not JSON", "acme", events.Event{Type: "a", Data: json.RawMessage("{")}, events.ErrInvalid},
		{"too large", "acme", events.Event{Type: "a", Data: json.RawMessage(`"` + string(make([]byte, 300<<10)) + `"`)}, events.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Append(t.Context(), tc.account, tc.e); !errors.Is(err, tc.want) && !errors.Is(err, events.ErrTooLarge) {
				t.Fatalf("Append = %v, want %v", err, tc.want)
			}
		})
	}
	if h, _ := s.Head(t.Context(), "acme"); h.Seq != 0 {
		t.Fatalf("a refused event was appended: head %d", h.Seq)
	}
}

// Close ends a waiting subscription with ErrClosed, so that a node's SSE
// responses end before its HTTP server shuts down.
func TestClose_EndsWaitingSubscriptions(t *testing.T) {
	s := newStream(t, persistence.NewMemory(), "n", nil)
	sub, err := s.Subscribe(t.Context(), "acme", 0, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := sub.Next(t.Context()); done <- err }()
	_ = s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, events.ErrClosed) {
			t.Fatalf("Next = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	if _, err := s.Subscribe(t.Context(), "acme", 0, events.Filter{}); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	ok := events.DefaultConfig()
	ok.Store = persistence.NewMemory()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults with a store: %v", err)
	}
	for name, edit := range map[string]func(*events.Config){
		"no store":           func(c *events.Config) { c.Store = nil },
		"zero retention":     func(c *events.Config) { c.Retention = 0 },
		"zero poll":          func(c *events.Config) { c.PollInterval = 0 },
		"lease under a post": func(c *events.Config) { c.Webhook.LeaseTTL = c.Webhook.Timeout },
		"backoff inverted":   func(c *events.Config) { c.Webhook.MaxBackoff = c.Webhook.FirstBackoff / 2 },
	} {
		c := ok
		edit(&c)
		if c.Validate() == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

// A batch takes consecutive sequence numbers for two store writes, and
// readers see every event; a batch whose appender died before its slots
// is read from the head, and the next append copies it into the log.
func TestAppendBatch_OneHeadWriteAndNoGapWhenItsSlotsAreMissing(t *testing.T) {
	store := persistence.NewMemory()
	s := newStream(t, store, "n", nil)
	appendN(t, s, "acme", 2)
	batch := []events.Event{{Type: "test.b1"}, {Type: "test.b2"}, {Type: "test.b3"}}
	out, err := s.AppendBatch(t.Context(), "acme", batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range out {
		if e.Seq != uint64(3+i) || e.Account != "acme" || e.ID == "" {
			t.Fatalf("batch event %d = %+v, want seq %d with account and id", i, e, 3+i)
		}
	}
	// What a dead appender leaves: its batch in the head, no slots.
	for seq := 3; seq <= 5; seq++ {
		if err := store.Delete(t.Context(), fmt.Sprintf("evlog/acme/%020d", seq), persistence.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	other := newStream(t, store, "other", nil)
	sub, err := other.Subscribe(t.Context(), "acme", 1, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := read(t, sub, 4)
	for i, e := range got {
		if e.Seq != uint64(2+i) {
			t.Fatalf("read %d has seq %d, want %d: %+v", i, e.Seq, 2+i, got)
		}
	}
	if got[1].Type != "test.b1" || got[3].Type != "test.b3" {
		t.Fatalf("the batch read from the head: %+v", got[1:])
	}
	if e, err := other.Append(t.Context(), "acme", events.Event{Type: "test.after"}); err != nil || e.Seq != 6 {
		t.Fatalf("Append = %d, %v; want seq 6", e.Seq, err)
	}
	for seq := 3; seq <= 5; seq++ {
		if _, err := store.Get(t.Context(), fmt.Sprintf("evlog/acme/%020d", seq)); err != nil {
			t.Fatalf("slot %d was not written before the head moved on: %v", seq, err)
		}
	}
}

// Batches from two nodes interleave gap-free, each batch's events
// consecutive.
func TestAppendBatch_TwoNodesInterleaveGapFree(t *testing.T) {
	store := persistence.NewMemory()
	nodes := []*events.Stream{newStream(t, store, "a", nil), newStream(t, store, "b", nil)}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 10 {
				b := make([]events.Event, 1+(w+i)%4)
				for j := range b {
					b[j] = events.Event{Type: "test.batch", Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d,"j":%d}`, w, i, j))}
				}
				out, err := nodes[w%2].AppendBatch(t.Context(), "acme", b)
				if err != nil {
					t.Errorf("writer %d batch %d: %v", w, i, err)
					return
				}
				for j := 1; j < len(out); j++ {
					if out[j].Seq != out[j-1].Seq+1 {
						t.Errorf("a batch's events are not consecutive: %d then %d", out[j-1].Seq, out[j].Seq)
					}
				}
			}
		})
	}
	wg.Wait()
	h, err := nodes[0].Head(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nodes[1].Subscribe(t.Context(), "acme", 0, events.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i, e := range read(t, sub, int(h.Seq)) {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}
