//go:build !race

// The in-process cluster tests run several nodes in one process, which
// protoactor-go does not support under the race detector: remote.Start
// writes grpclog's global logger while other nodes' gRPC goroutines read
// it, and its cluster gossip shares one math/rand source between members.
// Multi-node behaviour under -race is covered by the process-level tests
// (cmd/switchboard), whose nodes are separate processes. make test runs
// these without -race.

package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/cluster/clusterpb"
	"github.com/switchboard-pbx/switchboard/cluster/gossip"
	"github.com/switchboard-pbx/switchboard/internal/leaktest"
	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/placement"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// testNode is one node of an in-process cluster: an actor system with the
// cluster lookup, on a store shared by all (as PostgreSQL would be).
type testNode struct {
	name   string
	sys    *actors.System
	member *Membership
	closed atomic.Bool
}

// liveCounter checks that at most one activation of an identity is live
// at any moment, across all nodes of a test.
type liveCounter struct {
	mu       sync.Mutex
	live     map[string]int
	started  atomic.Int64
	overlaps atomic.Int64
}

func newLiveCounter() *liveCounter { return &liveCounter{live: map[string]int{}} }

func (c *liveCounter) activated(a *actors.Activation) {
	c.started.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	k := a.Kind + "/" + a.Identity
	c.live[k]++
	if c.live[k] > 1 {
		c.overlaps.Add(1)
	}
}

func (c *liveCounter) stopped(a *actors.Activation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live[a.Kind+"/"+a.Identity]--
}

func startNode(t *testing.T, name string, store persistence.Store, live *liveCounter, join ...string) *testNode {
	t.Helper()
	return startPoolNode(t, name, "default", store, live, join...)
}

func startPoolNode(t *testing.T, name, pool string, store persistence.Store, live *liveCounter, join ...string) *testNode {
	t.Helper()
	m := newTestMembership(t, name, pool, join)
	n := &testNode{name: name, member: m}
	cfg := actors.Config{Store: store, Zone: "sip.test", IdleTimeout: time.Hour, Node: name, NewLookup: m.Start}
	if live != nil {
		cfg.OnActivated, cfg.OnStopped = live.activated, live.stopped
	}
	n.start(t, cfg)
	t.Cleanup(func() { n.stop(true) })
	return n
}

// newTestMembership is a member on ports of its own, with tests' timings.
func newTestMembership(tb testing.TB, name, pool string, join []string) *Membership {
	tb.Helper()
	m, err := New(Config{
		Name: name, Pool: pool, ActorAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", Join: join,
		Profile: "local", LoadInterval: 100 * time.Millisecond,
		Lookup: LookupConfig{HandoverTimeout: 2 * time.Second},
		// Members in one process share its CPU, which a loaded machine
		// would put over tier 2's CPU limit for all of them.
		CPU: func() float64 { return 0 },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// start starts the node's actor system (whose lookup starts the member)
// and joins the cluster.
func (n *testNode) start(tb testing.TB, cfg actors.Config) {
	tb.Helper()
	sys, err := actors.New(cfg)
	if err != nil {
		_ = n.member.Close()
		tb.Fatal(err)
	}
	n.sys = sys
	if err := n.member.Join(Services{}); err != nil {
		_ = sys.Close()
		_ = n.member.Close()
		tb.Fatal(err)
	}
}

// stop shuts the node down; graceful leaves first, otherwise it vanishes
// as a crashed node would (no leave, no goodbye).
func (n *testNode) stop(graceful bool) {
	if n.closed.Swap(true) {
		return
	}
	if graceful {
		// As a node drains: no new placements here, actors passivated
		// (their next message activates them elsewhere), then leave.
		n.member.SetDraining()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = n.sys.PassivateAll(ctx)
		cancel()
		_ = n.member.Leave(time.Second)
	}
	_ = n.sys.Close()
	_ = n.member.Close()
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// converged reports whether every node sees exactly want alive members in
// its lookup's topology.
func converged(nodes []*testNode, want int) bool {
	for _, n := range nodes {
		n.member.lookup.mu.Lock()
		got := len(n.member.lookup.topo.ids)
		n.member.lookup.mu.Unlock()
		if got != want {
			return false
		}
		alive := 0
		for _, m := range n.member.Members() {
			if m.Status == gossip.StatusAlive {
				alive++
			}
		}
		if alive != want {
			return false
		}
	}
	return true
}

func request[T proto.Message](t *testing.T, n *testNode, kind, id string, msg proto.Message) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := n.sys.Request(ctx, kind, id, msg)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", n.name, kind, id, err)
	}
	out, ok := rep.(T)
	if !ok {
		t.Fatalf("%s: %s %s: reply %T", n.name, kind, id, rep)
	}
	return out
}

func startCluster(t *testing.T, store persistence.Store, live *liveCounter, names ...string) []*testNode {
	t.Helper()
	first := startNode(t, names[0], store, live)
	nodes := []*testNode{first}
	for _, name := range names[1:] {
		nodes = append(nodes, startNode(t, name, store, live, first.member.GossipAddr()))
	}
	waitFor(t, fmt.Sprintf("%d nodes to converge", len(names)), 20*time.Second, func() bool { return converged(nodes, len(names)) })
	return nodes
}

func TestCluster_ThreeNodesConvergeAndProvisioningReachesTheActor(t *testing.T) {
	store := persistence.NewMemory()
	nodes := startCluster(t, store, nil, "a", "b", "c")
	for i := range 30 {
		id := fmt.Sprintf("acct%d", i)
		via := nodes[i%3]
		if r := request[*actorpb.AccountReply](t, via, actors.KindAccount, id, &actorpb.PutAccount{DisplayName: id}); r.Error != nil {
			t.Fatal(r.Error)
		}
		for _, n := range nodes {
			r := request[*actorpb.AccountReply](t, n, actors.KindAccount, id, &actorpb.GetAccount{})
			if r.Error != nil || r.Account.DisplayName != id {
				t.Fatalf("%s reading %s: %+v", n.name, id, r)
			}
		}
	}
	// Every account lives on exactly one node, and all three host some.
	lists, err := nodes[0].member.ClusterActivations(context.Background(), &clusterpb.ListActivations{Kind: actors.KindAccount})
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	perNode := map[string]int{}
	for _, l := range lists {
		for _, a := range l.Activations {
			if prev, dup := where[a.Identity]; dup {
				t.Fatalf("%s lives on %s and %s", a.Identity, prev, l.MemberId)
			}
			where[a.Identity] = l.MemberId
			perNode[l.MemberId]++
		}
	}
	if len(where) != 30 || len(perNode) != 3 {
		t.Fatalf("30 accounts on %d distinct ids over %d nodes: %v", len(where), len(perNode), perNode)
	}
	// Paged, four a page: each member answers its first four after the
	// cursor in key order and its counts; merged, every account comes
	// once.
	seen, after := map[string]int{}, ""
	for range 30 {
		lists, err := nodes[1].member.ClusterActivations(context.Background(), &clusterpb.ListActivations{Kind: actors.KindAccount, AfterKind: actors.KindAccount, AfterIdentity: after, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		var merged []string
		more := false
		for _, l := range lists {
			if len(l.Activations) > 4 || l.Counts[actors.KindAccount] != int64(perNode[l.MemberId]) {
				t.Fatalf("member %s: a page of %d, counts %v (hosts %d)", l.MemberId, len(l.Activations), l.Counts, perNode[l.MemberId])
			}
			for _, a := range l.Activations {
				if a.Identity <= after {
					t.Fatalf("member %s listed %s after the cursor %s", l.MemberId, a.Identity, after)
				}
				merged = append(merged, a.Identity)
			}
			more = more || l.More
		}
		slices.Sort(merged)
		merged = merged[:min(4, len(merged))]
		for _, id := range merged {
			seen[id]++
		}
		if !more && len(merged) < 4 || len(merged) == 0 {
			break
		}
		after = merged[len(merged)-1]
	}
	for id, n := range seen {
		if n != 1 || where[id] == "" {
			t.Fatalf("paged: %s listed %d times", id, n)
		}
	}
	if len(seen) != 30 {
		t.Fatalf("paged: %d of 30 accounts listed", len(seen))
	}
	// The directory owner can say why.
	rep, err := nodes[1].member.Describe(context.Background(), actors.KindAccount, "acct7")
	if err != nil || !rep.Found || rep.Placement.GetStrategy() == "" || rep.Placement.GetReason() == "" {
		t.Fatalf("describe: %+v %v", rep, err)
	}
}

// A join kills nothing: activations keep living where they are, with
// their in-memory state, when a third node joins.
func TestCluster_JoinKillsNoActivation(t *testing.T) {
	store := persistence.NewMemory()
	live := newLiveCounter()
	nodes := startCluster(t, store, live, "a", "b")
	const n = 1000
	for i := range n {
		request[*actorpb.AccountReply](t, nodes[i%2], actors.KindAccount, fmt.Sprintf("acct%d", i), &actorpb.GetAccount{})
	}
	if got := live.started.Load(); got != n {
		t.Fatalf("%d activations for %d identities", got, n)
	}
	c := startNode(t, "c", store, live, nodes[0].member.GossipAddr())
	nodes = append(nodes, c)
	waitFor(t, "3 nodes to converge", 20*time.Second, func() bool { return converged(nodes, 3) })
	for i := range n {
		request[*actorpb.AccountReply](t, nodes[i%3], actors.KindAccount, fmt.Sprintf("acct%d", i), &actorpb.GetAccount{})
	}
	if got := live.started.Load(); got != n {
		t.Fatalf("after the join, %d activations were started anew (some were killed or duplicated)", got-n)
	}
	if len(c.sys.Activations("")) != 0 {
		t.Fatalf("the new node hosts %d old identities", len(c.sys.Activations("")))
	}
}

// No duplicate activation: one identity hammered from every node while
// nodes join and leave is never live twice at once.
func TestCluster_NoDuplicateActivationWhileNodesComeAndGo(t *testing.T) {
	store := persistence.NewMemory()
	live := newLiveCounter()
	nodes := startCluster(t, store, live, "a", "b", "c")
	const hot = 24 // identities hammered; some change owner on a join
	var mu sync.Mutex
	current := append([]*testNode(nil), nodes...)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				n := current[(w+i)%len(current)]
				mu.Unlock()
				if n.closed.Load() {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := n.sys.Request(ctx, actors.KindAccount, fmt.Sprintf("hot%d", i%hot), &actorpb.GetAccount{})
				cancel()
				if err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	waitFor(t, "every hot identity to be active", 20*time.Second, func() bool { return live.started.Load() >= hot })
	// Join d; then the node hosting most hot identities drains and
	// leaves; then join e.
	d := startNode(t, "d", store, live, nodes[0].member.GossipAddr())
	mu.Lock()
	current = append(current, d)
	mu.Unlock()
	all := []*testNode{nodes[0], nodes[1], nodes[2], d}
	waitFor(t, "4 nodes", 20*time.Second, func() bool { return converged(all, 4) })
	leaver, most := all[0], -1
	for _, n := range all {
		if k := len(n.sys.Activations(actors.KindAccount)); k > most {
			leaver, most = n, k
		}
	}
	var rest []*testNode
	for _, n := range all {
		if n != leaver {
			rest = append(rest, n)
		}
	}
	mu.Lock()
	current = rest
	mu.Unlock()
	leaver.stop(true)
	waitFor(t, "3 nodes after a leave", 20*time.Second, func() bool { return converged(rest, 3) })
	e := startNode(t, "e", store, live, rest[0].member.GossipAddr())
	mu.Lock()
	current = append(current, e)
	mu.Unlock()
	waitFor(t, "4 nodes again", 20*time.Second, func() bool { return converged(append(rest, e), 4) })
	close(stop)
	wg.Wait()
	if ok.Load() == 0 {
		t.Fatal("no request succeeded")
	}
	if most <= 0 || live.started.Load() <= hot {
		t.Fatalf("the leaver hosted %d identities and %d activations happened: nothing moved, the test proves nothing", most, live.started.Load())
	}
	if n := live.overlaps.Load(); n > 0 {
		t.Fatalf("an identity was live twice at once %d times (%d activations in all)", n, live.started.Load())
	}
	t.Logf("%d requests answered, %d failed during membership changes, %d activations", ok.Load(), failed.Load(), live.started.Load())
}

// A crashed node's actors reactivate on the survivors from the shared
// store on their next message.
func TestCluster_CrashedNodesActorsReactivateElsewhere(t *testing.T) {
	store := persistence.NewMemory()
	nodes := startCluster(t, store, nil, "a", "b", "c")
	for i := range 60 {
		if r := request[*actorpb.AccountReply](t, nodes[0], actors.KindAccount, fmt.Sprintf("acct%d", i), &actorpb.PutAccount{DisplayName: "v1"}); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
	victim := nodes[2]
	hosted := len(victim.sys.Activations(actors.KindAccount))
	if hosted == 0 {
		t.Fatal("the victim hosts nothing; the test proves nothing")
	}
	victim.stop(false)
	survivors := nodes[:2]
	waitFor(t, "the survivors to mark the crashed node dead", 30*time.Second, func() bool {
		for _, n := range survivors {
			dead := false
			for _, m := range n.member.Members() {
				if m.ID == victim.member.ID() && m.Status == gossip.StatusDead {
					dead = true
				}
			}
			if !dead {
				return false
			}
		}
		return converged(survivors, 2)
	})
	for i := range 60 {
		r := request[*actorpb.AccountReply](t, survivors[i%2], actors.KindAccount, fmt.Sprintf("acct%d", i), &actorpb.GetAccount{})
		if r.Error != nil || r.Account.DisplayName != "v1" {
			t.Fatalf("acct%d after the crash: %+v", i, r)
		}
	}
}

// Tier 2 (abstract 4): a call is placed on a node of its group's pool that
// meets the predefined conditions, spread by power of two choices; a full
// pool overflows to its overflow pool, or refuses; a crashed node's share
// goes to the rest of the pool.
func TestCluster_Tier2CallsStayInTheirPoolAndOverflow(t *testing.T) {
	store := persistence.NewMemory()
	a := startPoolNode(t, "a", "p1", store, nil)
	b := startPoolNode(t, "b", "p1", store, nil, a.member.GossipAddr())
	c := startPoolNode(t, "c", "p2", store, nil, a.member.GossipAddr())
	nodes := []*testNode{a, b, c}
	waitFor(t, "3 nodes", 20*time.Second, func() bool { return converged(nodes, 3) })
	seq := 0
	start := func(via *testNode, hint actors.Hint) (string, error) {
		t.Helper()
		seq++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rep, err := via.sys.RequestWithHint(ctx, actors.KindCall, fmt.Sprintf("call%d", seq), hint, &actorpb.StartCall{Call: &actorpb.CallRecord{Pool: hint.Pool}})
		if err != nil {
			return "", err
		}
		cr := rep.(*actorpb.CallReply)
		if cr.Error != nil {
			t.Fatalf("start call: %v", cr.Error)
		}
		return cr.Call.Node, nil
	}
	count := func() map[string]int {
		out := map[string]int{}
		for _, n := range nodes {
			if !n.closed.Load() {
				out[n.name] = len(n.sys.Activations(actors.KindCall))
			}
		}
		return out
	}
	roomy := actors.Hint{Pool: "p1", CallCapacity: 100}
	for i := range 30 {
		if _, err := start(nodes[i%3], roomy); err != nil {
			t.Fatal(err)
		}
	}
	got := count()
	if got["c"] != 0 || got["a"] < 5 || got["b"] < 5 {
		t.Fatalf("30 calls of pool p1 landed %v: want all on a and b, spread", got)
	}
	// Capacity 20 per node: p1 holds at most 40; the rest overflow to p2.
	tight := actors.Hint{Pool: "p1", CallCapacity: 20, Overflow: "p2", OverflowCapacity: 100}
	for i := range 30 {
		if _, err := start(nodes[i%3], tight); err != nil {
			t.Fatal(err)
		}
	}
	got = count()
	if got["a"] > 20 || got["b"] > 20 || got["a"]+got["b"]+got["c"] != 60 || got["c"] < 20 {
		t.Fatalf("with capacity 20 per node and overflow p2: %v", got)
	}
	// No overflow pool: a full pool refuses with ErrNoCapacity.
	if _, err := start(a, actors.Hint{Pool: "p1", CallCapacity: 20}); !errors.Is(err, placement.ErrNoCapacity) {
		t.Fatalf("a call to a full pool without overflow: %v", err)
	}
	// b crashes: its calls are gone (calls never migrate), and new calls of
	// p1 go to a alone.
	b.stop(false)
	waitFor(t, "2 nodes", 30*time.Second, func() bool { return converged([]*testNode{a, c}, 2) })
	before := count()
	for i := range 10 {
		node, err := start([]*testNode{a, c}[i%2], roomy)
		if err != nil {
			t.Fatal(err)
		}
		if node != "a" {
			t.Fatalf("a p1 call after b crashed landed on %s", node)
		}
	}
	if after := count(); after["a"] != before["a"]+10 {
		t.Fatalf("calls on a: %d then %d", before["a"], after["a"])
	}
}
