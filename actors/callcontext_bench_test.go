package actors

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// The call context benchmarks of issue 11 that need no HTTP: a context
// loaded from the store against one already cached, and the memory an
// idle cached context takes beyond its payload. The HTTP figures (warm GET
// at 2,000 requests/s, PATCH to a proxy's subscriber) are in package node.
//
//	go test -run '^$' -bench CallContext -benchtime 2000x ./actors/

// benchContextPayload is a small app namespace, as a CRM would attach.
const benchContextPayload = `{"customer":{"id":"C-10442","name":"Ada Lovelace","tier":"gold"},"ticket":"T-88121","notes":"called twice this week about the invoice"}`

// benchContextSystem is a System whose clock is fixed, so that the hot
// lease keeps every ended call's context cached for the whole run.
func benchContextSystem(b *testing.B, st persistence.Store) *System {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Store, cfg.Zone = st, "sip.test"
	cfg.Clock = clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg.ContextCacheBytes = 4 << 30 // the budget must evict nothing here
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// benchContextRecords are the stored call record and context of an ended
// call id of account acme, as the call actor and one PATCH leave them.
func benchContextRecords(id string, ended time.Time) (*actorpb.CallRecord, *actorpb.CallContextRecord) {
	call := &actorpb.CallRecord{Id: id, Account: "acme", Caller: "alice", Callee: "bob", State: "ended",
		StartedAt: timestamppb.New(ended.Add(-time.Minute)), EndedAt: timestamppb.New(ended)}
	rec := &actorpb.CallContextRecord{Call: id, Account: "acme", Version: 1, Apps: map[string]*actorpb.AppNamespace{
		"crm": {Doc: []byte(benchContextPayload), User: "alice", At: timestamppb.New(ended), Version: 1}}}
	return call, rec
}

// storeBenchContexts writes n ended calls with their contexts, ids
// prefix0..prefix<n-1>, and returns the payload of one as the budget
// counts it (the two records' encoded size).
func storeBenchContexts(b *testing.B, s *System, prefix string, n int) int {
	b.Helper()
	payload := 0
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		call, rec := benchContextRecords(id, s.cfg.Clock.Now())
		for k, m := range map[string]proto.Message{callKey(id): call, callContextKey(id): rec} {
			v, err := proto.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.cfg.Store.Put(context.Background(), k, v, persistence.AnyVersion); err != nil {
				b.Fatal(err)
			}
		}
		payload = proto.Size(call) + proto.Size(rec)
	}
	return payload
}

func benchGetContext(b *testing.B, s *System, id string) {
	rep, err := s.Request(context.Background(), KindCallContext, id, &actorpb.GetContext{Account: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	if r, ok := rep.(*actorpb.ContextReply); !ok || r.Error != nil || r.Version != 1 {
		b.Fatalf("GetContext %s: %v", id, rep)
	}
}

// BenchmarkCallContext_ColdLoadVsWarmHit: each iteration reads a context
// not yet cached (the actor activated, its two records read from the
// store) and then reads it again (cached), through System.Request as the
// HTTP API does. The warm hit is the baseline beside the cold load of the
// same context in the same iteration; badger in a temporary folder as
// `make run` uses, and the memory store to show what of the cold cost is
// the store's. Reports each one's mean and p99 per request, and cold/warm.
func BenchmarkCallContext_ColdLoadVsWarmHit(b *testing.B) {
	engines := []struct {
		name string
		open func(b *testing.B) persistence.Store
	}{
		{"badger", func(b *testing.B) persistence.Store {
			st, err := persistence.OpenBadger(b.TempDir(), persistence.DefaultBadgerConfig())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			return st
		}},
		{"memory", func(*testing.B) persistence.Store { return persistence.NewMemory() }},
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := benchContextSystem(b, e.open(b))
			storeBenchContexts(b, s, "cold", b.N)
			cold, warm := make([]time.Duration, b.N), make([]time.Duration, b.N)
			b.ResetTimer()
			for i := range b.N {
				id := fmt.Sprintf("cold%d", i)
				t0 := time.Now()
				benchGetContext(b, s, id)
				t1 := time.Now()
				benchGetContext(b, s, id)
				cold[i], warm[i] = t1.Sub(t0), time.Since(t1)
			}
			b.StopTimer()
			if st := s.ContextStats(); st.Misses != uint64(b.N) || st.Hits != uint64(b.N) {
				b.Fatalf("%d misses and %d hits; want %d of each", st.Misses, st.Hits, b.N)
			}
			c, w := meanOf(cold), meanOf(warm)
			b.ReportMetric(float64(c.Nanoseconds()), "cold-ns/req")
			b.ReportMetric(float64(w.Nanoseconds()), "warm-ns/req")
			b.ReportMetric(float64(quantileOf(cold, 0.99).Nanoseconds()), "cold-p99-ns")
			b.ReportMetric(float64(quantileOf(warm, 0.99).Nanoseconds()), "warm-p99-ns")
			b.ReportMetric(float64(c)/float64(w), "cold/warm")
		})
	}
}

// BenchmarkCallContext_MemoryPerIdleContext: the heap that b.N idle cached
// contexts take (after a GC, with the store's copy of their records
// already counted before), per context and beyond the payload as the
// budget counts it (the encoded call record and context record;
// callcontext.EntryOverhead is meant to cover the rest; the goal is at
// most 4 KiB). Beside it, the same records held in a plain map (the
// decoded payload's own cost) and held by bare protoactor actors, one
// each (protoactor's process and mailbox): ours minus that baseline is
// what the shell, the activation, the lookup and the budget add.
func BenchmarkCallContext_MemoryPerIdleContext(b *testing.B) {
	var bareActor float64 // heap per protoactor baseline actor, once it ran
	b.Run("baseline=map", func(b *testing.B) {
		held := make(map[string][2]proto.Message)
		payload := 0
		perContext := measureHeap(b, func() {
			for i := range b.N {
				id := fmt.Sprintf("idle%d", i)
				call, rec := decodedRecords(b, id)
				held[id] = [2]proto.Message{call, rec}
				payload = proto.Size(call) + proto.Size(rec)
			}
		})
		runtime.KeepAlive(held)
		reportHeap(b, perContext, payload)
	})
	b.Run("baseline=protoactor", func(b *testing.B) {
		as := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.DiscardHandler)
		}))
		defer as.Shutdown()
		pids := make([]*actor.PID, 0, b.N)
		payload := 0
		perContext := measureHeap(b, func() {
			for i := range b.N {
				call, rec := decodedRecords(b, fmt.Sprintf("idle%d", i))
				payload = proto.Size(call) + proto.Size(rec)
				pid := as.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
					if _, ok := c.Message().(*actorpb.GetContext); ok {
						c.Respond(&actorpb.ContextReply{Version: rec.Version, View: []byte(call.Id)})
					}
				}))
				if _, err := as.Root.RequestFuture(pid, &actorpb.GetContext{}, 5*time.Second).Result(); err != nil {
					b.Fatal(err)
				}
				pids = append(pids, pid)
			}
		})
		reportHeap(b, perContext, payload)
		bareActor = perContext
		for _, pid := range pids {
			_ = as.Root.StopFuture(pid).Wait()
		}
	})
	b.Run("callcontext", func(b *testing.B) {
		s := benchContextSystem(b, persistence.NewMemory())
		payload := storeBenchContexts(b, s, "idle", b.N)
		perContext := measureHeap(b, func() {
			for i := range b.N {
				benchGetContext(b, s, fmt.Sprintf("idle%d", i))
			}
		})
		if n := s.ContextStats().Contexts; n != b.N {
			b.Fatalf("%d contexts cached; want %d", n, b.N)
		}
		reportHeap(b, perContext, payload)
		if bareActor > 0 {
			b.ReportMetric(perContext/bareActor, "heap/protoactor")
		}
	})
}

// decodedRecords are the records of benchContextRecords as an activation
// holds them: decoded from their stored bytes.
func decodedRecords(b *testing.B, id string) (*actorpb.CallRecord, *actorpb.CallContextRecord) {
	call, rec := benchContextRecords(id, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	c2, r2 := &actorpb.CallRecord{}, &actorpb.CallContextRecord{}
	for _, p := range [][2]proto.Message{{call, c2}, {rec, r2}} {
		v, err := proto.Marshal(p[0])
		if err != nil {
			b.Fatal(err)
		}
		if err := proto.Unmarshal(v, p[1]); err != nil {
			b.Fatal(err)
		}
	}
	return c2, r2
}

// measureHeap runs fill, timed, and returns the live heap it added per
// iteration.
func measureHeap(b *testing.B, fill func()) float64 {
	b.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	fill()
	b.StopTimer()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(b.N)
}

func reportHeap(b *testing.B, perContext float64, payload int) {
	b.ReportMetric(perContext, "heap-B/ctx")
	b.ReportMetric(float64(payload), "payload-B/ctx")
	b.ReportMetric(perContext-float64(payload), "beyond-payload-B/ctx")
}

func meanOf(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return sum / time.Duration(len(d))
}

// quantileOf returns the q-quantile of d (which it sorts).
func quantileOf(d []time.Duration, q float64) time.Duration {
	slices.Sort(d)
	return d[int(float64(len(d)-1)*q)]
}
