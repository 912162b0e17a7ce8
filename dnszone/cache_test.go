package dnszone

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-pbx/switchboard/clock"
)

// RFC 2308 §5: a negative answer is cached for min(SOA TTL, SOA MINIMUM),
// and not at all without an SOA; a positive one for its records' TTL.
func TestNewEntry_RFC2308_5_TTL(t *testing.T) {
	msg := func(rcode int, answer, ns, extra []string) *dns.Msg {
		m := new(dns.Msg)
		m.Rcode = rcode
		for _, l := range answer {
			m.Answer = append(m.Answer, mustRR(t, l))
		}
		for _, l := range ns {
			m.Ns = append(m.Ns, mustRR(t, l))
		}
		for _, l := range extra {
			m.Extra = append(m.Extra, mustRR(t, l))
		}
		m.SetEdns0(1232, false) // an OPT's "TTL" is flags, not a TTL
		return m
	}
	soa := "x. 300 IN SOA ns.x. h.x. 1 2 3 4 30"
	for _, tc := range []struct {
		desc string
		resp *dns.Msg
		ttl  time.Duration
	}{
		{"answer: smallest TTL", msg(dns.RcodeSuccess, []string{"a.x. 60 IN A 192.0.2.1", "a.x. 20 IN A 192.0.2.2"}, nil, nil), 20 * time.Second},
		{"answer with additional", msg(dns.RcodeSuccess, []string{"_sip._udp.x. 60 IN SRV 0 0 5060 h.x."}, nil, []string{"h.x. 10 IN A 192.0.2.1"}), 10 * time.Second},
		{"NXDOMAIN: SOA MINIMUM", msg(dns.RcodeNameError, nil, []string{soa}, nil), 30 * time.Second},
		{"NODATA: SOA TTL when smaller", msg(dns.RcodeSuccess, nil, []string{"x. 7 IN SOA ns.x. h.x. 1 2 3 4 30"}, nil), 7 * time.Second},
		{"NXDOMAIN without SOA: not cached", msg(dns.RcodeNameError, nil, nil, nil), 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			e := newEntry(tc.resp, t0)
			if got := e.expires.Sub(t0); got != tc.ttl {
				t.Errorf("cached for %v, want %v", got, tc.ttl)
			}
			for _, rr := range e.extra {
				if rr.Header().Rrtype == dns.TypeOPT {
					t.Error("OPT kept in the entry's additional records")
				}
			}
		})
	}
}

func TestCache_BoundedExpiredFirst(t *testing.T) {
	clk := clock.NewFake(t0)
	c := newCache(clk, 3)
	put := func(name string, ttl time.Duration) {
		_, f, leader := c.get(cacheKey{name, dns.TypeA})
		if !leader {
			t.Fatalf("get(%s) did not make the caller the leader", name)
		}
		c.finish(cacheKey{name, dns.TypeA}, f, &entry{expires: clk.Now().Add(ttl)}, nil, false)
	}
	cached := func(name string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.entries[cacheKey{name, dns.TypeA}]
		return ok
	}
	put("short", time.Second)
	put("long1", time.Hour)
	put("long2", time.Hour)
	clk.Advance(2 * time.Second) // "short" expires
	put("new", time.Hour)
	if c.len() != 3 || cached("short") || !cached("long1") || !cached("long2") || !cached("new") {
		t.Errorf("after a 4th entry into 3 slots: %d entries; want the expired one gone, the rest kept", c.len())
	}
	put("newer", time.Hour)
	if c.len() != 3 || !cached("newer") {
		t.Errorf("full of live entries: %d entries, newest cached=%v; want 3 and true", c.len(), cached("newer"))
	}
	put("zero", 0)
	if cached("zero") {
		t.Error("an answer with TTL 0 was cached")
	}
}
