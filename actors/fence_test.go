package actors

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/lease"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// leaseFence adapts a lease.Node to Fence, as the node package does.
type leaseFence struct{ l *lease.Node }

func (f leaseFence) Acquire(ctx context.Context, kind, identity string) (Claim, error) {
	c, err := f.l.Acquire(ctx, kind, identity)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// half is one side of a partition: an actor system with its own lookup
// (it sees no other node) and its own lease, on the shared store.
type half struct {
	sys   *System
	lease *lease.Node
}

func newHalf(t *testing.T, store persistence.Store, clk *clock.Fake, id string) half {
	t.Helper()
	lc := lease.DefaultConfig()
	lc.Clock = clk
	l, err := lease.New(store, lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Register(context.Background(), lease.NodeRecord{ID: id, Name: id}); err != nil {
		t.Fatal(err)
	}
	sys := newSystem(t, store, func(c *Config) { c.Clock, c.Fence = clk, leaseFence{l} })
	return half{sys: sys, lease: l}
}

// edgeView asks for carol's edge view as the SIP edge does on REGISTER.
func edgeView(t *testing.T, h half) *actorpb.SecretEdgeView {
	t.Helper()
	return ask[*actorpb.SecretEdgeView](t, h.sys, KindAccount, "acme", &actorpb.GetSecretEdgeView{Device: "carol"})
}

// TestFence_PartitionedHalvesNeverBothServeAnAccount is issue 9's split
// brain in one process: two halves that cannot see each other share one
// store. The half that activated acme first serves it; the other answers
// CODE_UNAVAILABLE (503) for it, before and after carol's password is
// rotated, instead of serving what it might have loaded. When the serving
// half is cut off from the store, it steps down before the other takes
// over, and the other serves the rotated password, never the old one; the
// old half, back in touch, is refused.
func TestFence_PartitionedHalvesNeverBothServeAnAccount(t *testing.T) {
	store := persistence.NewMemory()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	n1, n2 := newHalf(t, store, clk, "n1"), newHalf(t, store, clk, "n2")
	renew := func(hs ...half) {
		t.Helper()
		for _, h := range hs {
			if err := h.lease.Renew(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	provision(t, n1.sys, "acme", "hq", "carol")
	old := edgeView(t, n1).GetDevice()
	if old == nil {
		t.Fatal("n1 serves no edge view for carol")
	}

	if v := edgeView(t, n2); code(v.Error) != actorpb.Code_CODE_UNAVAILABLE {
		t.Fatalf("n2's edge view of acme while n1 serves it: %v; want CODE_UNAVAILABLE", v)
	}
	h := credential.Derive("carol", "acme.sip.test", "rotated")
	if r := ask[*actorpb.DeviceReply](t, n1.sys, KindAccount, "acme", &actorpb.PutDevice{Device: "carol", Group: "hq", Ha1Md5: h.MD5, Ha1Sha256: h.SHA256}); r.Error != nil {
		t.Fatalf("rotating carol's password through n1: %v", r.Error)
	}
	for range 10 { // ten seconds, both halves renewing
		clk.Advance(time.Second)
		renew(n1, n2)
		if v := edgeView(t, n2); code(v.Error) != actorpb.Code_CODE_UNAVAILABLE {
			t.Fatalf("n2's edge view of acme after the rotation: %v; want CODE_UNAVAILABLE", v)
		}
		if v := edgeView(t, n1); !bytes.Equal(v.GetDevice().GetHa1Md5(), h.MD5) {
			t.Fatalf("n1 does not serve the rotated password: %v", v)
		}
	}
	// The refused activation stops after its reply, not before it.
	waitFor(t, "n2 to stop the acme activation it may not serve", func() bool { return len(n2.sys.Activations(KindAccount)) == 0 })

	// n1 is cut off from the store: it stops renewing.
	var served time.Duration
	for elapsed := time.Second; elapsed <= 8*time.Second; elapsed += time.Second {
		clk.Advance(time.Second)
		renew(n2)
		v1, v2 := edgeView(t, n1), edgeView(t, n2)
		if v1.Error == nil && v2.Error == nil {
			t.Fatalf("%v into the cut: both halves serve acme", elapsed)
		}
		if v2.Error == nil {
			if !bytes.Equal(v2.GetDevice().GetHa1Md5(), h.MD5) {
				t.Fatalf("n2 took over and serves carol's old password")
			}
			served = elapsed
			break
		}
	}
	if served == 0 {
		t.Fatal("n2 never took over acme from the cut-off n1")
	}
	t.Logf("n2 served acme %v after n1's last renewal", served)
	renew(n1) // back in touch with the store
	if v := edgeView(t, n1); code(v.Error) != actorpb.Code_CODE_UNAVAILABLE {
		t.Fatalf("n1, back after a lapse, answers %v for acme; want CODE_UNAVAILABLE while n2 serves it", v)
	}
}

// TestFence_MissingAccountLeavesNoClaim: a request for an account that
// does not exist is answered (not found) and leaves neither an activation
// nor an owner record behind, so made-up ids cannot fill the store.
func TestFence_MissingAccountLeavesNoClaim(t *testing.T) {
	store := persistence.NewMemory()
	n1 := newHalf(t, store, clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), "n1")
	if r := ask[*actorpb.AccountReply](t, n1.sys, KindAccount, "nobody", &actorpb.GetAccount{}); code(r.Error) != actorpb.Code_CODE_NOT_FOUND {
		t.Fatalf("GetAccount of a missing account: %v; want CODE_NOT_FOUND", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(n1.sys.Activations(KindAccount)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the missing account's activation is still live: %v", n1.sys.Activations(KindAccount))
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	owners, err := persistence.ScanAll(context.Background(), store, "lease/owner/")
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 0 {
		t.Fatalf("owner records left behind: %v", owners)
	}
}
