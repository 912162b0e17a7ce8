package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Timers for nodes in tests: memberlist's local profile, 100 ms load
// reports, suspect after 1 s of silence.
const (
	testLoadInterval = 100 * time.Millisecond
	testSuspectAfter = time.Second
)

var nodeSeq atomic.Int64

// testNode is a running Gossip whose load the test sets.
type testNode struct {
	*Gossip
	calls    atomic.Int64 // reported as ActiveCalls
	changes  atomic.Int64 // OnChange calls
	inChange atomic.Bool  // an OnChange call is under way
	members  int          // len(Members()) seen by the last OnChange; Run's goroutine only
	stop     func()       // cancels Run and waits for it
}

// startNode creates a node on 127.0.0.1:0 (unless mod sets BindAddr), runs
// it, and stops it at cleanup. mod may set anything; ID defaults to a unique
// one, Meta.Name to name.
func startNode(t *testing.T, name string, mod func(*Config)) *testNode {
	t.Helper()
	n := &testNode{}
	cfg := DefaultConfig()
	cfg.ID = fmt.Sprintf("%s-%d", name, nodeSeq.Add(1))
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Profile = ProfileLocal
	cfg.LoadInterval = testLoadInterval
	cfg.SuspectAfter = testSuspectAfter
	cfg.JoinBackoffMin, cfg.JoinBackoffMax = 50*time.Millisecond, 400*time.Millisecond
	cfg.Meta = Meta{Name: name, Pool: "default", Actor: "127.0.0.1:8090", SIP: "127.0.0.1:5060"}
	cfg.LoadFunc = func() Load {
		c := int(n.calls.Load())
		return Load{ActiveCalls: c, Activations: map[string]int{"call": c}, CPU: 0.25}
	}
	cfg.OnChange = func() {
		if n.inChange.Swap(true) {
			t.Errorf("%s: OnChange called concurrently with itself", name)
		}
		n.changes.Add(1)
		n.members = len(n.Members()) // OnChange may call back (no lock of ours held)
		n.inChange.Store(false)
	}
	cfg.Logger = testLogger().With("node", cfg.ID)
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	n.Gossip = g
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var stopped atomic.Bool
	n.stop = func() {
		if stopped.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run(%s) = %v, want nil", name, err)
		}
	}
	t.Cleanup(func() {
		n.stop()
		if err := g.Shutdown(); err != nil {
			t.Errorf("Shutdown(%s): %v", name, err)
		}
	})
	return n
}

// testLogger discards, unless SWITCHBOARD_TEST_LOG is set. (t.Log cannot be
// used: memberlist timers may log after a test ended.)
func testLogger() *slog.Logger {
	if os.Getenv("SWITCHBOARD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func joinTo(seeds ...*testNode) func(*Config) {
	return func(c *Config) {
		for _, s := range seeds {
			c.Join = append(c.Join, s.Addr())
		}
	}
}

// eventually polls cond until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		<-tick.C
	}
}

func member(n *testNode, id string) (Member, error) {
	for _, m := range n.Members() {
		if m.ID == id {
			return m, nil
		}
	}
	return Member{}, fmt.Errorf("%s does not list %s", n.LocalID(), id)
}

// statusOf returns how observer sees subject.
func statusOf(observer *testNode, subject string) Status {
	m, err := member(observer, subject)
	if err != nil {
		return ""
	}
	return m.Status
}

func allAlive(n *testNode, want int) error {
	ms := n.Members()
	if len(ms) != want {
		return fmt.Errorf("%s lists %d members, want %d: %+v", n.LocalID(), len(ms), want, ms)
	}
	for _, m := range ms {
		if m.Status != StatusAlive {
			return fmt.Errorf("%s sees %s %s", n.LocalID(), m.ID, m.Status)
		}
	}
	return nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestCluster_ThreeNodesConvergeAndLoadPropagates(t *testing.T) {
	t.Parallel()
	a := startNode(t, "a", nil)
	b := startNode(t, "b", joinTo(a))
	c := startNode(t, "c", joinTo(a))
	nodes := []*testNode{a, b, c}

	for _, n := range nodes {
		eventually(t, 5*time.Second, n.LocalID()+" sees 3 alive", func() error { return allAlive(n, 3) })
		if !n.Joined() {
			t.Errorf("%s: Joined() = false", n.LocalID())
		}
	}
	for _, obs := range nodes {
		ms := obs.Members()
		for i, m := range ms {
			if i > 0 && ms[i-1].ID >= m.ID {
				t.Errorf("%s: Members not sorted by ID: %s before %s", obs.LocalID(), ms[i-1].ID, m.ID)
			}
			var subj *testNode
			for _, n := range nodes {
				if n.LocalID() == m.ID {
					subj = n
				}
			}
			if subj == nil {
				t.Fatalf("%s lists unknown member %s", obs.LocalID(), m.ID)
			}
			if m.Meta != subj.cfg.Meta || m.Addr != subj.Addr() || m.Local != (subj == obs) {
				t.Errorf("%s sees %s as %+v; want meta %+v addr %s local %v", obs.LocalID(), m.ID, m, subj.cfg.Meta, subj.Addr(), subj == obs)
			}
			if m.SeenAt.IsZero() && !m.Local {
				t.Errorf("%s: SeenAt of %s is zero", obs.LocalID(), m.ID)
			}
		}
	}

	// A change in c's load reaches a and b within a few intervals, and
	// their LoadAt for c advances.
	before := make(map[*testNode]time.Time)
	for _, obs := range []*testNode{a, b} {
		eventually(t, 2*time.Second, obs.LocalID()+" has a load report of c", func() error {
			m, err := member(obs, c.LocalID())
			if err == nil && m.LoadAt.IsZero() {
				err = errors.New("LoadAt zero")
			}
			before[obs] = m.LoadAt
			return err
		})
	}
	c.calls.Store(7)
	for _, obs := range []*testNode{a, b} {
		eventually(t, 10*testLoadInterval, obs.LocalID()+" sees c's new load", func() error {
			m, _ := member(obs, c.LocalID())
			if m.Load.ActiveCalls != 7 || m.Load.Activations["call"] != 7 || m.Load.CPU != 0.25 {
				return fmt.Errorf("load %+v", m.Load)
			}
			if !m.LoadAt.After(before[obs]) {
				return fmt.Errorf("LoadAt %v did not advance from %v", m.LoadAt, before[obs])
			}
			return nil
		})
	}
	if m, _ := member(c, c.LocalID()); m.Load.ActiveCalls != 7 || !m.Local || m.LoadAt.IsZero() {
		t.Errorf("c's own entry: %+v", m)
	}

	// Load reports alone do not call OnChange: let a receive five more
	// reports from c and check its count stays put.
	changes := a.changes.Load()
	m0, _ := member(a, c.LocalID())
	eventually(t, 3*time.Second, "five more reports at a", func() error {
		m, _ := member(a, c.LocalID())
		if m.LoadAt.Sub(m0.LoadAt) < 5*testLoadInterval {
			return fmt.Errorf("LoadAt advanced by %v", m.LoadAt.Sub(m0.LoadAt))
		}
		return nil
	})
	if got := a.changes.Load(); got != changes {
		t.Errorf("OnChange called %d times on load reports alone", got-changes)
	}
}

// A node that stops without Leave is suspected, then declared dead (SWIM
// with Lifeguard); a node restarted under the same name with a new ID is a
// new member beside the dead one (DESIGN.md: ids that left are blocked
// forever, so a restarted node needs a new id).
func TestCluster_ShutdownWithoutLeaveIsSuspectThenDeadAndRestartIsANewMember(t *testing.T) {
	t.Parallel()
	a := startNode(t, "a", nil)
	b := startNode(t, "b", joinTo(a))
	c := startNode(t, "c", joinTo(a))
	for _, n := range []*testNode{a, b, c} {
		eventually(t, 5*time.Second, n.LocalID()+" sees 3 alive", func() error { return allAlive(n, 3) })
	}
	changesA := a.changes.Load()
	cAddr, cID := c.Addr(), c.LocalID()
	c.stop()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}

	sawSuspect := map[*testNode]bool{}
	for _, obs := range []*testNode{a, b} {
		eventually(t, 15*time.Second, obs.LocalID()+" sees c dead", func() error {
			switch s := statusOf(obs, cID); s {
			case StatusSuspect:
				sawSuspect[obs] = true
			case StatusDead:
				return nil
			case StatusAlive:
				if sawSuspect[obs] {
					return errors.New("c back to alive after suspect")
				}
			default:
				return fmt.Errorf("c is %q", s)
			}
			return fmt.Errorf("c is %s", statusOf(obs, cID))
		})
	}
	if !sawSuspect[a] && !sawSuspect[b] {
		t.Error("neither a nor b saw c suspect before dead")
	}
	if a.changes.Load() <= changesA {
		t.Error("OnChange not called on a for c's failure")
	}

	// Restart c under the same name and gossip address, with a new ID.
	c2 := startNode(t, "c", func(cfg *Config) {
		cfg.BindAddr = cAddr
		cfg.Join = []string{a.Addr()}
	})
	if c2.LocalID() == cID {
		t.Fatal("test setup: restart reused the ID")
	}
	for _, obs := range []*testNode{a, b, c2} {
		eventually(t, 5*time.Second, obs.LocalID()+" sees the restarted c", func() error {
			if s := statusOf(obs, c2.LocalID()); s != StatusAlive {
				return fmt.Errorf("new c is %q", s)
			}
			return nil
		})
	}
	for _, obs := range []*testNode{a, b} {
		ms := obs.Members()
		if len(ms) != 4 {
			t.Fatalf("%s lists %d members, want 4 (a, b, old c, new c): %+v", obs.LocalID(), len(ms), ms)
		}
		old, _ := member(obs, cID)
		cur, _ := member(obs, c2.LocalID())
		if old.Status != StatusDead || old.Meta.Name != "c" || cur.Status != StatusAlive || cur.Meta.Name != "c" || old.Addr != cur.Addr {
			t.Errorf("%s: old c %+v, new c %+v", obs.LocalID(), old, cur)
		}
	}
}

func TestCluster_LeaveIsSeenAsLeft(t *testing.T) {
	t.Parallel()
	a := startNode(t, "a", nil)
	b := startNode(t, "b", joinTo(a))
	for _, n := range []*testNode{a, b} {
		eventually(t, 5*time.Second, n.LocalID()+" sees 2 alive", func() error { return allAlive(n, 2) })
	}
	changesA := a.changes.Load()
	if err := b.Leave(time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	eventually(t, 3*time.Second, "a sees b left", func() error {
		if s := statusOf(a, b.LocalID()); s != StatusLeft {
			return fmt.Errorf("b is %q", s)
		}
		return nil
	})
	if m, _ := member(b, b.LocalID()); m.Status != StatusLeft {
		t.Errorf("b sees itself %s", m.Status)
	}
	eventually(t, 2*time.Second, "OnChange on a", func() error {
		if a.changes.Load() <= changesA {
			return errors.New("not called")
		}
		return nil
	})
	// Left, not dead: it stays left while memberlist still runs and after it
	// stops.
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := b.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Shutdown = %v, want ErrClosed", err)
	}
	if s := statusOf(a, b.LocalID()); s != StatusLeft {
		t.Errorf("after b's shutdown a sees it %s", s)
	}
}

// memberlist may leave a member unaware of another until its next
// push-pull (15-30s), e.g. when both joined through the same seed at once.
// The other's load reports arrive all the same; one from a node memberlist
// has not announced starts a state sync with its sender.
func TestCluster_ReportFromUnannouncedNodeTriggersSync(t *testing.T) {
	t.Parallel()
	a := startNode(t, "a", nil)
	b := startNode(t, "b", joinTo(a))
	c := startNode(t, "c", nil) // a cluster of its own
	for _, n := range []*testNode{a, b} {
		eventually(t, 5*time.Second, n.LocalID()+" sees 2 alive", func() error { return allAlive(n, 2) })
	}
	if _, err := member(b, c.LocalID()); err == nil {
		t.Fatal("test setup: b knows c")
	}
	// c's report reaches b as if relayed by gossip.
	b.receive(encodeLoadReport(loadReport{ID: c.LocalID(), Addr: c.Addr(), Epoch: 1, Seq: 1}), false)
	for _, n := range []*testNode{a, b, c} {
		eventually(t, 3*time.Second, n.LocalID()+" sees 3 alive", func() error { return allAlive(n, 3) })
	}
}

// The seed is not up when the node starts; Run keeps trying and joins once
// the seed listens on that port, without a restart.
func TestRun_JoinRetriesUntilSeedIsUp(t *testing.T) {
	t.Parallel()
	seedAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	b := startNode(t, "b", func(c *Config) { c.Join = []string{seedAddr} })
	eventually(t, 3*time.Second, "b retries", func() error {
		if n := b.joinAttempts.Load(); n < 3 {
			return fmt.Errorf("%d attempts", n)
		}
		return nil
	})
	if b.Joined() {
		t.Fatal("Joined() before any seed was up")
	}
	a := startNode(t, "a", func(c *Config) { c.BindAddr = seedAddr })
	eventually(t, 3*time.Second, "b joins", func() error {
		if !b.Joined() {
			return errors.New("not joined")
		}
		return nil
	})
	for _, n := range []*testNode{a, b} {
		eventually(t, 3*time.Second, n.LocalID()+" sees 2 alive", func() error { return allAlive(n, 2) })
	}
}

func TestCluster_EncryptedNodesConvergeAndAnotherKeyCannotJoin(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	withKey := func(k []byte, seeds ...*testNode) func(*Config) {
		return func(c *Config) {
			c.SecretKey = k
			joinTo(seeds...)(c)
		}
	}
	a := startNode(t, "a", withKey(key))
	b := startNode(t, "b", withKey(key, a))
	for _, n := range []*testNode{a, b} {
		eventually(t, 5*time.Second, n.LocalID()+" sees 2 alive", func() error { return allAlive(n, 2) })
	}
	eventually(t, 2*time.Second, "load over encrypted gossip", func() error {
		if m, _ := member(a, b.LocalID()); m.LoadAt.IsZero() {
			return errors.New("no load report from b")
		}
		return nil
	})

	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"other key", []byte("fedcba9876543210")},
		{"no key", nil},
	} {
		x := startNode(t, "x", withKey(tc.key, a))
		eventually(t, 5*time.Second, tc.name+": several failed attempts", func() error {
			if n := x.joinAttempts.Load(); n < 3 {
				return fmt.Errorf("%d attempts", n)
			}
			return nil
		})
		if x.Joined() {
			t.Errorf("%s: joined a cluster keyed differently", tc.name)
		}
		if _, err := member(a, x.LocalID()); err == nil {
			t.Errorf("%s: a lists the intruder", tc.name)
		}
		if len(x.Members()) != 1 {
			t.Errorf("%s: intruder sees %+v", tc.name, x.Members())
		}
	}
}

func TestUpdateMeta_RegossipsAndRefusesOversize(t *testing.T) {
	t.Parallel()
	a := startNode(t, "a", nil)
	b := startNode(t, "b", joinTo(a))
	for _, n := range []*testNode{a, b} {
		eventually(t, 5*time.Second, n.LocalID()+" sees 2 alive", func() error { return allAlive(n, 2) })
	}
	changesA := a.changes.Load()
	meta := b.cfg.Meta
	meta.SIP = "127.0.0.1:5070"
	if err := b.UpdateMeta(meta); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	eventually(t, 3*time.Second, "a sees b's new metadata", func() error {
		if m, _ := member(a, b.LocalID()); m.Meta != meta {
			return fmt.Errorf("meta %+v", m.Meta)
		}
		if a.changes.Load() <= changesA {
			return errors.New("OnChange not called")
		}
		return nil
	})

	big := meta
	big.Name = string(make([]byte, MaxMetaSize))
	if err := b.UpdateMeta(big); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("UpdateMeta(oversized) = %v, want ErrMetaTooLarge", err)
	}
	if m, _ := member(b, b.LocalID()); m.Meta != meta {
		t.Fatalf("oversized update changed local meta: %+v", m.Meta)
	}
}

func TestGossip_LifecycleEdges(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	self := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := DefaultConfig()
	cfg.ID, cfg.BindAddr, cfg.Profile = "solo", self, ProfileLocal
	cfg.Join = []string{self} // its own address only: it is the first node
	cfg.LoadFunc = func() Load { return Load{} }
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Joined() || g.Addr() != self || g.LocalID() != "solo" {
		t.Errorf("Joined=%v Addr=%s LocalID=%s", g.Joined(), g.Addr(), g.LocalID())
	}
	if ms := g.Members(); len(ms) != 1 || !ms[0].Local || ms[0].Status != StatusAlive || ms[0].Addr != self {
		t.Errorf("Members: %+v", ms)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	eventually(t, 2*time.Second, "Run started", func() error {
		if !g.running.Load() {
			return errors.New("not yet")
		}
		return nil
	})
	if err := g.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	// Shutdown ends Run, is idempotent, and later calls say ErrClosed.
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run after Shutdown = %v, want nil", err)
	}
	cancel()
	if err := g.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := g.UpdateMeta(Meta{}); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Shutdown = %v", err)
	}
	if err := g.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Shutdown = %v", err)
	}

	// A second Gossip on a port in use fails with an error.
	h := startNode(t, "h", nil)
	cfg.ID, cfg.BindAddr = "clash", h.Addr()
	if g2, err := New(cfg); err == nil {
		g2.Shutdown()
		t.Error("New on a port in use succeeded")
	}
}
