package integration

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before reconnect attempt n (0 for the first retry
// after a failure): min doubling per attempt, capped at max, drawn
// uniformly in [d/2, d] from rnd so that many proxies cut off by one
// outage do not reconnect in step. It is a pure function of its inputs.
func Backoff(n int, min, max time.Duration, rnd *rand.Rand) time.Duration {
	d := min
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(rnd.Int64N(int64(d-half)+1))
}
