package actors

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/internal/memstat"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// BenchmarkAccount_MemoryPerActiveAccount: what b.N idle but active
// accounts (one group, five devices each) cost, per account: their live
// state (the heap they hold after a collection) and the resident memory
// the process grew by while activating them (no collection forced, as a
// running node does), and the ratio resident/live (goal: at most 3).
// Side by side: the collector at GC percent 400 (a node's former fixed
// policy) and at 100 (Go's default, the policy with --memory-limit).
//
//	go test -run '^$' -bench MemoryPerActiveAccount -benchtime 5000x ./actors/
func BenchmarkAccount_MemoryPerActiveAccount(b *testing.B) {
	for _, gc := range []int{400, 100} {
		b.Run("gc="+strconv.Itoa(gc), func(b *testing.B) {
			s := newBenchAccounts(b, b.N)
			defer debug.SetGCPercent(debug.SetGCPercent(gc))
			runtime.GC()
			debug.FreeOSMemory()
			heap0, rss0 := memstat.LiveHeap(), resident(b)
			b.ResetTimer()
			for i := range b.N {
				mustOK(b, s, benchAccountID(i), &actorpb.GetAccount{})
			}
			b.StopTimer()
			rss1 := resident(b)
			heap1 := memstat.LiveHeap()
			if n := len(s.Activations(KindAccount)); n != b.N {
				b.Fatalf("%d accounts active, want %d", n, b.N)
			}
			live := (float64(heap1) - float64(heap0)) / float64(b.N)
			rss := (float64(rss1) - float64(rss0)) / float64(b.N)
			b.ReportMetric(live, "live-B/account")
			b.ReportMetric(rss, "rss-B/account")
			b.ReportMetric(rss/live, "rss/live")
		})
	}
}

func benchAccountID(i int) string { return "acct" + strconv.Itoa(i) }

// newBenchAccounts provisions n accounts of one group and five devices
// in a memory store and passivates them all.
func newBenchAccounts(b *testing.B, n int) *System {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Store, cfg.Zone, cfg.IdleTimeout = persistence.NewMemory(), "sip.test", time.Hour
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	for i := range n {
		a := benchAccountID(i)
		mustOK(b, s, a, &actorpb.PutAccount{})
		mustOK(b, s, a, &actorpb.PutGroup{Group: &actorpb.Group{Id: "hq"}})
		for d := range 5 {
			dev := fmt.Sprintf("d%d", d)
			h := credential.Derive(dev, a+".sip.test", "password-"+dev)
			mustOK(b, s, a, &actorpb.PutDevice{Device: dev, Group: "hq", Ha1Md5: h.MD5, Ha1Sha256: h.SHA256})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.PassivateAll(ctx); err != nil {
		b.Fatal(err)
	}
	return s
}

// resident is the process's resident set; the benchmark skips where it
// cannot be read.
func resident(b *testing.B) uint64 {
	b.Helper()
	r, err := memstat.Resident()
	if err != nil {
		b.Skip(err)
	}
	return r
}
