package integration

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// cache keeps the contexts last read through the proxy, least recently
// used first out, bounded by count and by bytes. It answers reads while
// the server is unreachable; while the server answers, every read goes
// to it (the server's context is the truth) and refreshes the entry.
type cache struct {
	mu       sync.Mutex
	lru      *simplelru.LRU[string, cacheEntry] // bounded by count
	bytes    int
	maxBytes int
}

// cacheEntry is one context as the server last sent it.
type cacheEntry struct {
	call        string
	body        []byte
	etag        string
	contentType string
	fetched     time.Time
}

func newCache(maxEntries, maxBytes int) *cache {
	c := &cache{maxBytes: maxBytes}
	// maxEntries is positive (Config.Validate), so NewLRU cannot fail.
	c.lru, _ = simplelru.NewLRU(maxEntries, func(_ string, e cacheEntry) { c.bytes -= len(e.body) })
	return c
}

// put stores e, replacing the call's entry. A body larger than the whole
// budget is not kept.
func (c *cache) put(e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(e.call)
	if len(e.body) > c.maxBytes {
		return
	}
	c.bytes += len(e.body)
	c.lru.Add(e.call, e)
	for c.bytes > c.maxBytes {
		c.lru.RemoveOldest()
	}
}

// get returns the call's entry and marks it recently used.
func (c *cache) get(call string) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Get(call)
}

// remove forgets the call (the server said it is gone).
func (c *cache) remove(call string) {
	c.mu.Lock()
	c.lru.Remove(call)
	c.mu.Unlock()
}

// stats returns the number of entries and their bytes.
func (c *cache) stats() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.bytes
}
