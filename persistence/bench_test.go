package persistence_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// BenchmarkStore measures one caller's put (AnyVersion, 128-byte value) and
// get latency on each engine, memory as the baseline. Beside ns/op it
// reports ops/s and the 99th-percentile latency of single calls:
//
//	go test -run x -bench . -benchtime 2000x ./persistence/
//
// PostgreSQL runs when SWITCHBOARD_TEST_POSTGRES is set, otherwise skips.
func BenchmarkStore(b *testing.B) {
	engines := []struct {
		name string
		open func(b *testing.B) persistence.Store
	}{
		{"memory", func(b *testing.B) persistence.Store {
			s := persistence.NewMemory()
			b.Cleanup(func() { closeStore(b, s) })
			return s
		}},
		{"badger", func(b *testing.B) persistence.Store {
			return openBadger(b, b.TempDir(), persistence.DefaultBadgerConfig())
		}},
		{"postgres", func(b *testing.B) persistence.Store {
			dsn := os.Getenv(postgresEnv)
			if dsn == "" {
				b.Skip(postgresHowTo)
			}
			return openPostgres(b, dsn, testSchema(b, dsn))
		}},
	}
	const keys = 1000
	value := make([]byte, 128)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := e.open(b)
			b.Run("put", func(b *testing.B) {
				measure(b, func(i int) error {
					_, err := s.Put(b.Context(), fmt.Sprintf("bench/%04d", i%keys), value, persistence.AnyVersion)
					return err
				})
			})
			b.Run("get", func(b *testing.B) {
				for i := range keys { // ensure every key read exists, whatever ran before
					if _, err := s.Put(b.Context(), fmt.Sprintf("bench/%04d", i), value, persistence.AnyVersion); err != nil {
						b.Fatal(err)
					}
				}
				measure(b, func(i int) error {
					_, err := s.Get(b.Context(), fmt.Sprintf("bench/%04d", i%keys))
					return err
				})
			})
		})
	}
}

// measure times b.N sequential calls of op and reports throughput and p99.
func measure(b *testing.B, op func(i int) error) {
	b.Helper()
	lat := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		t0 := time.Now()
		if err := op(i); err != nil {
			b.Fatalf("op %d: %v", i, err)
		}
		lat[i] = time.Since(t0)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	p99 := lat[min(len(lat)-1, len(lat)*99/100)]
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(p99.Nanoseconds())/1e3, "p99-µs")
}
