package gossip

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestJoinBackoff_DoublesWithJitterUpToMax(t *testing.T) {
	const lo, hi = 200 * time.Millisecond, 5 * time.Second
	r := rand.New(rand.NewPCG(1, 2))
	for n, base := range []time.Duration{lo, 2 * lo, 4 * lo, 8 * lo, 16 * lo, hi, hi, hi} {
		for range 50 {
			d := joinBackoff(n, lo, hi, r)
			if d < base/2 || d > base {
				t.Fatalf("attempt %d: %v outside [%v, %v]", n, d, base/2, base)
			}
		}
	}
	if d := joinBackoff(1000, lo, hi, r); d > hi {
		t.Fatalf("attempt 1000: %v over the cap", d)
	}
	if d := joinBackoff(3, 0, 0, r); d != 0 {
		t.Fatalf("zero backoff: %v", d)
	}
	// Seeded: the same source gives the same waits.
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for n := range 10 {
		if x, y := joinBackoff(n, lo, hi, a), joinBackoff(n, lo, hi, b); x != y {
			t.Fatalf("attempt %d: %v != %v with the same seed", n, x, y)
		}
	}
}
