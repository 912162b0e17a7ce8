package fraud

import "time"

// Blocks are an account's blocked destinations, each until its expiry (a
// zero time: no expiry). The supervisor consults them before Check; the
// simulator does the same. Not safe for concurrent use.
type Blocks struct {
	until map[string]time.Time
}

// Add blocks dest (any form NormalizeDestination accepts) until until,
// extending an earlier block.
func (b *Blocks) Add(dest string, until time.Time) {
	if b.until == nil {
		b.until = map[string]time.Time{}
	}
	d := NormalizeDestination(dest)
	if old, ok := b.until[d]; ok && (old.IsZero() || (!until.IsZero() && old.After(until))) {
		return
	}
	b.until[d] = until
}

// Blocked tells whether dest is blocked at t.
func (b *Blocks) Blocked(dest string, t time.Time) bool {
	u, ok := b.until[NormalizeDestination(dest)]
	return ok && (u.IsZero() || t.Before(u))
}
