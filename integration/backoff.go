package integration

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait before reconnect attempt n (0 for the first retry
// after a failure): lo doubling per attempt, capped at hi, drawn
// uniformly in [d/2, d] from rnd so that many proxies cut off by one
// outage do not reconnect in step. It is a pure function of its inputs.
func Backoff(n int, lo, hi time.Duration, rnd *rand.Rand) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(rnd.Int64N(int64(d-half)+1))
}
