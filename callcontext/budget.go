package callcontext

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Budget is a node's memory budget for cached contexts. Each context's
// activation reports its size (Touch) when it loads and after each
// request; Budget keeps them in least-recently-used order and, when the
// total goes over the limit, names the least recently used others to
// evict. The size of an entry is what its owner reports plus
// EntryOverhead (the activation's fixed cost). Safe for concurrent use.
type Budget struct {
	limit     int64
	mu        sync.Mutex
	lru       *simplelru.LRU[string, budgetEntry] // bounded by bytes, not count
	bytes     int64
	evictions uint64
	hits      atomic.Uint64
	misses    atomic.Uint64
}

type budgetEntry struct {
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
	lru, _ := simplelru.NewLRU[string, budgetEntry](math.MaxInt, nil) // a positive size cannot fail
	return &Budget{limit: limit, lru: lru}
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
	if e, ok := b.lru.Peek(id); ok {
		b.bytes -= e.bytes
	}
	b.lru.Add(id, budgetEntry{bytes: size, owner: owner})
	b.bytes += size
	for b.bytes > b.limit && b.lru.Len() > 1 {
		id, e, _ := b.lru.RemoveOldest()
		b.bytes -= e.bytes
		b.evictions++
		evict = append(evict, Evicted{ID: id, Owner: e.owner})
	}
	return evict
}

// Remove stops accounting id if owner still holds it (its activation
// stopped).
func (b *Budget) Remove(id string, owner any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.lru.Peek(id); ok && e.owner == owner {
		b.bytes -= e.bytes
		b.lru.Remove(id)
	}
}

// Hit counts a request served from a cached context; Miss one that had
// to load it from the store.
func (b *Budget) Hit() { b.hits.Add(1) }

// Miss: see Hit.
func (b *Budget) Miss() { b.misses.Add(1) }

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
	hits, misses := b.hits.Load(), b.misses.Load()
	st := Stats{Contexts: b.lru.Len(), Bytes: b.bytes, LimitBytes: b.limit, Hits: hits, Misses: misses, Evictions: b.evictions}
	if n := hits + misses; n > 0 {
		st.HitRatio = float64(hits) / float64(n)
	}
	return st
}
