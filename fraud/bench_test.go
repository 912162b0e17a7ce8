package fraud

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkCheck measures the cost of one check (issue 10's goal: p99 <= 50
// µs) for ours (Sender.Check on the default policy, with 28 days of
// history) beside the OpenSIPS-style FixedThreshold on the same events,
// over 1,000 active senders, and reports p50 and p99 of each and their
// ratios. Run: go test -run '^$' -bench Check -benchtime 200000x ./fraud/
func BenchmarkCheck(b *testing.B) {
	const senders = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	p := Merge()
	fixed := DefaultFixedThreshold()
	ours := make([]*Sender, senders)
	base := make([]FixedState, senders)
	for i := range ours {
		h := sampleHistory()
		ours[i] = NewSender(h, nil, nil)
	}
	evs := make([]Event, 4096)
	at := t0
	for i := range evs {
		at = at.Add(time.Duration(rng.IntN(20)) * time.Millisecond)
		evs[i] = ev(num(rng.IntN(5000)), at)
		if rng.IntN(50) == 0 {
			evs[i].Destination = "+1900555" + num(i)[8:]
		}
	}
	oursNs := make([]float64, 0, b.N)
	baseNs := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		e := evs[i%len(evs)]
		e.Time = e.Time.Add(time.Duration(i/len(evs)) * 90 * time.Second)
		k := i % senders
		t1 := time.Now()
		ours[k].Check(&p, e)
		t2 := time.Now()
		fixed.Check(&base[k], e.Destination, e.Time)
		t3 := time.Now()
		oursNs = append(oursNs, float64(t2.Sub(t1)))
		baseNs = append(baseNs, float64(t3.Sub(t2)))
	}
	b.StopTimer()
	q := func(xs []float64, p float64) float64 {
		slices.Sort(xs)
		return xs[min(int(p*float64(len(xs))), len(xs)-1)]
	}
	o50, o99, b50, b99 := q(oursNs, 0.5), q(oursNs, 0.99), q(baseNs, 0.5), q(baseNs, 0.99)
	b.ReportMetric(o50, "p50-ns")
	b.ReportMetric(o99, "p99-ns")
	b.ReportMetric(b50, "base-p50-ns")
	b.ReportMetric(b99, "base-p99-ns")
	b.ReportMetric(o99/b99, "p99/base")
}

// BenchmarkMemoryPerSender reports the bytes one active sender costs: the
// Sender (fixed size: it holds no heap memory but its histories), and its
// device History (28 days) kept beside it, against the FixedThreshold's
// per-sender counters. Run with -benchtime 1x.
func BenchmarkMemoryPerSender(b *testing.B) {
	const k = 2000
	fixed := DefaultFixedThreshold()
	alloc := func(f func(i int) any) float64 {
		runtime.GC()
		var m1, m2 runtime.MemStats
		runtime.ReadMemStats(&m1)
		keep := make([]any, k)
		for i := range keep {
			keep[i] = f(i)
		}
		runtime.GC()
		runtime.ReadMemStats(&m2)
		runtime.KeepAlive(keep)
		return float64(int64(m2.HeapAlloc)-int64(m1.HeapAlloc)) / k
	}
	for range b.N {
		sender := float64(unsafe.Sizeof(Sender{}))
		hist := alloc(func(int) any { return sampleHistory() })
		base := alloc(func(i int) any {
			st := &FixedState{}
			for j := range 80 {
				fixed.Check(st, num(i*100+j), t0.Add(time.Duration(j)*time.Second))
			}
			return st
		})
		b.ReportMetric(sender, "sender-B")
		b.ReportMetric(hist, "history-B")
		b.ReportMetric(base, "base-B")
		b.ReportMetric((sender+hist)/base, "(sender+history)/base")
	}
}
