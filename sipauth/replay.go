package sipauth

import (
	"math"
	"sync"
)

// verdict is what the replay table says of a nonce count.
type verdict int

const (
	// accepted: nc is higher than any accepted before for this nonce; it is
	// now the highest.
	accepted verdict = iota
	// replayed: nc is not higher than one accepted before (RFC 7616
	// section 3.4: the server must see nc increase).
	replayed
	// forgotten: the nonce is not in the table, but it was issued no later
	// than a nonce the table has evicted, so it may have been seen and
	// evicted too. Treated as stale: the client gets a fresh nonce.
	forgotten
)

// replayEntry is the state kept per nonce.
type replayEntry struct {
	nc     uint32
	issued int64 // Unix nanoseconds
}

// replayTable remembers, for at most max nonces, the highest nc accepted.
// It evicts in first-seen order (a ring), and keeps as watermark the latest
// issue time of any evicted nonce: a nonce absent from the table and issued
// after the watermark has certainly never been seen. Safe for concurrent
// use; one mutex, held only for a map look-up and update.
type replayTable struct {
	mu        sync.Mutex
	max       int
	seen      map[nonceKey]replayEntry
	ring      []nonceKey // first-seen order; grows to max, then is overwritten at next
	next      int
	watermark int64
}

func newReplayTable(max int) *replayTable {
	return &replayTable{
		max:       max,
		seen:      make(map[nonceKey]replayEntry),
		watermark: math.MinInt64,
	}
}

// observe checks nc for the nonce key issued at issued, and records it if
// it is accepted. Call it only for a nonce and response that verified, so
// that nobody without the HA1 can raise a nonce's nc.
func (t *replayTable) observe(key nonceKey, issued int64, nc uint32) verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.seen[key]; ok {
		if nc <= e.nc {
			return replayed
		}
		e.nc = nc
		t.seen[key] = e
		return accepted
	}
	if issued <= t.watermark {
		return forgotten
	}
	if len(t.ring) < t.max {
		t.ring = append(t.ring, key)
	} else {
		old := t.ring[t.next]
		if e, ok := t.seen[old]; ok && e.issued > t.watermark {
			t.watermark = e.issued
		}
		delete(t.seen, old)
		t.ring[t.next] = key
		t.next = (t.next + 1) % t.max
	}
	t.seen[key] = replayEntry{nc: nc, issued: issued}
	return accepted
}
