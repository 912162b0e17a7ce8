package lease

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// pair is two nodes' leases on one store, driven by one fake clock.
type pair struct {
	clk   *clock.Fake
	store *persistence.Memory
	a, b  *Node
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{clk: clock.NewFake(t0), store: persistence.NewMemory()}
	t.Cleanup(func() { _ = p.store.Close() })
	p.a, p.b = p.node(t, "a"), p.node(t, "b")
	return p
}

func (p *pair) node(t *testing.T, id string) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Clock = p.clk
	n, err := New(p.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Register(context.Background(), NodeRecord{ID: id, Name: "node-" + id, Gossip: "127.0.0.1:1" + id}); err != nil {
		t.Fatalf("Register %s: %v", id, err)
	}
	return n
}

// tick advances the clock by d, a second at a time, renewing the given
// nodes after each second (the others are cut off from the store).
func (p *pair) tick(t *testing.T, d time.Duration, renew ...*Node) {
	t.Helper()
	for step := time.Duration(0); step < d; step += time.Second {
		p.clk.Advance(time.Second)
		for _, n := range renew {
			if err := n.Renew(context.Background()); err != nil {
				t.Fatalf("Renew: %v", err)
			}
		}
	}
}

func mustAcquire(t *testing.T, n *Node, id string) *Claim {
	t.Helper()
	c, err := n.Acquire(context.Background(), "account", id)
	if err != nil {
		t.Fatalf("Acquire account %s: %v", id, err)
	}
	return c
}

func refused(t *testing.T, n *Node, id string, want error) {
	t.Helper()
	if c, err := n.Acquire(context.Background(), "account", id); !errors.Is(err, want) {
		t.Fatalf("Acquire account %s = %v, %v; want %v", id, c, err, want)
	}
}

// TestOwnership_OneOwnerWhileItsLeaseLives: a live owner keeps its
// identities; the other node is refused, however long it waits.
func TestOwnership_OneOwnerWhileItsLeaseLives(t *testing.T) {
	p := newPair(t)
	c := mustAcquire(t, p.a, "acme")
	refused(t, p.b, "acme", ErrOwnedElsewhere)
	p.tick(t, time.Minute, p.a, p.b)
	refused(t, p.b, "acme", ErrOwnedElsewhere)
	if _, err := c.Check(); err != nil {
		t.Fatalf("the owner's claim after a minute of renewals: %v", err)
	}
	again := mustAcquire(t, p.a, "acme") // its own record: taken again
	if again.version == c.version {
		t.Fatal("taking its own record again kept the version; a stale claim could not be told apart")
	}
}

// TestOwnership_CutOffOwnerStepsDownBeforeTakeover: the owner's renewals
// stop (it is cut off from the store); its claim lapses Margin before the
// other node may take over, and once it renews again the old claim stays
// void and it is refused: the new owner serves alone.
func TestOwnership_CutOffOwnerStepsDownBeforeTakeover(t *testing.T) {
	p := newPair(t)
	c := mustAcquire(t, p.a, "acme")
	for elapsed := time.Second; elapsed <= 6*time.Second; elapsed += time.Second {
		p.tick(t, time.Second, p.b) // a does not renew
		_, lapsed := c.Check()
		_, err := p.b.Acquire(context.Background(), "account", "probe-"+elapsed.String())
		if err != nil {
			t.Fatalf("b cannot take a free identity: %v", err)
		}
		takeover, terr := p.b.Acquire(context.Background(), "account", "acme")
		if terr == nil && lapsed == nil {
			t.Fatalf("%v after a's last renewal: b took acme while a's claim is still valid", elapsed)
		}
		if terr == nil {
			t.Logf("b took acme %v after a's last renewal; a's claim had lapsed", elapsed)
			if err := p.a.Renew(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Check(); !errors.Is(err, ErrLapsed) {
				t.Fatalf("a renewed after a lapse: its old claim = %v, want ErrLapsed", err)
			}
			refused(t, p.a, "acme", ErrOwnedElsewhere)
			if _, err := takeover.Check(); err != nil {
				t.Fatalf("b's claim: %v", err)
			}
			return
		}
	}
	t.Fatal("b never took over from a node that stopped renewing")
}

// TestOwnership_ReleaseAndCloseHandOverAtOnce: a released identity and the
// identities of a node that closed are taken without waiting for a TTL.
func TestOwnership_ReleaseAndCloseHandOverAtOnce(t *testing.T) {
	p := newPair(t)
	c := mustAcquire(t, p.a, "acme")
	if err := c.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, p.b, "acme")

	mustAcquire(t, p.a, "globex")
	if err := p.a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	refused(t, p.a, "initech", ErrNoLease)
	mustAcquire(t, p.b, "globex") // a's record is gone: a is gone
}

// TestLivePeers_FindsOthersAndForgetsTheDead: each node lists the other
// from the store; a node that stopped renewing drops out after TTL and its
// record is deleted after ForgetAfter.
func TestLivePeers_FindsOthersAndForgetsTheDead(t *testing.T) {
	p := newPair(t)
	if err := p.a.Renew(context.Background()); err != nil { // a registered before b: read b now
		t.Fatal(err)
	}
	if got := p.a.LivePeers(); len(got) != 1 || got[0].ID != "b" || got[0].Gossip != "127.0.0.1:1b" {
		t.Fatalf("a's live peers: %+v, want b with its gossip address", got)
	}
	p.tick(t, 6*time.Second, p.b) // b saw a's last renewal a second after t0
	if got := p.b.LivePeers(); len(got) != 0 {
		t.Fatalf("b still lists %+v 6s after a stopped renewing", got)
	}
	p.tick(t, time.Minute, p.b)
	if _, err := p.store.Get(context.Background(), nodeKey("a")); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("a's record a minute after its last renewal: %v, want it forgotten", err)
	}
}

// TestOwnership_RestartedOnTheSameHostTakesOverAtOnce: a node whose
// process no longer runs on this host is gone at once, without waiting
// out its lease (a node killed and started again).
func TestOwnership_RestartedOnTheSameHostTakesOverAtOnce(t *testing.T) {
	clk := clock.NewFake(t0)
	store := persistence.NewMemory()
	t.Cleanup(func() { _ = store.Close() })
	host := ThisProcess()
	if host.Boot == "" || host.PIDNS == "" {
		t.Skip("no boot or PID namespace id on this system (not Linux): the same-host rule does not apply")
	}
	start := func(id string, pid int) *Node {
		cfg := DefaultConfig()
		cfg.Clock = clk
		cfg.Process = host
		cfg.Process.PID = pid
		cfg.ProcessExists = func(p int) bool { return p != 1111 } // 1111 was killed
		n, err := New(store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Register(context.Background(), NodeRecord{ID: id, Name: "n1"}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	old := start("old", 1111)
	mustAcquire(t, old, "acme")
	restarted := start("new", 2222)
	mustAcquire(t, restarted, "acme")
	if got := restarted.LivePeers(); len(got) != 0 {
		t.Fatalf("the restarted node lists its dead predecessor as a live peer: %+v", got)
	}
}
