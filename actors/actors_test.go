package actors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/internal/leaktest"
	"github.com/switchboard-pbx/switchboard/persistence"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func newSystem(t *testing.T, store persistence.Store, mod func(*Config)) *System {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Store = store
	cfg.Zone = "sip.test"
	cfg.Clock = clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// ask sends msg and returns the typed reply, failing the test on transport
// errors.
func ask[T proto.Message](t *testing.T, s *System, kind, id string, msg proto.Message) T {
	t.Helper()
	rep, err := s.Request(context.Background(), kind, id, msg)
	if err != nil {
		t.Fatalf("%s %s %T: %v", kind, id, msg, err)
	}
	out, ok := rep.(T)
	if !ok {
		t.Fatalf("%s %s %T: reply %T", kind, id, msg, rep)
	}
	return out
}

func code(e *actorpb.Error) actorpb.Code {
	if e == nil {
		return actorpb.Code_CODE_UNSPECIFIED
	}
	return e.Code
}

func provision(t *testing.T, s *System, account, group string, devices ...string) {
	t.Helper()
	if r := ask[*actorpb.AccountReply](t, s, KindAccount, account, &actorpb.PutAccount{}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if r := ask[*actorpb.GroupReply](t, s, KindAccount, account, &actorpb.PutGroup{Group: &actorpb.Group{Id: group}}); r.Error != nil {
		t.Fatal(r.Error)
	}
	for _, d := range devices {
		h := credential.Derive(d, account+".sip.test", "password-"+d)
		if r := ask[*actorpb.DeviceReply](t, s, KindAccount, account, &actorpb.PutDevice{Device: d, Group: group, Ha1Md5: h.MD5, Ha1Sha256: h.SHA256}); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
}

func TestAccount_WriteThroughBeforeReply(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	r := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.PutAccount{DisplayName: "Acme"})
	if r.Error != nil || !r.Created || r.Account.DnsName != "acme.sip.test" {
		t.Fatalf("put account: %+v", r)
	}
	it, err := store.Get(context.Background(), accountKey("acme"))
	if err != nil {
		t.Fatalf("account not in the store when the reply came: %v", err)
	}
	if it.Version != r.Version {
		t.Fatalf("stored version %d, reply version %d", it.Version, r.Version)
	}
	// A second system on the same store (a restarted node) sees it.
	s2 := newSystem(t, store, nil)
	g := ask[*actorpb.AccountReply](t, s2, KindAccount, "acme", &actorpb.GetAccount{})
	if g.Error != nil || g.Account.DisplayName != "Acme" || g.Version != r.Version {
		t.Fatalf("reloaded account: %+v", g)
	}
}

func TestAccount_IfMatchConflictChangesNothing(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	r1 := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.PutAccount{DisplayName: "one"})
	stale := r1.Version
	r2 := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.PutAccount{DisplayName: "two", IfMatch: &stale})
	if r2.Error != nil || r2.Created {
		t.Fatalf("conditional update with the current version: %+v", r2)
	}
	r3 := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.PutAccount{DisplayName: "three", IfMatch: &stale})
	if code(r3.Error) != actorpb.Code_CODE_CONFLICT || r3.Error.Field != "version" {
		t.Fatalf("stale If-Match: got %+v, want CONFLICT on version", r3.Error)
	}
	g := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.GetAccount{})
	if g.Account.DisplayName != "two" || g.Version != r2.Version {
		t.Fatalf("after a conflict the account changed: %+v", g)
	}
}

func TestDevice_Rules(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	provision(t, s, "acme", "hq")
	h := credential.Derive("alice", "acme.sip.test", "correct horse")
	tests := []struct {
		name  string
		msg   *actorpb.PutDevice
		code  actorpb.Code
		field string
	}{
		{"unknown group", &actorpb.PutDevice{Device: "alice", Group: "sales", Ha1Md5: h.MD5, Ha1Sha256: h.SHA256}, actorpb.Code_CODE_INVALID, "group"},
		{"new device without password", &actorpb.PutDevice{Device: "alice", Group: "hq"}, actorpb.Code_CODE_INVALID, "password"},
		{"only one HA1", &actorpb.PutDevice{Device: "alice", Group: "hq", Ha1Md5: h.MD5}, actorpb.Code_CODE_INVALID, "password"},
		{"created", &actorpb.PutDevice{Device: "alice", Group: "hq", Ha1Md5: h.MD5, Ha1Sha256: h.SHA256}, actorpb.Code_CODE_UNSPECIFIED, ""},
		{"update keeps credentials", &actorpb.PutDevice{Device: "alice", Group: "hq", DisplayName: "Alice"}, actorpb.Code_CODE_UNSPECIFIED, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask[*actorpb.DeviceReply](t, s, KindAccount, "acme", tt.msg)
			if code(r.Error) != tt.code || r.Error.GetField() != tt.field {
				t.Fatalf("got %+v, want %v on %q", r.Error, tt.code, tt.field)
			}
			if r.Device != nil && (len(r.Device.Ha1Md5) > 0 || len(r.Device.Ha1Sha256) > 0) {
				t.Fatal("a reply carried credentials")
			}
		})
	}
	// The HA1s survive the update that carried none.
	rep, err := s.Request(context.Background(), KindAccount, "acme", &actorpb.GetDevice{Device: "alice"})
	if err != nil || rep.(*actorpb.DeviceReply).Device.DisplayName != "Alice" {
		t.Fatalf("get device: %v %v", rep, err)
	}
	it, err := s.cfg.Store.Get(context.Background(), deviceKey("acme", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	var d actorpb.Device
	if err := proto.Unmarshal(it.Value, &d); err != nil {
		t.Fatal(err)
	}
	if string(d.Ha1Md5) != string(h.MD5) || string(d.Ha1Sha256) != string(h.SHA256) {
		t.Fatal("an update without a password lost the stored HA1s")
	}
}

func TestDeviceGroup_MembersFollowTheAccount(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	provision(t, s, "acme", "hq", "alice", "bob")
	provision(t, s, "acme", "sales")
	view := func(g string) []string {
		t.Helper()
		v := ask[*actorpb.GroupView](t, s, KindDeviceGroup, "acme/"+g, &actorpb.GetGroupView{})
		if v.Error != nil {
			t.Fatal(v.Error)
		}
		return v.Members
	}
	if got := fmt.Sprint(view("hq")); got != "[alice bob]" {
		t.Fatalf("hq members at activation = %s", got)
	}
	_ = view("sales")
	// Move bob while both group actors are active: notices keep them current.
	if r := ask[*actorpb.DeviceReply](t, s, KindAccount, "acme", &actorpb.PutDevice{Device: "bob", Group: "sales"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if got := fmt.Sprint(view("hq")); got != "[alice]" {
		t.Fatalf("hq members after moving bob = %s", got)
	}
	if got := fmt.Sprint(view("sales")); got != "[bob]" {
		t.Fatalf("sales members after moving bob = %s", got)
	}
	// A group with members cannot be deleted; an empty one can, and its
	// actor stops.
	if r := ask[*actorpb.GroupReply](t, s, KindAccount, "acme", &actorpb.DeleteGroup{Group: "hq"}); code(r.Error) != actorpb.Code_CODE_CONFLICT {
		t.Fatalf("deleting a group with devices: %+v", r.Error)
	}
	if r := ask[*actorpb.DeviceReply](t, s, KindAccount, "acme", &actorpb.DeleteDevice{Device: "alice"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	if r := ask[*actorpb.GroupReply](t, s, KindAccount, "acme", &actorpb.DeleteGroup{Group: "hq"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	v := ask[*actorpb.GroupView](t, s, KindDeviceGroup, "acme/hq", &actorpb.GetGroupView{})
	if code(v.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("deleted group still answers: %+v", v)
	}
}

func TestAccount_DeleteRemovesEverythingAndIDCanBeReused(t *testing.T) {
	store := persistence.NewMemory()
	s := newSystem(t, store, nil)
	provision(t, s, "acme", "hq", "alice")
	_ = ask[*actorpb.GroupView](t, s, KindDeviceGroup, "acme/hq", &actorpb.GetGroupView{})
	if r := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.DeleteAccount{}); r.Error != nil {
		t.Fatal(r.Error)
	}
	for _, p := range []string{"acct/acme", "dgrp/acme/"} {
		items, err := persistence.ScanAll(context.Background(), store, p)
		if err != nil || len(items) != 0 {
			t.Fatalf("after delete, %d items remain under %s (%v)", len(items), p, err)
		}
	}
	if r := ask[*actorpb.DeviceReply](t, s, KindAccount, "acme", &actorpb.GetDevice{Device: "alice"}); code(r.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("device of a deleted account: %+v", r)
	}
	r := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.PutAccount{})
	if !r.Created || r.DeviceCount != 0 || r.GroupCount != 0 {
		t.Fatalf("re-created account is not empty: %+v", r)
	}
}

func TestAccount_LeftoversOfAHalfDeleteAreInvisible(t *testing.T) {
	store := persistence.NewMemory()
	ctx := context.Background()
	// A device record without its account, as a crash mid-delete leaves it.
	b, _ := proto.Marshal(&actorpb.Device{Id: "ghost", Group: "hq"})
	if _, err := store.Put(ctx, deviceKey("acme", "ghost"), b, persistence.MustNotExist); err != nil {
		t.Fatal(err)
	}
	s := newSystem(t, store, nil)
	if r := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.GetAccount{}); code(r.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("account without a record: %+v", r)
	}
	r := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.PutAccount{})
	if r.DeviceCount != 0 {
		t.Fatalf("new account inherited %d devices", r.DeviceCount)
	}
	if _, err := store.Get(ctx, deviceKey("acme", "ghost")); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("leftover device not cleaned: %v", err)
	}
}

func TestPassivation_IdleActorStopsAndReloadsItsState(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newSystem(t, persistence.NewMemory(), func(c *Config) {
		c.IdleTimeout = 40 * time.Millisecond
		c.Clock = clk
	})
	provision(t, s, "acme", "hq", "alice")
	// The fake clock stands still: however long the reaper runs, nothing
	// is idle yet.
	if n := len(s.Activations(KindAccount)); n != 1 {
		t.Fatalf("%d account activations before the idle timeout", n)
	}
	clk.Advance(40 * time.Millisecond)
	waitFor(t, "the account to passivate", func() bool { return len(s.Activations(KindAccount)) == 0 })
	r := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.GetAccount{})
	if r.Error != nil || r.DeviceCount != 1 || r.GroupCount != 1 {
		t.Fatalf("reactivated account: %+v", r)
	}
	if got := testutilCount(s.metrics.passivations.WithLabelValues(KindAccount)); got < 1 {
		t.Fatalf("passivations metric = %v", got)
	}
}

// A message handed out by the lookup is never dropped by an activation
// that passivates meanwhile: with a 1 ms idle timeout, thousands of
// requests from many goroutines all get answers.
func TestPassivation_NoRequestLostWhileActorsComeAndGo(t *testing.T) {
	var live, overlaps atomic.Int64
	s := newSystem(t, persistence.NewMemory(), func(c *Config) {
		// At most one live activation of the identity at any time.
		c.OnActivated = func(a *Activation) {
			if a.Kind == KindAccount && live.Add(1) > 1 {
				overlaps.Add(1)
			}
		}
		c.OnStopped = func(a *Activation) {
			if a.Kind == KindAccount {
				live.Add(-1)
			}
		}
		c.Clock = clock.Real{}
		c.IdleTimeout = time.Millisecond
		c.RequestTimeout = 10 * time.Second
	})
	provision(t, s, "acme", "hq")
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 200 {
				// Gaps around the idle timeout, so that passivations race
				// with requests (load shaping, not waiting for an event).
				time.Sleep(time.Duration(rng.IntN(6000)) * time.Microsecond)
				rep, err := s.Request(context.Background(), KindAccount, "acme", &actorpb.GetAccount{})
				if err != nil || rep.(*actorpb.AccountReply).Error != nil {
					failed.Add(1)
					t.Errorf("worker %d request %d: %v %v", w, i, rep, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d times two activations of one identity were live at once", n)
	}
	if n := testutilCount(s.metrics.activations.WithLabelValues(KindAccount)); n < 2 {
		t.Fatalf("only %v activations: the idle timeout never fired during the run", n)
	}
}

// failingStore fails every operation after fail is set.
type failingStore struct {
	persistence.Store
	fail atomic.Bool
}

var errDown = errors.New("store down")

func (f *failingStore) Get(ctx context.Context, k string) (persistence.Item, error) {
	if f.fail.Load() {
		return persistence.Item{}, errDown
	}
	return f.Store.Get(ctx, k)
}

func (f *failingStore) Put(ctx context.Context, k string, v []byte, e uint64) (uint64, error) {
	if f.fail.Load() {
		return 0, errDown
	}
	return f.Store.Put(ctx, k, v, e)
}

func (f *failingStore) Scan(ctx context.Context, p, a string, l int) ([]persistence.Item, error) {
	if f.fail.Load() {
		return nil, errDown
	}
	return f.Store.Scan(ctx, p, a, l)
}

func TestStoreFailure_ReplyUnavailableAndChangeNothing(t *testing.T) {
	fs := &failingStore{Store: persistence.NewMemory()}
	s := newSystem(t, fs, nil)
	provision(t, s, "acme", "hq")
	fs.fail.Store(true)
	h := credential.Derive("alice", "acme.sip.test", "password1")
	r := ask[*actorpb.DeviceReply](t, s, KindAccount, "acme", &actorpb.PutDevice{Device: "alice", Group: "hq", Ha1Md5: h.MD5, Ha1Sha256: h.SHA256})
	if code(r.Error) != actorpb.Code_CODE_UNAVAILABLE {
		t.Fatalf("write with the store down: %+v", r)
	}
	// While the store is down the actor cannot reload either.
	if g := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.GetAccount{}); code(g.Error) != actorpb.Code_CODE_UNAVAILABLE {
		t.Fatalf("read with state in doubt and the store down: %+v", g)
	}
	fs.fail.Store(false)
	g := ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.GetAccount{})
	if g.Error != nil || g.DeviceCount != 0 {
		t.Fatalf("after recovery: %+v (a failed write must change nothing)", g)
	}
}

func TestRequest_UnknownKindAndClosedSystem(t *testing.T) {
	s := newSystem(t, persistence.NewMemory(), nil)
	if _, err := s.Request(context.Background(), "nope", "x", &actorpb.GetAccount{}); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := s.Request(context.Background(), KindDeviceGroup, "no-slash", &actorpb.GetGroupView{}); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("malformed devicegroup identity: %v", err)
	}
	_ = s.Close()
	if _, err := s.Request(context.Background(), KindAccount, "x", &actorpb.GetAccount{}); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("after Close: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}
