package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// writeCounter is a store that counts the writes it passes on: puts,
// deletes and the bytes (keys and values) they carry.
type writeCounter struct {
	persistence.Store
	mu                   sync.Mutex
	puts, deletes, bytes int
}

func (w *writeCounter) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	w.mu.Lock()
	w.puts++
	w.bytes += len(key) + len(value)
	w.mu.Unlock()
	return w.Store.Put(ctx, key, value, expect)
}

func (w *writeCounter) Delete(ctx context.Context, key string, expect uint64) error {
	w.mu.Lock()
	w.deletes++
	w.bytes += len(key)
	w.mu.Unlock()
	return w.Store.Delete(ctx, key, expect)
}

// during returns the writes fn made.
func (w *writeCounter) during(fn func()) (puts, deletes, bytes int) {
	w.mu.Lock()
	p0, d0, b0 := w.puts, w.deletes, w.bytes
	w.mu.Unlock()
	fn()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.puts - p0, w.deletes - d0, w.bytes - b0
}

// A REGISTER writes its device's bindings and nothing else: the same
// store writes, byte for byte, in a group of 5 devices as in a group of
// 2,000 where every device is registered; so do a refresh, an
// unregister and a device leaving the group, and a lookup writes nothing.
func TestRegister_StoreWritesDoNotGrowWithTheGroup(t *testing.T) {
	store := &writeCounter{Store: persistence.NewMemory()}
	s := newSystem(t, store, nil)
	// Two accounts with ids of one length, so that their keys are too.
	sizes := map[string]int{"small": 5, "large": 2000}
	for acct, n := range sizes {
		devices := make([]string, n)
		for i := range devices {
			devices[i] = fmt.Sprintf("d%04d", i)
		}
		provision(t, s, acct, "hq", devices...)
		for _, d := range devices {
			rep := ask[*actorpb.RegisterReply](t, s, KindDeviceGroup, acct+"/hq", reg(d, "c-"+d, 1, contact("sip:"+d+"@192.0.2.7", 3600)))
			if rep.Error != nil {
				t.Fatal(rep.Error)
			}
		}
	}
	type writes struct{ puts, deletes, bytes int }
	measure := func(acct string, msg func() any) writes {
		var w writes
		w.puts, w.deletes, w.bytes = store.during(func() {
			switch m := msg().(type) {
			case *actorpb.Register:
				if rep := ask[*actorpb.RegisterReply](t, s, KindDeviceGroup, acct+"/hq", m); rep.Error != nil {
					t.Fatal(rep.Error)
				}
			case *actorpb.LookupBindings:
				if rep := ask[*actorpb.RegisterReply](t, s, KindDeviceGroup, acct+"/hq", m); rep.Error != nil || len(rep.Bindings) != 1 {
					t.Fatalf("lookup: %+v", rep)
				}
			case *actorpb.DeleteDevice:
				if rep := ask[*actorpb.DeviceReply](t, s, KindAccount, acct, m); rep.Error != nil {
					t.Fatal(rep.Error)
				}
				// The group drops the device's bindings in the turn that
				// takes the account's notice.
				waitFor(t, "the group to take the notice", func() bool {
					return len(ask[*actorpb.GroupView](t, s, KindDeviceGroup, acct+"/hq", &actorpb.GetGroupView{}).Members) == sizes[acct]-1
				})
			}
		})
		return w
	}
	steps := []struct {
		name string
		msg  func() any
	}{
		{"refresh", func() any { return reg("d0001", "c-d0001", 2, contact("sip:d0001@192.0.2.7", 3600)) }},
		{"second contact", func() any { return reg("d0001", "c-d0001", 3, contact("sip:d0001@198.51.100.9", 3600)) }},
		{"unregister one contact", func() any { return reg("d0001", "c-d0001", 4, contact("sip:d0001@198.51.100.9", 0)) }},
		{"lookup", func() any { return &actorpb.LookupBindings{Device: "d0001"} }},
		{"unregister all", func() any { return &actorpb.Register{Device: "d0003", CallId: "c-d0003", Cseq: 2, RemoveAll: true} }},
		{"device leaves the group", func() any { return &actorpb.DeleteDevice{Device: "d0002"} }},
	}
	for _, st := range steps {
		small, large := measure("small", st.msg), measure("large", st.msg)
		if small != large {
			t.Errorf("%s: the group of 5 wrote %+v, the group of 2,000 %+v", st.name, small, large)
		}
		if st.name == "lookup" && small != (writes{}) {
			t.Errorf("a lookup wrote %+v", small)
		}
	}
}

// A group stored by an earlier version holds every device's bindings in
// its state record. Its first activation splits them into one record per
// device (members only, live only), keeps the rest of the state, and
// empties the state record's bindings; the registrar goes on from them.
func TestDeviceGroup_OlderStateRecordIsSplitIntoDeviceRecords(t *testing.T) {
	stores := map[string]func(t *testing.T) persistence.Store{
		"memory": func(*testing.T) persistence.Store { return persistence.NewMemory() },
		"badger": func(t *testing.T) persistence.Store {
			st, err := persistence.OpenBadger(t.TempDir(), persistence.DefaultBadgerConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) { testOlderStateRecordIsSplit(t, open(t)) })
	}
}

func testOlderStateRecordIsSplit(t *testing.T, store persistence.Store) {
	r := newRegistrar(t, store)
	now := r.clk.Now()
	first := timestamppb.New(now.Add(-24 * time.Hour))
	binding := func(device, uri string, cseq uint32, expiresIn time.Duration) *actorpb.Binding {
		return &actorpb.Binding{Device: device, Contact: uri, CallId: "c-" + device, Cseq: cseq, Source: "udp:192.0.2.7:5060",
			ExpiresAt: timestamppb.New(now.Add(expiresIn)), UpdatedAt: timestamppb.New(now.Add(-time.Minute)), QMilli: 500, EdgeNode: "n1", UserAgent: "phone/0"}
	}
	old := &actorpb.DeviceGroupState{Account: "acme", Group: "hq", FirstActivatedAt: first, Bindings: []*actorpb.Binding{
		binding("alice", "sip:alice@192.0.2.1", 7, time.Hour),
		binding("alice", "sip:alice@192.0.2.2", 7, time.Hour),
		binding("bob", "sip:bob@192.0.2.3", 3, time.Hour),
		binding("bob", "sip:bob@192.0.2.4", 3, -time.Second),  // expired
		binding("carol", "sip:carol@192.0.2.5", 1, time.Hour), // not a member of hq
	}}
	if _, err := putRecord(context.Background(), store, deviceGroupKey("acme", "hq"), old, persistence.MustNotExist); err != nil {
		t.Fatal(err)
	}
	want := "[alice>sip:alice@192.0.2.1 alice>sip:alice@192.0.2.2 bob>sip:bob@192.0.2.3]"
	if got := contacts(r.lookup("hq", "")); got != want {
		t.Fatalf("after the split the group has %s, want %s", got, want)
	}
	if got := contacts(r.stored("hq")); got != want { // stored fails if the state record still holds bindings
		t.Fatalf("after the split the store holds %s, want %s", got, want)
	}
	if got := r.stored("hq")[0]; !got.ExpiresAt.AsTime().Equal(now.Add(time.Hour)) || got.QMilli != 500 || got.UserAgent != "phone/0" || got.Cseq != 7 {
		t.Fatalf("a split binding changed: %+v", got)
	}
	v := ask[*actorpb.GroupView](t, r.s, KindDeviceGroup, "acme/hq", &actorpb.GetGroupView{})
	if !v.State.FirstActivatedAt.AsTime().Equal(first.AsTime()) || v.State.Account != "acme" || v.State.Group != "hq" {
		t.Fatalf("the state record changed: %+v", v.State)
	}
	// Step 7 goes on with the split bindings' CSeq.
	if rep := r.register("hq", reg("alice", "c-alice", 7, contact("sip:alice@192.0.2.1", 60))); code(rep.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("a replay after the split: %+v", rep.Error)
	}
	if rep := r.register("hq", reg("alice", "c-alice", 8, contact("sip:alice@192.0.2.1", 0))); rep.Error != nil || contacts(rep.Bindings) != "[alice>sip:alice@192.0.2.2]" {
		t.Fatalf("an unregister after the split: %+v", rep)
	}
	// Activated again, the group reads the device records alone.
	if err := r.s.PassivateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := contacts(r.lookup("hq", "")); got != "[alice>sip:alice@192.0.2.2 bob>sip:bob@192.0.2.3]" {
		t.Fatalf("after reactivation: %s", got)
	}
}

// A split cut short (the state record still holds the bindings, some
// devices have their records) is finished at the next activation; a
// device record written already is kept.
func TestDeviceGroup_SplitCutShortIsFinished(t *testing.T) {
	store := persistence.NewMemory()
	r := newRegistrar(t, store)
	now := r.clk.Now()
	b := func(device, uri string, cseq uint32) *actorpb.Binding {
		return &actorpb.Binding{Device: device, Contact: uri, CallId: "c-" + device, Cseq: cseq,
			ExpiresAt: timestamppb.New(now.Add(time.Hour)), UpdatedAt: timestamppb.New(now)}
	}
	old := &actorpb.DeviceGroupState{Account: "acme", Group: "hq", Bindings: []*actorpb.Binding{b("alice", "sip:old@192.0.2.1", 1), b("bob", "sip:bob@192.0.2.3", 1)}}
	ctx := context.Background()
	if _, err := putRecord(ctx, store, deviceGroupKey("acme", "hq"), old, persistence.MustNotExist); err != nil {
		t.Fatal(err)
	}
	done := &actorpb.DeviceGroupState{Bindings: []*actorpb.Binding{b("alice", "sip:new@192.0.2.2", 2)}}
	if _, err := putRecord(ctx, store, deviceBindingsKey("acme", "hq", "alice"), done, persistence.MustNotExist); err != nil {
		t.Fatal(err)
	}
	if got := contacts(r.lookup("hq", "")); got != "[alice>sip:new@192.0.2.2 bob>sip:bob@192.0.2.3]" {
		t.Fatalf("after finishing the split: %s", got)
	}
	if got := contacts(r.stored("hq")); got != "[alice>sip:new@192.0.2.2 bob>sip:bob@192.0.2.3]" {
		t.Fatalf("stored after finishing the split: %s", got)
	}
}

// Bindings records left by a deleted group (its delete removes the state
// record; devices removed while its actor was not active leave theirs)
// are not the bindings of a new group of that id: its first activation
// deletes them.
func TestDeviceGroup_LeftoverBindingsOfADeletedGroupAreDeleted(t *testing.T) {
	store := persistence.NewMemory()
	r := newRegistrar(t, store)
	left := &actorpb.DeviceGroupState{Bindings: []*actorpb.Binding{{Device: "dave", Contact: "sip:dave@192.0.2.1", CallId: "c1", Cseq: 1,
		ExpiresAt: timestamppb.New(r.clk.Now().Add(time.Hour)), UpdatedAt: timestamppb.New(r.clk.Now())}}}
	if _, err := putRecord(context.Background(), store, deviceBindingsKey("acme", "ops", "dave"), left, persistence.MustNotExist); err != nil {
		t.Fatal(err)
	}
	provision(t, r.s, "acme", "ops", "dave")
	if got := r.lookup("ops", "dave"); len(got) != 0 {
		t.Fatalf("a new group shows the bindings of an old one: %s", contacts(got))
	}
	if got := r.stored("ops"); len(got) != 0 {
		t.Fatalf("the old group's bindings are still stored: %s", contacts(got))
	}
}

// Pages walk the bindings in (device, contact) order from an index kept
// current by each write: a contact added or removed between two pages
// shows in the next one, and a device's page stops at its last binding.
func TestLookupBindings_PagesFollowWrites(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	r.register("hq", reg("bob", "b1", 1, contact("sip:b2@192.0.2.1", 3600), contact("sip:b1@192.0.2.1", 3600)))
	r.register("hq", reg("alice", "a1", 1, contact("sip:a1@192.0.2.1", 3600), contact("sip:a2@192.0.2.1", 3600)))
	page := func(m *actorpb.LookupBindings) (string, bool) {
		t.Helper()
		rep := ask[*actorpb.RegisterReply](t, r.s, KindDeviceGroup, "acme/hq", m)
		if rep.Error != nil {
			t.Fatal(rep.Error)
		}
		return contacts(rep.Bindings), rep.More
	}
	if got, more := page(&actorpb.LookupBindings{Limit: 3}); got != "[alice>sip:a1@192.0.2.1 alice>sip:a2@192.0.2.1 bob>sip:b1@192.0.2.1]" || !more {
		t.Fatalf("first page: %s, more %v", got, more)
	}
	// Between pages alice gains a contact before the cursor and bob loses
	// the one after it.
	r.register("hq", reg("alice", "a1", 2, contact("sip:a0@192.0.2.1", 3600)))
	r.register("hq", reg("bob", "b1", 2, contact("sip:b2@192.0.2.1", 0)))
	if got, more := page(&actorpb.LookupBindings{Limit: 3, AfterDevice: "bob", AfterContact: "sip:b1@192.0.2.1"}); got != "[]" || more {
		t.Fatalf("second page: %s, more %v", got, more)
	}
	if got, _ := page(&actorpb.LookupBindings{Limit: 10}); got != "[alice>sip:a0@192.0.2.1 alice>sip:a1@192.0.2.1 alice>sip:a2@192.0.2.1 bob>sip:b1@192.0.2.1]" {
		t.Fatalf("all bindings: %s", got)
	}
	if got, more := page(&actorpb.LookupBindings{Device: "alice", Limit: 2, AfterDevice: "alice", AfterContact: "sip:a0@192.0.2.1"}); got != "[alice>sip:a1@192.0.2.1 alice>sip:a2@192.0.2.1]" || more {
		t.Fatalf("alice's page: %s, more %v", got, more)
	}
	if got, more := page(&actorpb.LookupBindings{Device: "bob", Limit: 1}); got != "[bob>sip:b1@192.0.2.1]" || more {
		t.Fatalf("bob's page: %s, more %v", got, more)
	}
}

// Deleting a group deletes what its actor stored, bindings records of
// devices that left while it was not active included.
func TestDeviceGroup_DeletingTheGroupDeletesItsBindingsRecords(t *testing.T) {
	store := persistence.NewMemory()
	r := newRegistrar(t, store)
	provision(t, r.s, "acme", "ops")
	left := &actorpb.DeviceGroupState{Bindings: []*actorpb.Binding{{Device: "dave", Contact: "sip:dave@192.0.2.1", CallId: "c1", Cseq: 1,
		ExpiresAt: timestamppb.New(r.clk.Now().Add(time.Hour)), UpdatedAt: timestamppb.New(r.clk.Now())}}}
	if _, err := putRecord(context.Background(), store, deviceBindingsKey("acme", "ops", "dave"), left, persistence.MustNotExist); err != nil {
		t.Fatal(err)
	}
	if rep := ask[*actorpb.GroupReply](t, r.s, KindAccount, "acme", &actorpb.DeleteGroup{Group: "ops"}); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	items, err := persistence.ScanAll(context.Background(), store, deviceGroupKey("acme", "ops"))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 0 {
		t.Fatalf("a deleted group left %d records, the first %s", len(items), items[0].Key)
	}
}
