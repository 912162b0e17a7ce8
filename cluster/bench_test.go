//go:build !race

// Benchmarks of the identity lookup beside protoactor-go's own disthash
// lookup, run in the same process and the same run, so that their ratio
// means something on any machine. (Several nodes in one process: not
// under -race; see cluster_test.go.)
//
//	go test -run '^$' -bench . -benchtime 2000x ./cluster/
//
// Both sides call the same trivial echo actor (it answers GetAccount with an
// empty AccountReply) through each side's public request path:
//   - ours: actors.System.Request, which asks our Lookup (directory on the
//     rendezvous owner, placement, activator) and then sends to the PID;
//   - disthash: protoactor's cluster.Request (PidCache, then disthash's
//     placement actor on the rendezvous owner) on a cluster whose members
//     find each other through protoactor's in-memory test agent.
//
// The our-account variants send GetAccount to the real account actor on a
// memory store instead of the echo actor: what a provisioning read costs
// (warm: an account that exists; activations: fresh ids, so each
// activation reads the store and finds nothing).

package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	clustertest "github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// echoKind is the benchmarks' trivial kind on both sides.
const echoKind = "echo"

// echo answers GetAccount with an empty AccountReply and ignores the rest.
func echo(c actor.Context) {
	if _, ok := c.Message().(*actorpb.GetAccount); ok {
		c.Respond(&actorpb.AccountReply{})
	}
}

// BenchmarkWarmCall measures a request/reply to an already active actor:
// hosted on the calling node (local) or on the other node of two (remote).
// Compare ns/op of our/X with disthash/X: disthash_ns / our_ns is the
// fraction of protoactor's speed we keep (goal >= 0.9), reported on each
// disthash line. Pairs run back to back, so that they share the machine's
// state; ours runs first.
func BenchmarkWarmCall(b *testing.B) {
	ours := startBenchCluster(b)
	dh := startDisthashCluster(b)
	msg := &actorpb.GetAccount{}
	ctx := context.Background()
	a, d := ours[0], dh.nodes[0]
	local, remote := ourIdentityOn(b, a, echoKind, a), ourIdentityOn(b, a, echoKind, ours[1])
	alocal, aremote := ourIdentityOn(b, a, actors.KindAccount, a), ourIdentityOn(b, a, actors.KindAccount, ours[1])
	dlocal, dremote := dh.identityOn(b, d, d), dh.identityOn(b, d, dh.nodes[1])

	ns := map[string]float64{} // sub-benchmark -> ns/op of its last run
	run := func(name string, call func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if err := call(); err != nil {
					b.Fatal(err)
				}
			}
			ns[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if where, ok := strings.CutPrefix(name, "disthash/"); ok && ns["our/"+where] > 0 {
				b.ReportMetric(ns[name]/ns["our/"+where], "disthash_ns/our_ns")
			}
		})
	}
	ourCall := func(kind, id string) func() error {
		return func() error { _, err := a.sys.Request(ctx, kind, id, msg); return err }
	}
	dhCall := func(id string) func() error {
		return func() error { _, err := d.Request(id, echoKind, msg); return err }
	}
	run("our/local", ourCall(echoKind, local))
	run("disthash/local", dhCall(dlocal))
	run("our/remote", ourCall(echoKind, remote))
	run("disthash/remote", dhCall(dremote))
	run("our-account/local", ourCall(actors.KindAccount, alocal))
	run("our-account/remote", ourCall(actors.KindAccount, aremote))
}

// BenchmarkActivations measures activations: each op is the first request
// to a fresh identity on a two-node cluster, sent alternately from each
// node; seq sends one at a time, par from 16 callers per GOMAXPROCS.
// Compare activations/s of our/X with disthash/X; each disthash line
// reports the ratio our/disthash.
func BenchmarkActivations(b *testing.B) {
	ours := startBenchCluster(b)
	dh := startDisthashCluster(b)
	msg := &actorpb.GetAccount{}
	var seq atomic.Int64 // fresh ids across every run of every sub-benchmark
	fresh := func() (int, string) {
		n := int(seq.Add(1))
		return n, "fresh" + strconv.Itoa(n)
	}
	ourOne := func(kind string) func() error {
		return func() error {
			n, id := fresh()
			_, err := ours[n%2].sys.Request(context.Background(), kind, id, msg)
			return err
		}
	}
	dhOne := func() error {
		n, id := fresh()
		_, err := dh.nodes[n%2].Request(id, echoKind, msg)
		return err
	}
	rate := map[string]float64{} // sub-benchmark -> activations/s of its last run
	report := func(b *testing.B, name string) {
		r := float64(b.N) / b.Elapsed().Seconds()
		rate[name] = r
		b.ReportMetric(r, "activations/s")
		if mode, ok := strings.CutPrefix(name, "disthash/"); ok && rate["our/"+mode] > 0 {
			b.ReportMetric(rate["our/"+mode]/r, "our/disthash")
		}
	}
	serial := func(name string, one func() error) {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				if err := one(); err != nil {
					b.Fatal(err)
				}
			}
			report(b, name)
		})
	}
	parallel := func(name string, one func() error) {
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := one(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			report(b, name)
		})
	}
	serial("our/seq", ourOne(echoKind))
	serial("disthash/seq", dhOne)
	parallel("our/par", ourOne(echoKind))
	parallel("disthash/par", dhOne)
	serial("our-account/seq", ourOne(actors.KindAccount))
	parallel("our-account/par", ourOne(actors.KindAccount))
}

// ---- our side ----

// startBenchCluster starts two of our nodes on one memory store, each able
// to host echoKind beside the account and device group kinds, and waits
// until they see each other.
func startBenchCluster(tb testing.TB) []*testNode {
	tb.Helper()
	store := persistence.NewMemory()
	a := startEchoNode(tb, "a", store)
	nodes := []*testNode{a, startEchoNode(tb, "b", store, a.member.GossipAddr())}
	pollUntil(tb, "2 nodes to converge", 20*time.Second, func() bool { return converged(nodes, 2) })
	return nodes
}

// startEchoNode is startNode whose spawner also hosts echoKind, for a
// testing.TB. Its cleanup stops the node without draining: an echo actor
// does not passivate.
func startEchoNode(tb testing.TB, name string, store persistence.Store, join ...string) *testNode {
	tb.Helper()
	m := newTestMembership(tb, name, "default", join)
	n := &testNode{name: name, member: m}
	var seq atomic.Uint64
	n.start(tb, actors.Config{
		Store: store, Zone: "sip.test", IdleTimeout: time.Hour,
		NewLookup: func(as *actor.ActorSystem, spawn actors.Spawner, clk clock.Clock) (actors.Lookup, error) {
			withEcho := func(act *actors.Activation) (*actor.PID, error) {
				if act.Kind != echoKind {
					return spawn(act)
				}
				return as.Root.SpawnNamed(actor.PropsFromFunc(echo), act.Kind+"/"+act.Identity+"$"+strconv.FormatUint(seq.Add(1), 36))
			}
			return m.Start(as, withEcho, clk)
		},
	})
	tb.Cleanup(func() { n.stop(false) })
	return n
}

// ourIdentityOn activates identities of kind through via until one lands
// on host, and returns it; an account is also created, so that GetAccount
// reads a real one.
func ourIdentityOn(tb testing.TB, via *testNode, kind string, host *testNode) string {
	tb.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("warm-%s-%d", host.name, i)
		act, err := via.member.Lookup().Acquire(kind, id, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if act.PID.Address != host.member.ActorAddr() {
			continue
		}
		var first proto.Message = &actorpb.GetAccount{}
		if kind == actors.KindAccount {
			first = &actorpb.PutAccount{DisplayName: id}
		}
		rep, err := via.sys.Request(context.Background(), kind, id, first)
		if err != nil {
			tb.Fatal(err)
		}
		if r, ok := rep.(*actorpb.AccountReply); !ok || r.Error != nil {
			tb.Fatalf("%s %s answered %v", kind, id, rep)
		}
		return id
	}
	tb.Fatalf("no %s identity of 1000 was placed on %s", kind, host.name)
	return ""
}

// pollUntil is waitFor for a testing.TB.
func pollUntil(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

// ---- protoactor's disthash ----

// disthashCluster is two protoactor cluster members with the disthash
// identity lookup and the echo kind, in this process.
type disthashCluster struct {
	agent *clustertest.InMemAgent
	nodes []*protocluster.Cluster
}

func startDisthashCluster(tb testing.TB) *disthashCluster {
	tb.Helper()
	dc := &disthashCluster{agent: clustertest.NewInMemAgent()}
	for range 2 {
		dc.nodes = append(dc.nodes, dc.start(tb))
	}
	pollUntil(tb, "disthash members to see each other", 20*time.Second, func() bool {
		for _, c := range dc.nodes {
			if c.MemberList.Members().Len() != 2 {
				return false
			}
		}
		return true
	})
	return dc
}

func (dc *disthashCluster) start(tb testing.TB) *protocluster.Cluster {
	tb.Helper()
	as := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }),
		actor.WithDeadLetterRequestLogging(false),
	)
	p := &agentProvider{agent: dc.agent}
	// Remoting configured as Membership configures ours: like for like, and
	// the blocking dial keeps a dial to a stopped member from leaking a
	// reconnecting gRPC connection.
	rcfg := remote.Configure("127.0.0.1", 0, remote.WithDialOptions(
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithBlock(), grpc.FailOnNonTempDialError(true), grpc.WithTimeout(dialTimeout), //nolint:staticcheck // as in Start
	))
	rcfg.MaxRetryCount = 2
	cfg := protocluster.Configure("bench", p, disthash.New(), rcfg,
		protocluster.WithKinds(protocluster.NewKind(echoKind, actor.PropsFromFunc(echo))))
	c := protocluster.New(as, cfg)
	c.StartMember() // sleeps one second, by design
	tb.Cleanup(func() {
		_ = p.Shutdown(true)
		c.IdentityLookup.Shutdown()
		c.Gossip.Shutdown()
		// As Membership.Close: a graceful remote shutdown waits up to 10 s for
		// peers' streams; stop hard after a second.
		done := make(chan struct{})
		go func() {
			c.Remote.Shutdown(true)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
			c.Remote.Shutdown(false)
			<-done
		}
		as.Shutdown()
	})
	return c
}

// identityOn finds an identity whose disthash owner (and so host) is
// host, activates it through via, and returns it.
func (dc *disthashCluster) identityOn(tb testing.TB, via, host *protocluster.Cluster) string {
	tb.Helper()
	for i := range 1000 {
		id := fmt.Sprintf("warm-%s-%d", host.ActorSystem.ID, i)
		pid := via.Get(id, echoKind)
		if pid == nil {
			tb.Fatalf("disthash found no activation for %s", id)
		}
		if pid.Address == host.ActorSystem.Address() {
			if _, err := via.Request(id, echoKind, &actorpb.GetAccount{}); err != nil {
				tb.Fatal(err)
			}
			return id
		}
	}
	tb.Fatal("no identity of 1000 was owned by the wanted disthash member")
	return ""
}

// agentProvider is protoactor's test cluster provider
// (clusterproviders/test.Provider) without its TTL refresher: that
// goroutine ranges over a stopped ticker's channel and never returns,
// which the package's goroutine leak check would fail. Membership comes
// from the same in-memory agent.
type agentProvider struct {
	agent  *clustertest.InMemAgent
	id     string
	mu     sync.Mutex
	closed bool
}

func (p *agentProvider) StartMember(c *protocluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	p.id = c.ActorSystem.ID
	p.agent.SubscribeStatusUpdate(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			return // the agent cannot unsubscribe
		}
		var members []*protocluster.Member
		for _, s := range p.agent.GetStatusHealth() {
			members = append(members, &protocluster.Member{Id: s.ID, Host: s.Host, Port: int32(s.Port), Kinds: append([]string(nil), s.Kinds...)})
		}
		c.MemberList.UpdateClusterTopology(members)
	})
	p.agent.RegisterService(clustertest.NewAgentServiceStatus(p.id, host, port, c.GetClusterKinds()))
	return nil
}

func (p *agentProvider) StartClient(*protocluster.Cluster) error {
	return fmt.Errorf("bench: client members are not used")
}

func (p *agentProvider) Shutdown(bool) error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.agent.DeregisterService(p.id)
	return nil
}
