package dnszone

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-pbx/switchboard/clock"
)

// cacheKey is one question.
type cacheKey struct {
	name  string // lowercase, no trailing dot
	qtype uint16
}

// entry is one answer: NOERROR (with or without records) or NXDOMAIN.
// Entries are shared and never changed.
type entry struct {
	rcode   int
	answer  []dns.RR
	extra   []dns.RR // additional section, without OPT
	expires time.Time
}

// newEntry keeps resp as an entry that expires after its TTL: the
// smallest TTL of its records (RFC 2181 §5.2: an RRset's TTLs are one),
// or, when it has no answer, min(SOA TTL, SOA MINIMUM) of the SOA in its
// authority section (RFC 2308 §5); without that SOA a negative answer is
// not cached at all (RFC 2308 §5).
func newEntry(resp *dns.Msg, now time.Time) *entry {
	e := &entry{rcode: resp.Rcode, answer: resp.Answer}
	for _, rr := range resp.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			e.extra = append(e.extra, rr)
		}
	}
	var ttl uint32
	if len(e.answer) > 0 && e.rcode == dns.RcodeSuccess {
		ttl = minTTL(slices.Concat(e.answer, e.extra))
	} else if soas := answersOf[*dns.SOA](resp.Ns); len(soas) > 0 {
		ttl = min(soas[0].Hdr.Ttl, soas[0].Minttl)
	}
	e.expires = now.Add(time.Duration(ttl) * time.Second)
	return e
}

// minTTL is the smallest TTL in rrs (which is not empty).
func minTTL(rrs []dns.RR) uint32 {
	ttl := rrs[0].Header().Ttl
	for _, rr := range rrs[1:] {
		ttl = min(ttl, rr.Header().Ttl)
	}
	return ttl
}

// flight is a query under way; the others asking the same question wait
// for it. Its fields are written before done is closed.
type flight struct {
	done         chan struct{}
	e            *entry
	err          error
	leaderGaveUp bool // the asking caller's context ended: its error is not the answer
}

// cache holds answers until they expire, and the queries under way. It is
// safe for concurrent use.
type cache struct {
	clock clock.Clock
	max   int

	mu       sync.Mutex
	entries  map[cacheKey]*entry
	inflight map[cacheKey]*flight
}

func newCache(c clock.Clock, maxEntries int) *cache {
	return &cache{clock: c, max: maxEntries, entries: make(map[cacheKey]*entry), inflight: make(map[cacheKey]*flight)}
}

// get returns the unexpired entry for key; else the flight under way for it
// (leader=false: wait for it); else a new flight that the caller must
// carry out and hand to finish (leader=true).
func (c *cache) get(key cacheKey) (e *entry, f *flight, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		if c.clock.Now().Before(e.expires) {
			return e, nil, false
		}
		delete(c.entries, key)
	}
	if f, ok := c.inflight[key]; ok {
		return nil, f, false
	}
	f = &flight{done: make(chan struct{})}
	c.inflight[key] = f
	return nil, f, true
}

// finish ends the flight for key with its outcome, caching e unless it has
// expired already (TTL 0) or the query failed.
func (c *cache) finish(key cacheKey, f *flight, e *entry, err error, gaveUp bool) {
	f.e, f.err, f.leaderGaveUp = e, err, gaveUp
	c.mu.Lock()
	delete(c.inflight, key)
	if err == nil {
		now := c.clock.Now()
		if e.expires.After(now) {
			c.makeRoom(now)
			c.entries[key] = e
		}
	}
	c.mu.Unlock()
	close(f.done)
}

// makeRoom frees a slot when the cache is full: expired entries first,
// else an arbitrary one. c.mu is held.
func (c *cache) makeRoom(now time.Time) {
	if len(c.entries) < c.max {
		return
	}
	maps.DeleteFunc(c.entries, func(_ cacheKey, e *entry) bool { return !now.Before(e.expires) })
	for k := range c.entries {
		if len(c.entries) < c.max {
			break
		}
		delete(c.entries, k)
	}
}

// len returns the number of cached entries (expired ones included).
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
