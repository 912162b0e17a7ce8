package actors

import (
	"cmp"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
)

// callTimers holds each live call's next deadline (hold end, session
// expiry, maximum length) on this node. The System's timer loop asks it
// for the calls that are due by the injected clock and tells each of them
// (CallDeadline); the call decides. Setting a call's deadline again
// replaces the old one. Safe for concurrent use.
type callTimers struct {
	mu   sync.Mutex
	at   map[string]time.Time // call id -> its current deadline
	byAt *btree.BTreeG[deadline]
}

type deadline struct {
	at time.Time
	id string
}

func newCallTimers() *callTimers {
	return &callTimers{at: map[string]time.Time{}, byAt: btree.NewG(16, func(a, b deadline) bool {
		return cmp.Or(a.at.Compare(b.at), strings.Compare(a.id, b.id)) < 0
	})}
}

// set makes at the call's deadline; a zero at removes it.
func (t *callTimers) set(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.at[id]; ok {
		if cur.Equal(at) {
			return
		}
		t.byAt.Delete(deadline{at: cur, id: id})
		delete(t.at, id)
	}
	if !at.IsZero() {
		t.at[id] = at
		t.byAt.ReplaceOrInsert(deadline{at: at, id: id})
	}
}

// due removes and returns the calls whose deadline is at or before now,
// earliest first.
func (t *callTimers) due(now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for d, ok := t.byAt.Min(); ok && !d.at.After(now); d, ok = t.byAt.Min() {
		t.byAt.DeleteMin()
		delete(t.at, d.id)
		out = append(out, d.id)
	}
	return out
}

// len tells how many calls have a deadline.
func (t *callTimers) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.at)
}
