package callcontext

import (
	"container/list"
	"sync"
)

// Budget is a node's memory budget for cached contexts. Each context's
// activation reports its size (Touch) when it loads and after each
// request; Budget keeps them in least-recently-used order and, when the
// total goes over the limit, names the least recently used others to
// evict. The size of an entry is what its owner reports plus
// EntryOverhead (the activation's fixed cost). Safe for concurrent use.
type Budget struct {
	limit int64
	mu    sync.Mutex
	lru   *list.List // front: most recently used; values *budgetEntry
	byID  map[string]*list.Element
	bytes int64
	// counters
	hits, misses, evictions uint64
}

type budgetEntry struct {
	id    string
	bytes int64
	owner any
}

// Evicted is a context the budget no longer accounts: its owner (as given
// to Touch) should stop.
type Evicted struct {
	ID    string
	Owner any
}

// EntryOverhead is what Budget adds to each context's reported payload:
// the measured cost of an idle cached context beyond its payload (the
// actor process, mailbox, shell, activation and lookup entry; see the
// package's benchmark in actors).
const EntryOverhead = 4 << 10

// NewBudget returns a budget of limit bytes (at least one entry always
// fits: a context larger than the budget evicts all others).
func NewBudget(limit int64) *Budget {
	return &Budget{limit: limit, lru: list.New(), byID: make(map[string]*list.Element)}
}

// Touch records that context id, held by owner, is used now and takes
// payload bytes, and returns the contexts to evict (least recently used
// first) so that the total stays within the limit. The evicted are no
// longer accounted; their owners should stop (a later Touch of one
// accounts it again).
func (b *Budget) Touch(id string, payload int64, owner any) (evict []Evicted) {
	size := payload + EntryOverhead
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.byID[id]; ok {
		e := el.Value.(*budgetEntry)
		b.bytes += size - e.bytes
		e.bytes, e.owner = size, owner
		b.lru.MoveToFront(el)
	} else {
		b.byID[id] = b.lru.PushFront(&budgetEntry{id: id, bytes: size, owner: owner})
		b.bytes += size
	}
	for b.bytes > b.limit && b.lru.Len() > 1 {
		el := b.lru.Back()
		e := el.Value.(*budgetEntry)
		b.lru.Remove(el)
		delete(b.byID, e.id)
		b.bytes -= e.bytes
		b.evictions++
		evict = append(evict, Evicted{ID: e.id, Owner: e.owner})
	}
	return evict
}

// Remove stops accounting id if owner still holds it (its activation
// stopped).
func (b *Budget) Remove(id string, owner any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el, ok := b.byID[id]; ok && el.Value.(*budgetEntry).owner == owner {
		b.bytes -= el.Value.(*budgetEntry).bytes
		b.lru.Remove(el)
		delete(b.byID, id)
	}
}

// Hit counts a request served from a cached context; Miss one that had
// to load it from the store.
func (b *Budget) Hit() {
	b.mu.Lock()
	b.hits++
	b.mu.Unlock()
}

// Miss: see Hit.
func (b *Budget) Miss() {
	b.mu.Lock()
	b.misses++
	b.mu.Unlock()
}

// Stats is the budget's state for /debug/actors and /metrics.
type Stats struct {
	Contexts   int     `json:"contexts"`
	Bytes      int64   `json:"bytes"`
	LimitBytes int64   `json:"limit_bytes"`
	Hits       uint64  `json:"hits"`
	Misses     uint64  `json:"misses"`
	HitRatio   float64 `json:"hit_ratio"`
	Evictions  uint64  `json:"evictions"`
}

// Stats returns the current figures.
func (b *Budget) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{Contexts: b.lru.Len(), Bytes: b.bytes, LimitBytes: b.limit, Hits: b.hits, Misses: b.misses, Evictions: b.evictions}
	if n := b.hits + b.misses; n > 0 {
		st.HitRatio = float64(b.hits) / float64(n)
	}
	return st
}
