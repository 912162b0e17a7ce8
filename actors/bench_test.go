package actors

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// BenchmarkAccountRequest measures request/reply through the lookup and the
// shell to an account actor on one node, beside the baseline of a bare
// protoactor request to an echo actor in the same run. Compare ns/op:
// baseline / ours is the fraction of protoactor's speed we keep.
//
//	go test -run '^$' -bench AccountRequest ./actors/
func BenchmarkAccountRequest(b *testing.B) {
	b.Run("baseline=protoactor-echo", func(b *testing.B) {
		as := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.DiscardHandler)
		}))
		defer as.Shutdown()
		pid := as.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(*actorpb.GetAccount); ok {
				c.Respond(&actorpb.AccountReply{})
			}
		}))
		b.ResetTimer()
		for range b.N {
			if _, err := as.Root.RequestFuture(pid, &actorpb.GetAccount{}, 5*time.Second).Result(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		_ = as.Root.StopFuture(pid).Wait()
	})
	b.Run("get/memory", func(b *testing.B) {
		s := benchSystem(b, persistence.NewMemory())
		b.ResetTimer()
		for range b.N {
			if _, err := s.Request(context.Background(), KindAccount, "acme", &actorpb.GetAccount{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-parallel/memory", func(b *testing.B) {
		s := benchSystem(b, persistence.NewMemory())
		for i := range 64 {
			mustOK(b, s, fmt.Sprintf("acct%d", i), &actorpb.PutAccount{})
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := s.Request(context.Background(), KindAccount, fmt.Sprintf("acct%d", i%64), &actorpb.GetAccount{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("put-device/badger", func(b *testing.B) {
		st, err := persistence.OpenBadger(b.TempDir(), persistence.DefaultBadgerConfig())
		if err != nil {
			b.Fatal(err)
		}
		s := benchSystem(b, st)
		b.Cleanup(func() { _ = st.Close() })
		h := credential.Derive("d", "acme.sip.test", "password")
		mustOK(b, s, "acme", &actorpb.PutGroup{Group: &actorpb.Group{Id: "hq"}})
		b.ResetTimer()
		for i := range b.N {
			mustOK(b, s, "acme", &actorpb.PutDevice{Device: fmt.Sprintf("d%d", i), Group: "hq", Ha1Md5: h.MD5, Ha1Sha256: h.SHA256})
		}
	})
}

func benchSystem(b *testing.B, st persistence.Store) *System {
	b.Helper()
	s, err := New(Config{Store: st, Zone: "sip.test"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	mustOK(b, s, "acme", &actorpb.PutAccount{})
	return s
}

func mustOK(b *testing.B, s *System, account string, msg proto.Message) {
	b.Helper()
	rep, err := s.Request(context.Background(), KindAccount, account, msg)
	if err != nil {
		b.Fatal(err)
	}
	if e := rep.(interface{ GetError() *actorpb.Error }).GetError(); e != nil {
		b.Fatal(e.Message)
	}
}

// BenchmarkCallLifecycle measures one call's StartCall, AnswerCall and
// EndCall on badger, as the SIP edge waits for them: beside the baseline
// of the records written through (each write synced before the reply),
// the committer's group commit (Config.RecordFlushInterval). Compare
// ns/op: baseline / group-commit is the speed-up. The group-commit run
// also reports how long its records took from written to durable
// (durable-p50-ms, -p99-ms, -max-ms): the bound the committer promises
// is the interval plus a commit or two.
//
//	go test -run '^$' -bench CallLifecycle -benchtime 2000x ./actors/
func BenchmarkCallLifecycle(b *testing.B) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{
		{"baseline=write-through/badger", -1},
		{"group-commit/badger", defaultRecordFlush},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st, err := persistence.OpenBadger(b.TempDir(), persistence.DefaultBadgerConfig())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			s, err := New(Config{Store: st, Zone: "sip.test", Node: "n1", RecordFlushInterval: tc.interval})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			var (
				mu  sync.Mutex
				lat []time.Duration
			)
			s.commits.onDurable = func(d time.Duration) {
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
			ctx := context.Background()
			call := func(id string, m proto.Message) {
				rep, err := s.Request(ctx, KindCall, id, m)
				if err != nil {
					b.Fatal(err)
				}
				if e := rep.(*actorpb.CallReply).Error; e != nil {
					b.Fatal(e.Message)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("bench-%d", i)
				call(id, &actorpb.StartCall{Call: &actorpb.CallRecord{Account: "acme", Caller: "alice", Callee: "bob"}})
				call(id, &actorpb.AnswerCall{Target: "192.0.2.9:5060"})
				call(id, &actorpb.EndCall{Status: 200, EndedBy: "caller", Disposition: "completed"})
			}
			b.StopTimer()
			if err := s.commits.sync(ctx); err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.interval < 0 || len(lat) == 0 {
				return
			}
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(ms(lat[len(lat)/2]), "durable-p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "durable-p99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "durable-max-ms")
		})
	}
}
