package placement

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// BenchmarkPlace measures one placement decision, Candidates and Reason
// included, over members with realistic (uneven) loads.
func BenchmarkPlace(b *testing.B) {
	strategies := []struct {
		name string
		s    Strategy
	}{
		{"bounded", NewBoundedLoad(DefaultEpsilon)},
		{"rendezvous", Rendezvous{}},
		{"random", Random{}},
		{"leastloaded", LeastLoaded{}},
	}
	for _, st := range strategies {
		for _, n := range []int{8, 64} {
			b.Run(st.name+"/members="+strconv.Itoa(n), func(b *testing.B) {
				ms := testMembers(1, n)
				for i := range ms {
					ms[i].Load.Activations["DeviceGroup"] = 100 + 10*i
				}
				rng := rand.New(rand.NewPCG(1, 2))
				keys := make([]string, 1024)
				for i := range keys {
					keys[i] = identity(i)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := st.s.Place("DeviceGroup", keys[i%len(keys)], ms, rng); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkOwner measures the directory-owner lookup.
func BenchmarkOwner(b *testing.B) {
	for _, n := range []int{8, 64} {
		b.Run("members="+strconv.Itoa(n), func(b *testing.B) {
			memberIDs := testIDs(1, n)
			keys := make([]string, 1024)
			for i := range keys {
				keys[i] = testKey("DeviceGroup", i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = Owner(keys[i%len(keys)], memberIDs)
				i++
			}
		})
	}
}
