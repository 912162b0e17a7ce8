package events_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/events"
)

// BenchmarkAppend measures one node's appends to one account: two store
// writes each. PostgreSQL runs when SWITCHBOARD_TEST_POSTGRES is set.
func BenchmarkAppend(b *testing.B) {
	for _, eng := range engines(b) {
		b.Run(eng.name, func(b *testing.B) {
			store := eng.open(b)
			s := newStream(b, store, "a", nil)
			account := testAccount(b, store)
			for b.Loop() {
				if _, err := s.Append(b.Context(), account, events.Event{Type: "bench.append"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCrossNodeLatency measures the time from Append returning on one
// node to Next returning the event on another node's subscription (which
// sees it by polling the head), and reports its p50 and p99.
func BenchmarkCrossNodeLatency(b *testing.B) {
	for _, eng := range engines(b) {
		b.Run(eng.name, func(b *testing.B) {
			storeA, storeB := eng.open(b), eng.open(b)
			a := newStream(b, storeA, "a", defaultPoll)
			other := newStream(b, storeB, "b", defaultPoll)
			account := testAccount(b, storeA)
			sub, err := other.Subscribe(b.Context(), account, 0, events.Filter{})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			var lat []time.Duration
			for b.Loop() {
				if _, err := a.Append(b.Context(), account, events.Event{Type: "bench.latency"}); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if _, err := sub.Next(b.Context()); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// defaultPoll restores the default poll interval, which the latency
// benchmark measures.
func defaultPoll(c *events.Config) { c.PollInterval = events.DefaultConfig().PollInterval }
