package actors

import (
	"container/heap"
	"sync"
	"time"
)

// callTimers holds each live call's next deadline (hold end, session
// expiry, maximum length) on this node. The System's timer loop asks it
// for the calls that are due by the injected clock and tells each of them
// (CallDeadline); the call decides. Setting a call's deadline again
// replaces the old one: entries left behind in the heap are skipped when
// they come up. Safe for concurrent use.
type callTimers struct {
	mu   sync.Mutex
	at   map[string]time.Time // call id -> its current deadline
	heap deadlineHeap
}

func newCallTimers() *callTimers { return &callTimers{at: map[string]time.Time{}} }

// set makes at the call's deadline; a zero at removes it.
func (t *callTimers) set(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at.IsZero() {
		delete(t.at, id)
		return
	}
	if cur, ok := t.at[id]; ok && cur.Equal(at) {
		return
	}
	t.at[id] = at
	heap.Push(&t.heap, deadline{at: at, id: id})
}

// due removes and returns the calls whose deadline is at or before now,
// earliest first.
func (t *callTimers) due(now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for len(t.heap) > 0 && !t.heap[0].at.After(now) {
		d := heap.Pop(&t.heap).(deadline)
		if cur, ok := t.at[d.id]; ok && cur.Equal(d.at) {
			delete(t.at, d.id)
			out = append(out, d.id)
		}
	}
	return out
}

// len tells how many calls have a deadline.
func (t *callTimers) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.at)
}

type deadline struct {
	at time.Time
	id string
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}
