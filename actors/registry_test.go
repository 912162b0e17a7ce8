package actors

import (
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/internal/memstat"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// Activating and passivating an account 5,000 times leaves the heap where
// it was: nothing of a stopped activation stays behind (protoactor's
// process registry kept a grown map shard per fresh process id: +2.4 MB
// over this run before compactRegistry).
func TestPassivation_NoHeapCreepAcrossActivations(t *testing.T) {
	stopped := make(chan struct{}, 1)
	s := newSystem(t, persistence.NewMemory(), func(c *Config) {
		c.OnStopped = func(a *Activation) {
			if a.Kind == KindAccount {
				stopped <- struct{}{}
			}
		}
	})
	provision(t, s, "acme", "hq", "alice")
	cycle := func(n int) {
		t.Helper()
		for range n {
			ask[*actorpb.AccountReply](t, s, KindAccount, "acme", &actorpb.GetAccount{})
			acts := s.Activations(KindAccount)
			if len(acts) != 1 {
				t.Fatalf("%d account activations after a request", len(acts))
			}
			act := acts[0]
			// The shell refuses while the request still counts as pending
			// (the reply goes out first): ask again until it stops.
			deadline := time.After(10 * time.Second)
		wait:
			for {
				s.as.Root.Send(act.PID, passivate{force: true})
				select {
				case <-stopped:
					break wait
				case <-time.After(time.Millisecond):
				case <-deadline:
					t.Fatal("the activation did not stop")
				}
			}
		}
	}
	cycle(1000) // warm up: pools, metrics, the registry's shards
	before := memstat.LiveHeap()
	cycle(5000)
	after := memstat.LiveHeap()
	const bound = 256 << 10
	t.Logf("live heap %d -> %d bytes over 5,000 activate/passivate cycles", before, after)
	if after > before+bound {
		t.Fatalf("live heap grew by %d bytes over 5,000 activate/passivate cycles (bound %d)", after-before, bound)
	}
}
