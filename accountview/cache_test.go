package accountview_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// fakeAccounts answers GetSecretEdgeView as the account actor does, for the
// accounts and devices it holds, counting the requests. block, when set,
// holds each request until it is closed.
type fakeAccounts struct {
	mu       sync.Mutex
	accounts map[string]*actorpb.SecretEdgeView
	devices  map[string]*actorpb.Device // account/device
	requests int
	block    chan struct{}
	started  chan struct{}
}

func newFake() *fakeAccounts {
	return &fakeAccounts{
		accounts: map[string]*actorpb.SecretEdgeView{
			"acme": {
				Account:    &actorpb.Account{Id: "acme"},
				Routes:     &actorpb.RouteSet{Routes: []*actorpb.Route{{Method: "MESSAGE", Feature: "sms"}}},
				Trunks:     []*actorpb.Trunk{{Id: "pbx", Sources: []string{"192.0.2.0/24"}}},
				Pools:      []string{"east"},
				GroupPools: map[string]string{"hq": "east"},
			},
		},
		devices: map[string]*actorpb.Device{"acme/alice": {Id: "alice", Group: "hq", Ha1Md5: []byte("0123456789abcdef")}},
	}
}

func (f *fakeAccounts) Request(_ context.Context, kind, identity string, msg proto.Message) (proto.Message, error) {
	f.mu.Lock()
	f.requests++
	block, started := f.block, f.started
	f.mu.Unlock()
	if started != nil {
		started <- struct{}{}
	}
	if block != nil {
		<-block
	}
	m, ok := msg.(*actorpb.GetSecretEdgeView)
	if kind != actors.KindAccount || !ok {
		return nil, fmt.Errorf("unexpected %s %T", kind, msg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.accounts[identity]
	if !ok {
		return &actorpb.SecretEdgeView{Error: &actorpb.Error{Code: actorpb.Code_CODE_NOT_FOUND}}, nil
	}
	out := &actorpb.SecretEdgeView{}
	if !m.DeviceOnly {
		out = proto.Clone(v).(*actorpb.SecretEdgeView)
	}
	if d, ok := f.devices[identity+"/"+m.Device]; ok {
		out.Device, out.Found = proto.Clone(d).(*actorpb.Device), true
	}
	return out, nil
}

func (f *fakeAccounts) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func newCache(t *testing.T, f *fakeAccounts, clk clock.Clock) *accountview.Cache {
	t.Helper()
	cfg := accountview.DefaultConfig()
	cfg.Actors, cfg.Clock = f, clk
	c, err := accountview.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestCache_ServesFromMemoryUntilInvalidated(t *testing.T) {
	f := newFake()
	c := newCache(t, f, clock.NewFake(time.Unix(0, 0)))
	ctx := context.Background()
	for range 3 {
		a, err := c.Account(ctx, "acme")
		if err != nil {
			t.Fatalf("Account: %v", err)
		}
		if a.PoolOf("hq") != "east" || len(a.Routes) != 1 || a.TrunkFor(netip.MustParseAddr("192.0.2.7")).GetId() != "pbx" {
			t.Fatalf("snapshot = %+v", a)
		}
		if a.TrunkFor(netip.MustParseAddr("198.51.100.1")) != nil {
			t.Fatal("a source outside every trunk matched one")
		}
		if d, err := c.Device(ctx, "acme", "alice"); err != nil || d.Group != "hq" {
			t.Fatalf("Device = %v, %v", d, err)
		}
	}
	if n := f.count(); n != 2 {
		t.Fatalf("%d requests for 3 reads of an account and a device, want 2 (one load each)", n)
	}

	f.mu.Lock()
	f.devices["acme/alice"].Group = "sales"
	f.mu.Unlock()
	if d, _ := c.Device(ctx, "acme", "alice"); d.Group != "hq" {
		t.Fatal("the device was read again without a notice")
	}
	c.Invalidate(accountview.DeviceKey("acme", "alice"))
	if d, _ := c.Device(ctx, "acme", "alice"); d.Group != "sales" {
		t.Fatalf("after its notice the device reads group %q, want sales", d.Group)
	}
	if _, err := c.Account(ctx, "acme"); err != nil || f.count() != 3 {
		t.Fatalf("a device's notice reloaded the account level (%d requests)", f.count())
	}
}

func TestCache_NotFoundIsCachedAndDroppedByItsNotice(t *testing.T) {
	f := newFake()
	c := newCache(t, f, clock.NewFake(time.Unix(0, 0)))
	ctx := context.Background()
	for range 2 {
		if _, err := c.Device(ctx, "acme", "bob"); !errors.Is(err, accountview.ErrNotFound) {
			t.Fatalf("unknown device: %v, want ErrNotFound", err)
		}
		if _, err := c.Account(ctx, "nobody"); !errors.Is(err, accountview.ErrNotFound) {
			t.Fatalf("unknown account: %v, want ErrNotFound", err)
		}
	}
	if n := f.count(); n != 2 {
		t.Fatalf("%d requests, want 2: an answer that something does not exist is kept too", n)
	}
	f.mu.Lock()
	f.devices["acme/bob"] = &actorpb.Device{Id: "bob", Group: "hq"}
	f.mu.Unlock()
	c.Invalidate(accountview.DeviceKey("acme", "bob"))
	if d, err := c.Device(ctx, "acme", "bob"); err != nil || d.Id != "bob" {
		t.Fatalf("a device created after a miss: %v, %v", d, err)
	}
}

func TestCache_AllKeyDropsTheAccountAndEveryDevice(t *testing.T) {
	f := newFake()
	c := newCache(t, f, clock.NewFake(time.Unix(0, 0)))
	ctx := context.Background()
	_, _ = c.Account(ctx, "acme")
	_, _ = c.Device(ctx, "acme", "alice")
	f.mu.Lock()
	delete(f.accounts, "acme")
	f.mu.Unlock()
	c.Invalidate(accountview.AllKey("acme"))
	if _, err := c.Account(ctx, "acme"); !errors.Is(err, accountview.ErrNotFound) {
		t.Fatalf("deleted account: %v, want ErrNotFound", err)
	}
	if _, err := c.Device(ctx, "acme", "alice"); !errors.Is(err, accountview.ErrNotFound) {
		t.Fatalf("device of a deleted account: %v, want ErrNotFound", err)
	}
}

func TestCache_EntriesAgeOutAfterMaxAge(t *testing.T) {
	f := newFake()
	clk := clock.NewFake(time.Unix(0, 0))
	c := newCache(t, f, clk)
	ctx := context.Background()
	_, _ = c.Account(ctx, "acme")
	clk.Advance(accountview.DefaultConfig().MaxAge - time.Millisecond)
	_, _ = c.Account(ctx, "acme")
	if f.count() != 1 {
		t.Fatal("reloaded before MaxAge")
	}
	clk.Advance(time.Millisecond)
	_, _ = c.Account(ctx, "acme")
	if f.count() != 2 {
		t.Fatal("not reloaded at MaxAge: a lost notice would leave the node stale for ever")
	}
}

// A load that was under way when a notice came answers its request but
// is not kept: its reply may have been computed before the change.
func TestCache_LoadRacingANoticeIsNotKept(t *testing.T) {
	f := newFake()
	f.block, f.started = make(chan struct{}), make(chan struct{}, 1)
	c := newCache(t, f, clock.NewFake(time.Unix(0, 0)))
	ctx := context.Background()
	done := make(chan error)
	go func() {
		_, err := c.Account(ctx, "acme")
		done <- err
	}()
	<-f.started
	c.Invalidate(accountview.AccountKey("acme"))
	close(f.block)
	if err := <-done; err != nil {
		t.Fatalf("Account: %v", err)
	}
	f.mu.Lock()
	f.block, f.started = nil, nil
	f.mu.Unlock()
	_, _ = c.Account(ctx, "acme")
	if n := f.count(); n != 2 {
		t.Fatalf("%d requests, want 2: the racing load must not be kept", n)
	}
}

func TestCache_ConcurrentMissesShareOneLoad(t *testing.T) {
	f := newFake()
	f.block, f.started = make(chan struct{}), make(chan struct{}, 16)
	c := newCache(t, f, clock.NewFake(time.Unix(0, 0)))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Device(context.Background(), "acme", "alice"); err != nil {
				t.Errorf("Device: %v", err)
			}
		})
	}
	<-f.started
	// Let the others pile up on the load under way, then release it.
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Misses < 8 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(f.block)
	wg.Wait()
	if n := f.count(); n != 1 {
		t.Fatalf("%d loads for 8 concurrent misses, want 1", n)
	}
}

// BenchmarkCache_Hit is what a SIP request pays to read its account and
// device from the node's snapshot, beside the baseline: asking the account
// actor (a real actors.System on the memory store) for the same, as the
// edge did on every request before.
//
//	go test -run '^$' -bench Cache_Hit -benchtime 20000x ./accountview/
func BenchmarkCache_Hit(b *testing.B) {
	ctx := context.Background()
	sys, err := actors.New(actors.Config{Store: persistence.NewMemory(), Zone: "sip.test"})
	if err != nil {
		b.Fatal(err)
	}
	defer sys.Close()
	h := credential.Derive("alice", "acme.sip.test", "alice-password-1")
	for _, m := range []proto.Message{&actorpb.PutAccount{}, &actorpb.PutGroup{Group: &actorpb.Group{Id: "hq"}},
		&actorpb.PutDevice{Device: "alice", Group: "hq", Ha1Md5: h.MD5, Ha1Sha256: h.SHA256}} {
		rep, err := sys.Request(ctx, actors.KindAccount, "acme", m)
		if err != nil {
			b.Fatal(err)
		}
		if e := rep.(interface{ GetError() *actorpb.Error }).GetError(); e != nil {
			b.Fatal(e)
		}
	}
	cfg := accountview.DefaultConfig()
	cfg.Actors = sys
	c, err := accountview.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := c.Account(ctx, "acme"); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Device(ctx, "acme", "alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("actor", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := sys.Request(ctx, actors.KindAccount, "acme", &actorpb.GetSecretEdgeView{Device: "alice"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
