package integration

import (
	"container/list"
	"sync"
	"time"
)

// cache keeps the contexts last read through the proxy, least recently
// used first out, bounded by count and by bytes. It answers reads while
// the server is unreachable; while the server answers, every read goes
// to it (the server's context is the truth) and refreshes the entry.
type cache struct {
	mu         sync.Mutex
	ll         *list.List // of *cacheEntry, most recent at the front
	byID       map[string]*list.Element
	bytes      int
	maxEntries int
	maxBytes   int
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
	return &cache{ll: list.New(), byID: map[string]*list.Element{}, maxEntries: maxEntries, maxBytes: maxBytes}
}

// put stores e, replacing the call's entry. A body larger than the whole
// budget is not kept.
func (c *cache) put(e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(e.call)
	if len(e.body) > c.maxBytes {
		return
	}
	c.byID[e.call] = c.ll.PushFront(&e)
	c.bytes += len(e.body)
	for c.ll.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.removeLocked(c.ll.Back().Value.(*cacheEntry).call)
	}
}

// get returns the call's entry and marks it recently used.
func (c *cache) get(call string) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byID[call]
	if !ok {
		return cacheEntry{}, false
	}
	c.ll.MoveToFront(el)
	return *el.Value.(*cacheEntry), true
}

// remove forgets the call (the server said it is gone).
func (c *cache) remove(call string) {
	c.mu.Lock()
	c.removeLocked(call)
	c.mu.Unlock()
}

func (c *cache) removeLocked(call string) {
	if el, ok := c.byID[call]; ok {
		c.bytes -= len(el.Value.(*cacheEntry).body)
		c.ll.Remove(el)
		delete(c.byID, call)
	}
}

// stats returns the number of entries and their bytes.
func (c *cache) stats() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len(), c.bytes
}
