package actors

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// registrar is a system with account acme, group hq (alice, bob) and group
// sales (carol), on a fake clock.
type registrar struct {
	t   *testing.T
	s   *System
	clk *clock.Fake
}

func newRegistrar(t *testing.T, store persistence.Store) *registrar {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newSystem(t, store, func(c *Config) { c.Clock = clk })
	provision(t, s, "acme", "hq", "alice", "bob")
	provision(t, s, "acme", "sales", "carol")
	return &registrar{t: t, s: s, clk: clk}
}

func (r *registrar) register(group string, m *actorpb.Register) *actorpb.RegisterReply {
	r.t.Helper()
	return ask[*actorpb.RegisterReply](r.t, r.s, KindDeviceGroup, "acme/"+group, m)
}

func (r *registrar) lookup(group, device string) []*actorpb.Binding {
	r.t.Helper()
	rep := ask[*actorpb.RegisterReply](r.t, r.s, KindDeviceGroup, "acme/"+group, &actorpb.LookupBindings{Device: device})
	if rep.Error != nil {
		r.t.Fatalf("lookup %s/%s: %v", group, device, rep.Error)
	}
	return rep.Bindings
}

// stored reads the group's bindings from the store: its devices' records
// (the state record holds none), in SortBindings order.
func (r *registrar) stored(group string) []*actorpb.Binding {
	r.t.Helper()
	return storedBindings(r.t, r.s.cfg.Store, "acme", group)
}

func storedBindings(t testing.TB, store persistence.Store, account, group string) []*actorpb.Binding {
	t.Helper()
	ctx := context.Background()
	var all []*actorpb.Binding
	if it, err := store.Get(ctx, deviceGroupKey(account, group)); err == nil {
		var st actorpb.DeviceGroupState
		if err := proto.Unmarshal(it.Value, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Bindings) > 0 {
			t.Fatalf("the state record of group %s holds %d bindings", group, len(st.Bindings))
		}
	} else if !errors.Is(err, persistence.ErrNotFound) {
		t.Fatal(err)
	}
	items, err := persistence.ScanAll(ctx, store, deviceBindingsPrefix(account, group))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		var st actorpb.DeviceGroupState
		if err := proto.Unmarshal(it.Value, &st); err != nil {
			t.Fatal(err)
		}
		for _, b := range st.Bindings {
			if it.Key != deviceBindingsKey(account, group, b.Device) {
				t.Fatalf("record %s holds a binding of device %s", it.Key, b.Device)
			}
		}
		all = append(all, st.Bindings...)
	}
	SortBindings(all)
	return all
}

func reg(device, callID string, cseq uint32, contacts ...*actorpb.ContactUpdate) *actorpb.Register {
	return &actorpb.Register{Device: device, CallId: callID, Cseq: cseq, Contacts: contacts, Source: "udp:192.0.2.7:5060", EdgeNode: "n1", UserAgent: "phone/1"}
}

func contact(uri string, expires uint32) *actorpb.ContactUpdate {
	return &actorpb.ContactUpdate{Uri: uri, Expires: expires, QMilli: 1000}
}

func contacts(bs []*actorpb.Binding) string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Device+">"+b.Contact)
	}
	return fmt.Sprint(out)
}

// RFC 3261 section 10.3 step 8: a contact with expires > 0 is added or
// refreshed, one with expires 0 removed; the reply lists the device's
// bindings, stored before the reply.
func TestRegister_RFC3261_10_3_AddRefreshRemove(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	rep := r.register("hq", reg("alice", "c1", 1, contact("sip:alice@192.0.2.7", 3600)))
	if rep.Error != nil || len(rep.Bindings) != 1 {
		t.Fatalf("first REGISTER: %+v", rep)
	}
	b := rep.Bindings[0]
	if b.Source != "udp:192.0.2.7:5060" || b.EdgeNode != "n1" || b.UserAgent != "phone/1" || b.QMilli != 1000 || b.Cseq != 1 ||
		!b.ExpiresAt.AsTime().Equal(r.clk.Now().Add(time.Hour)) {
		t.Fatalf("binding: %+v", b)
	}
	if got := contacts(r.stored("hq")); got != "[alice>sip:alice@192.0.2.7]" {
		t.Fatalf("stored when the reply came: %s", got)
	}
	// A refresh 10 minutes later moves expires_at; a second contact adds.
	r.clk.Advance(10 * time.Minute)
	rep = r.register("hq", reg("alice", "c1", 2, contact("sip:alice@192.0.2.7", 600), contact("sip:alice@198.51.100.9", 3600)))
	if rep.Error != nil || len(rep.Bindings) != 2 {
		t.Fatalf("refresh: %+v", rep)
	}
	for _, b := range rep.Bindings {
		if b.Contact == "sip:alice@192.0.2.7" && !b.ExpiresAt.AsTime().Equal(r.clk.Now().Add(10*time.Minute)) {
			t.Fatalf("refreshed binding expires at %v", b.ExpiresAt.AsTime())
		}
	}
	// Bob's bindings are his own.
	r.register("hq", reg("bob", "b1", 1, contact("sip:bob@192.0.2.8", 3600)))
	if got := contacts(r.lookup("hq", "bob")); got != "[bob>sip:bob@192.0.2.8]" {
		t.Fatalf("bob: %s", got)
	}
	// Expires 0 removes that contact only.
	rep = r.register("hq", reg("alice", "c1", 3, contact("sip:alice@192.0.2.7", 0)))
	if got := contacts(rep.Bindings); got != "[alice>sip:alice@198.51.100.9]" {
		t.Fatalf("after removing one contact: %s", got)
	}
	// A REGISTER without contacts is a query: nothing changes.
	before := r.stored("hq")
	if rep := r.register("hq", reg("alice", "c1", 4)); rep.Error != nil || len(rep.Bindings) != 1 {
		t.Fatalf("query: %+v", rep)
	}
	if !sameBindings(before, r.stored("hq")) {
		t.Fatal("a query changed the stored bindings")
	}
}

// Every binding list is ordered most recently updated first.
func TestLookupBindings_MostRecentlyUpdatedFirst(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	r.register("hq", reg("alice", "a1", 1, contact("sip:a1@192.0.2.1", 3600)))
	r.clk.Advance(time.Second)
	r.register("hq", reg("bob", "b1", 1, contact("sip:b1@192.0.2.2", 3600)))
	r.clk.Advance(time.Second)
	r.register("hq", reg("alice", "a2", 1, contact("sip:a2@192.0.2.3", 3600)))
	if got := contacts(r.lookup("hq", "")); got != "[alice>sip:a2@192.0.2.3 bob>sip:b1@192.0.2.2 alice>sip:a1@192.0.2.1]" {
		t.Fatalf("all bindings: %s", got)
	}
	if got := contacts(r.lookup("hq", "alice")); got != "[alice>sip:a2@192.0.2.3 alice>sip:a1@192.0.2.1]" {
		t.Fatalf("alice: %s", got)
	}
	if rep := ask[*actorpb.RegisterReply](t, r.s, KindDeviceGroup, "acme/hq", &actorpb.LookupBindings{Device: "carol"}); code(rep.Error) != actorpb.Code_CODE_NOT_FOUND || rep.Error.Field != "device" {
		t.Fatalf("lookup of a device of another group: %+v", rep.Error)
	}
}

// RFC 3261 section 10.3 step 7: for a binding of the same Call-ID, a
// REGISTER whose CSeq is not higher than the binding's is refused, and
// nothing changes.
func TestRegister_RFC3261_10_3_Step7_ReplayedCSeqRefused(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	r.register("hq", reg("alice", "c1", 5, contact("sip:alice@192.0.2.7", 3600)))
	before := r.stored("hq")
	tests := []struct {
		name string
		m    *actorpb.Register
	}{
		{"same CSeq", reg("alice", "c1", 5, contact("sip:alice@192.0.2.7", 60))},
		{"lower CSeq", reg("alice", "c1", 4, contact("sip:alice@192.0.2.7", 0))},
		{"lower CSeq beside a new contact", reg("alice", "c1", 4, contact("sip:alice@198.51.100.9", 60), contact("sip:alice@192.0.2.7", 60))},
		{"remove all with a lower CSeq", &actorpb.Register{Device: "alice", CallId: "c1", Cseq: 3, RemoveAll: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := r.register("hq", tt.m)
			if code(rep.Error) != actorpb.Code_CODE_CONFLICT || rep.Error.Field != "cseq" {
				t.Fatalf("got %+v, want CONFLICT on cseq", rep.Error)
			}
		})
	}
	if !sameBindings(before, r.stored("hq")) {
		t.Fatal("a refused REGISTER changed the bindings")
	}
	// Another Call-ID (the phone restarted) may update the contact, CSeq
	// notwithstanding.
	if rep := r.register("hq", reg("alice", "c2", 1, contact("sip:alice@192.0.2.7", 60))); rep.Error != nil || rep.Bindings[0].CallId != "c2" {
		t.Fatalf("new Call-ID: %+v", rep)
	}
}

// Expired bindings are never returned; they stay stored until their
// device's next write, which purges them, and no other device's write
// touches them.
func TestRegister_ExpiredBindingsNeverReturnedAndPurgedOnTheirDevicesWrite(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	r.register("hq", reg("alice", "c1", 1, contact("sip:short@192.0.2.7", 60), contact("sip:long@192.0.2.7", 3600)))
	r.clk.Advance(59 * time.Second)
	if got := contacts(r.lookup("hq", "alice")); got != "[alice>sip:long@192.0.2.7 alice>sip:short@192.0.2.7]" {
		t.Fatalf("before expiry: %s", got)
	}
	r.clk.Advance(time.Second)
	if got := contacts(r.lookup("hq", "alice")); got != "[alice>sip:long@192.0.2.7]" {
		t.Fatalf("at expiry: %s", got)
	}
	v := ask[*actorpb.GroupView](t, r.s, KindDeviceGroup, "acme/hq", &actorpb.GetGroupView{})
	if got := contacts(v.State.Bindings); got != "[alice>sip:long@192.0.2.7]" {
		t.Fatalf("group view shows %s", got)
	}
	if page := ask[*actorpb.RegisterReply](t, r.s, KindDeviceGroup, "acme/hq", &actorpb.LookupBindings{Limit: 10}); contacts(page.Bindings) != "[alice>sip:long@192.0.2.7]" || page.More {
		t.Fatalf("a page shows %s (more: %v)", contacts(page.Bindings), page.More)
	}
	if len(r.stored("hq")) != 2 {
		t.Fatal("a read wrote")
	}
	r.register("hq", reg("bob", "b1", 1, contact("sip:bob@192.0.2.8", 3600)))
	if got := contacts(r.stored("hq")); got != "[bob>sip:bob@192.0.2.8 alice>sip:long@192.0.2.7 alice>sip:short@192.0.2.7]" {
		t.Fatalf("after bob's write the store holds %s", got)
	}
	// A query (no contacts) by alice stores her record without it.
	if rep := r.register("hq", reg("alice", "c1", 2)); rep.Error != nil || contacts(rep.Bindings) != "[alice>sip:long@192.0.2.7]" {
		t.Fatalf("alice's query: %+v", rep)
	}
	if got := contacts(r.stored("hq")); got != "[bob>sip:bob@192.0.2.8 alice>sip:long@192.0.2.7]" {
		t.Fatalf("after alice's write the store holds %s", got)
	}
}

func TestRegister_RemoveAllTakesOnlyThatDevicesBindings(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	r.register("hq", reg("alice", "c1", 1, contact("sip:a@192.0.2.1", 3600), contact("sip:a@192.0.2.2", 3600)))
	r.register("hq", reg("bob", "b1", 1, contact("sip:b@192.0.2.3", 3600)))
	rep := r.register("hq", &actorpb.Register{Device: "alice", CallId: "c1", Cseq: 2, RemoveAll: true})
	if rep.Error != nil || len(rep.Bindings) != 0 {
		t.Fatalf("remove all: %+v", rep)
	}
	if got := contacts(r.stored("hq")); got != "[bob>sip:b@192.0.2.3]" {
		t.Fatalf("stored after remove all: %s", got)
	}
	if rep := r.register("hq", &actorpb.Register{Device: "bob", CallId: "b1", Cseq: 2, RemoveAll: true, Contacts: []*actorpb.ContactUpdate{contact("sip:b@192.0.2.3", 0)}}); code(rep.Error) != actorpb.Code_CODE_INVALID {
		t.Fatalf("remove all with contacts: %+v", rep.Error)
	}
}

func TestRegister_AtMostTenBindingsPerDevice(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	var cs []*actorpb.ContactUpdate
	for i := range MaxBindingsPerDevice {
		cs = append(cs, contact(fmt.Sprintf("sip:alice@192.0.2.%d", i+1), 3600))
	}
	if rep := r.register("hq", reg("alice", "c1", 1, cs...)); rep.Error != nil || len(rep.Bindings) != MaxBindingsPerDevice {
		t.Fatalf("ten contacts: %+v", rep)
	}
	before := r.stored("hq")
	rep := r.register("hq", reg("alice", "c1", 2, contact("sip:alice@198.51.100.1", 3600)))
	if code(rep.Error) != actorpb.Code_CODE_INVALID || rep.Error.Field != "contacts" {
		t.Fatalf("an eleventh contact: %+v", rep.Error)
	}
	if !sameBindings(before, r.stored("hq")) {
		t.Fatal("a refused REGISTER changed the bindings")
	}
	// Bob has his own ten.
	if rep := r.register("hq", reg("bob", "b1", 1, contact("sip:bob@192.0.2.1", 3600))); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	// Replacing one contact by another in one request stays within ten.
	if rep := r.register("hq", reg("alice", "c1", 3, contact("sip:alice@192.0.2.1", 0), contact("sip:alice@198.51.100.1", 3600))); rep.Error != nil {
		t.Fatal(rep.Error)
	}
}

func TestRegister_OnlyMembersOfAnExistingGroup(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	tests := []struct {
		name, group string
		m           *actorpb.Register
		code        actorpb.Code
		field       string
	}{
		{"device of another group", "hq", reg("carol", "c1", 1, contact("sip:carol@192.0.2.1", 60)), actorpb.Code_CODE_NOT_FOUND, "device"},
		{"unknown device", "hq", reg("mallory", "c1", 1, contact("sip:m@192.0.2.1", 60)), actorpb.Code_CODE_NOT_FOUND, "device"},
		{"unknown group", "nope", reg("alice", "c1", 1, contact("sip:alice@192.0.2.1", 60)), actorpb.Code_CODE_NOT_FOUND, "group"},
		{"no Call-ID", "hq", reg("alice", "", 1, contact("sip:alice@192.0.2.1", 60)), actorpb.Code_CODE_INVALID, "call_id"},
		{"contact without URI", "hq", reg("alice", "c1", 1, contact("", 60)), actorpb.Code_CODE_INVALID, "contacts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := r.register(tt.group, tt.m)
			if code(rep.Error) != tt.code || rep.Error.Field != tt.field {
				t.Fatalf("got %+v, want %v on %q", rep.Error, tt.code, tt.field)
			}
		})
	}
	if len(r.stored("hq")) != 0 {
		t.Fatal("refused REGISTERs were stored")
	}
}

// A device that leaves the group loses its registrations, whether the
// group's actor is active when it leaves (the account's notice) or not
// (the account's member list at the next activation).
func TestRegister_DeviceLeavingTheGroupLosesItsBindings(t *testing.T) {
	r := newRegistrar(t, persistence.NewMemory())
	r.register("hq", reg("alice", "c1", 1, contact("sip:alice@192.0.2.7", 3600)))
	r.register("hq", reg("bob", "b1", 1, contact("sip:bob@192.0.2.8", 3600)))
	// Active: moving alice to sales drops her binding at once.
	if rep := ask[*actorpb.DeviceReply](t, r.s, KindAccount, "acme", &actorpb.PutDevice{Device: "alice", Group: "sales"}); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	waitFor(t, "alice's binding to go", func() bool { return contacts(r.stored("hq")) == "[bob>sip:bob@192.0.2.8]" })
	if got := contacts(r.lookup("hq", "")); got != "[bob>sip:bob@192.0.2.8]" {
		t.Fatalf("hq after alice left: %s", got)
	}
	// Passive: bob is deleted while the group's actor is not active.
	if err := r.s.PassivateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rep := ask[*actorpb.DeviceReply](t, r.s, KindAccount, "acme", &actorpb.DeleteDevice{Device: "bob"}); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	if got := r.lookup("hq", ""); len(got) != 0 {
		t.Fatalf("hq after bob was deleted: %s", contacts(got))
	}
	if got := r.stored("hq"); len(got) != 0 {
		t.Fatalf("bob's binding is still stored: %s", contacts(got))
	}
	// With no devices left, the group can be deleted, and its state with it.
	if rep := ask[*actorpb.GroupReply](t, r.s, KindAccount, "acme", &actorpb.DeleteGroup{Group: "hq"}); rep.Error != nil {
		t.Fatal(rep.Error)
	}
	if rep := ask[*actorpb.RegisterReply](t, r.s, KindDeviceGroup, "acme/hq", &actorpb.LookupBindings{}); code(rep.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("bindings of a deleted group: %+v", rep)
	}
}

func TestRegister_BindingsSurvivePassivationAndRestart(t *testing.T) {
	store := persistence.NewMemory()
	r := newRegistrar(t, store)
	want := r.register("hq", reg("alice", "c1", 7, contact("sip:alice@192.0.2.7", 3600))).Bindings
	if err := r.s.PassivateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(r.s.Activations(KindDeviceGroup)); n != 0 {
		t.Fatalf("%d group activations after passivation", n)
	}
	if got := r.lookup("hq", "alice"); !sameBindings(got, want) {
		t.Fatalf("after reactivation: %s, want %s", contacts(got), contacts(want))
	}
	// The reactivated actor still applies step 7 with the stored CSeq.
	if rep := r.register("hq", reg("alice", "c1", 7, contact("sip:alice@192.0.2.7", 60))); code(rep.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("replay after reactivation: %+v", rep.Error)
	}
	// A restarted node on the same store sees them too.
	s2 := newSystem(t, store, func(c *Config) { c.Clock = r.clk })
	rep := ask[*actorpb.RegisterReply](t, s2, KindDeviceGroup, "acme/hq", &actorpb.LookupBindings{Device: "alice"})
	if !sameBindings(rep.Bindings, want) {
		t.Fatalf("on a restarted node: %s", contacts(rep.Bindings))
	}
}

func TestCall_AnswerAndEndRecordTalkTime(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newSystem(t, persistence.NewMemory(), func(c *Config) { c.Clock = clk; c.Node = "n2" })
	call := func(id string, m proto.Message) *actorpb.CallReply {
		t.Helper()
		return ask[*actorpb.CallReply](t, s, KindCall, id, m)
	}
	if r := call("c1", &actorpb.AnswerCall{Target: "192.0.2.9:5060"}); code(r.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("answer before start: %+v", r.Error)
	}
	start := call("c1", &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme", EdgeNode: "n1", Route: "voicemail"}})
	if start.Error != nil || start.Call.EdgeNode != "n1" || start.Call.Route != "voicemail" || start.Call.Node != "n2" {
		t.Fatalf("start: %+v", start)
	}
	clk.Advance(3 * time.Second) // ringing
	a := call("c1", &actorpb.AnswerCall{Target: "192.0.2.9:5060"})
	if a.Error != nil || !a.Call.AnsweredAt.AsTime().Equal(clk.Now()) || a.Call.Target != "192.0.2.9:5060" {
		t.Fatalf("answer: %+v", a)
	}
	answeredAt := clk.Now()
	clk.Advance(time.Second)
	if a := call("c1", &actorpb.AnswerCall{}); !a.Call.AnsweredAt.AsTime().Equal(answeredAt) {
		t.Fatalf("a second answer moved answered_at to %v", a.Call.AnsweredAt.AsTime())
	}
	if r := call("c1", &actorpb.EndCall{EndedBy: "somebody"}); code(r.Error) != actorpb.Code_CODE_INVALID || r.Error.Field != "ended_by" {
		t.Fatalf("bad ended_by: %+v", r.Error)
	}
	clk.Advance(9 * time.Second)
	e := call("c1", &actorpb.EndCall{Disposition: "completed", Status: 200, EndedBy: "callee"})
	if e.Error != nil || e.Call.DurationMs != 10_000 || e.Call.Status != 200 || e.Call.EndedBy != "callee" || e.Call.Target != "192.0.2.9:5060" {
		t.Fatalf("end of an answered call: %+v (want 10 s from the answer)", e)
	}
	// Reloaded from the store, the record is the same.
	waitFor(t, "the ended call to passivate", func() bool { return len(s.Activations(KindCall)) == 0 })
	if g := call("c1", &actorpb.GetCall{}); !proto.Equal(g.Call, e.Call) {
		t.Fatalf("stored record %+v, want %+v", g.Call, e.Call)
	}
	// A call never answered lasts from its start.
	call("c2", &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme"}})
	clk.Advance(4 * time.Second)
	e = call("c2", &actorpb.EndCall{Disposition: "no-answer", Status: 487, EndedBy: "cancel", Target: "192.0.2.9:5060"})
	if e.Error != nil || e.Call.DurationMs != 4000 || e.Call.AnsweredAt != nil || e.Call.Target != "192.0.2.9:5060" || e.Call.Status != 487 {
		t.Fatalf("end of an unanswered call: %+v", e)
	}
	if r := call("c2", &actorpb.AnswerCall{}); code(r.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("answer after the end: %+v", r.Error)
	}
}
