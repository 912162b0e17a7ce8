package dnszone

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-pbx/switchboard/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newTestResolver returns a Resolver asking server, on clk, with a seeded
// Rand.
func newTestResolver(t *testing.T, server string, clk clock.Clock, seed uint64) *Resolver {
	t.Helper()
	cfg := DefaultResolverConfig()
	cfg.Server = server
	cfg.Timeout = 2 * time.Second
	cfg.Clock = clk
	cfg.Rand = rand.New(rand.NewPCG(seed, seed))
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	return r
}

func target(ip string, port uint16, transport string, prio, weight uint16) Target {
	return Target{IP: netip.MustParseAddr(ip), Port: port, Transport: transport, Priority: prio, Weight: weight}
}

func TestResolver_SRV_RFC2782_PriorityThenWeightedOrder(t *testing.T) {
	dir := newCountingTargets(testTargets())
	s, _ := startServer(t, dir)
	r := newTestResolver(t, s.Addr(), clock.NewFake(t0), 1)
	ctx := context.Background()

	const runs = 2000
	first := map[string]int{}
	for range runs {
		got, err := r.Resolve(ctx, "sales.acme."+testZone, TransportUDP)
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		top := []Target{target("10.1.0.1", 5070, TransportUDP, 10, 60), target("10.1.0.2", 5070, TransportUDP, 10, 40)}
		if len(got) != 3 || !slices.Contains(top, got[0]) || !slices.Contains(top, got[1]) || got[0] == got[1] ||
			got[2] != target("10.1.0.3", 5080, TransportUDP, 20, 0) {
			t.Fatalf("Resolve = %v; want both priority-10 targets, then the priority-20 one", got)
		}
		first[got[0].IP.String()]++
	}
	// RFC 2782's selection puts the weight-60 target first when the random
	// number in [0, 100] is at most 60: with probability 61/101.
	if n := first["10.1.0.1"]; n < runs*55/100 || n > runs*66/100 {
		t.Errorf("weight-60 target first in %d of %d resolutions, want about %d", n, runs, runs*61/101)
	}
	// Every call after the first was a cache hit, and still re-drew the order.
	if n := dir.count("sales.acme." + testZone); n != 1 {
		t.Errorf("TargetSource asked %d times, want 1 (the rest from the cache)", n)
	}
}

func TestResolver_SRVByTransport_RFC3263_4_1(t *testing.T) {
	s, _ := startServer(t, newCountingTargets(testTargets()))
	r := newTestResolver(t, s.Addr(), clock.NewFake(t0), 1)
	for _, tc := range []struct {
		name, transport string
		want            []Target
	}{
		{"sales.acme." + testZone, TransportTLS, []Target{target("10.1.0.4", 5061, TransportTLS, 0, 0)}},
		{"acme." + testZone + ".", "TCP", []Target{target("10.0.0.1", 5060, TransportTCP, 0, 0), target("10.0.0.2", 5060, TransportTCP, 0, 0)}},
	} {
		got, err := r.Resolve(context.Background(), tc.name, tc.transport)
		if err != nil {
			t.Fatalf("Resolve(%s, %s): %v", tc.name, tc.transport, err)
		}
		slices.SortFunc(got, func(a, b Target) int { return a.IP.Compare(b.IP) }) // weights 0: any order
		if !slices.Equal(got, tc.want) {
			t.Errorf("Resolve(%s, %s) = %v, want %v", tc.name, tc.transport, got, tc.want)
		}
	}
}

func TestResolver_NoSRV_RFC3263_4_2_FallsBackToAddressRecords(t *testing.T) {
	dir := newCountingTargets(testTargets())
	s, _ := startServer(t, dir)
	r := newTestResolver(t, s.Addr(), clock.NewFake(t0), 1)
	for _, tc := range []struct {
		name, transport string
		want            []Target
	}{
		{"hq." + testZone, TransportTCP, []Target{target("10.2.0.1", 5060, TransportTCP, 0, 0)}},
		{"hq." + testZone, TransportTLS, []Target{target("10.2.0.1", 5061, TransportTLS, 0, 0)}},
		{"acme." + testZone, TransportTLS, []Target{
			target("10.0.0.1", 5061, TransportTLS, 0, 0),
			target("10.0.0.2", 5061, TransportTLS, 0, 0),
			target("2001:db8::1", 5061, TransportTLS, 0, 0),
		}},
	} {
		got, err := r.Resolve(context.Background(), tc.name, tc.transport)
		if err != nil {
			t.Fatalf("Resolve(%s, %s): %v", tc.name, tc.transport, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Resolve(%s, %s) = %v, want %v", tc.name, tc.transport, got, tc.want)
		}
	}
}

func TestResolver_Cache_RFC2308_HonoursTTL(t *testing.T) {
	dir := newCountingTargets(testTargets())
	s, _ := startServer(t, dir) // TTL 5s
	clk := clock.NewFake(t0)
	r := newTestResolver(t, s.Addr(), clk, 1)
	ctx := context.Background()
	resolve := func(name string) error {
		_, err := r.Resolve(ctx, name, TransportUDP)
		return err
	}
	sales, nobody := "sales.acme."+testZone, "nobody."+testZone

	if err := resolve(sales); err != nil {
		t.Fatal(err)
	}
	if err := resolve(nobody); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve(nobody) = %v, want ErrNotFound", err)
	}
	calls := map[string]int{sales: dir.count(sales), nobody: dir.count(nobody)}
	if calls[sales] != 1 || calls[nobody] != 2 {
		t.Fatalf("TargetSource calls %v; want sales 1 (SRV with additional), nobody 2 (SRV, then A)", calls)
	}

	for _, step := range []struct {
		advance time.Duration
		more    int // TargetSource calls each name costs after the advance
	}{
		{0, 0},
		{4 * time.Second, 0},              // 4s < TTL 5s: answers and NXDOMAIN cached
		{time.Second, 1},                  // 5s: both expired
		{4999 * time.Millisecond, 0},      // cached again
		{time.Millisecond + time.Hour, 1}, // long expired
	} {
		clk.Advance(step.advance)
		if err := resolve(sales); err != nil {
			t.Fatal(err)
		}
		if err := resolve(nobody); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Resolve(nobody) = %v, want ErrNotFound", err)
		}
		moreNobody := step.more * 2
		if got := dir.count(sales); got != calls[sales]+step.more {
			t.Errorf("after +%v: TargetSource asked about sales %d times, want %d", step.advance, got, calls[sales]+step.more)
		}
		if got := dir.count(nobody); got != calls[nobody]+moreNobody {
			t.Errorf("after +%v: TargetSource asked about nobody %d times, want %d", step.advance, got, calls[nobody]+moreNobody)
		}
		calls[sales], calls[nobody] = dir.count(sales), dir.count(nobody)
	}
}

func TestResolver_NotFound(t *testing.T) {
	s, _ := startServer(t, newCountingTargets(testTargets()))
	r := newTestResolver(t, s.Addr(), clock.NewFake(t0), 1)
	for _, name := range []string{
		"nobody." + testZone,   // NXDOMAIN
		"x.nobody." + testZone, // NXDOMAIN
		"example.com",          // outside the zone: NXDOMAIN
		"empty." + testZone,    // exists, no targets
	} {
		got, err := r.Resolve(context.Background(), name, TransportUDP)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%s) = %v, %v; want an error wrapping ErrNotFound", name, got, err)
		}
	}
}

func TestResolver_ServerFailure_IsNotNotFoundAndNotCached(t *testing.T) {
	dir := newCountingTargets(testTargets())
	dir.setErr(errors.New("actor unreachable"))
	s, _ := startServer(t, dir)
	r := newTestResolver(t, s.Addr(), clock.NewFake(t0), 1)
	for i := 1; i <= 2; i++ {
		_, err := r.Resolve(context.Background(), "acme."+testZone, TransportUDP)
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("Resolve with a failing TargetSource = %v; want an error that is not ErrNotFound", err)
		}
		if n := dir.count("acme." + testZone); n != i {
			t.Errorf("after %d resolutions the TargetSource was asked %d times; SERVFAIL must not be cached", i, n)
		}
	}
	dir.setErr(nil)
	if _, err := r.Resolve(context.Background(), "acme."+testZone, TransportUDP); err != nil {
		t.Errorf("Resolve after the TargetSource recovered: %v", err)
	}
}

func TestResolver_Inputs(t *testing.T) {
	r := newTestResolver(t, "127.0.0.1:1", clock.NewFake(t0), 1) // never asked
	for _, tc := range []struct {
		name, transport string
		want            []Target
		ok              bool
	}{
		{"10.9.0.1", TransportUDP, []Target{target("10.9.0.1", 5060, TransportUDP, 0, 0)}, true},
		{"2001:db8::9", TransportTLS, []Target{target("2001:db8::9", 5061, TransportTLS, 0, 0)}, true},
		{"::ffff:10.9.0.2", TransportTCP, []Target{target("10.9.0.2", 5060, TransportTCP, 0, 0)}, true},
		{"acme." + testZone, "sctp", nil, false},
		{"", TransportUDP, nil, false},
		{"a..b", TransportUDP, nil, false},
	} {
		got, err := r.Resolve(context.Background(), tc.name, tc.transport)
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("Resolve(%q, %q) = %v, %v; want %v, ok=%v", tc.name, tc.transport, got, err, tc.want, tc.ok)
		}
	}
}

// upstream is a scripted DNS server for the Resolver's tests.
type upstream struct {
	addr string
	mu   sync.Mutex
	log  []string // "udp SRV _sip._udp.svc.example."
}

// startUpstream serves handle on 127.0.0.1 over UDP and TCP until the test
// ends; a nil answer sends nothing.
func startUpstream(t *testing.T, handle func(network string, req *dns.Msg) *dns.Msg) *upstream {
	t.Helper()
	pc, ln, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: pc.LocalAddr().String()}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		network := w.LocalAddr().Network()
		q := req.Question[0]
		u.mu.Lock()
		u.log = append(u.log, network+" "+dns.TypeToString[q.Qtype]+" "+q.Name)
		u.mu.Unlock()
		if resp := handle(network, req); resp != nil {
			w.WriteMsg(resp)
		}
	})
	units := []*serveUnit{
		newServeUnit("udp", &dns.Server{PacketConn: pc, Handler: h}),
		newServeUnit("tcp", &dns.Server{Listener: ln, Handler: h}),
	}
	for _, su := range units {
		go su.serve()
	}
	t.Cleanup(func() {
		for _, su := range units {
			if err := su.stop(); err != nil {
				t.Errorf("upstream: %v", err)
			}
		}
	})
	return u
}

func (u *upstream) queries() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.log)
}

// reply builds an answer to req from zone-file lines.
func reply(t *testing.T, req *dns.Msg, rcode int, answer, extra []string) *dns.Msg {
	m := new(dns.Msg).SetReply(req)
	m.Rcode = rcode
	for _, l := range answer {
		m.Answer = append(m.Answer, mustRR(t, l))
	}
	for _, l := range extra {
		m.Extra = append(m.Extra, mustRR(t, l))
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{mustRR(t, "example. 60 IN SOA ns.example. h.example. 1 2 3 4 60")}
	}
	return m
}

func mustRR(t *testing.T, s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Errorf("bad record %q: %v", s, err)
	}
	return rr
}

func TestResolver_SRVWithoutAdditional_RFC2782_LooksUpTargets(t *testing.T) {
	up := startUpstream(t, func(_ string, req *dns.Msg) *dns.Msg {
		q := req.Question[0]
		switch {
		case q.Name == "_sip._udp.svc.example." && q.Qtype == dns.TypeSRV:
			return reply(t, req, dns.RcodeSuccess, []string{
				"_sip._udp.svc.example. 60 IN SRV 10 0 5070 host1.example.",
				"_sip._udp.svc.example. 60 IN SRV 20 0 5071 gone.example.",
				"_sip._udp.svc.example. 60 IN SRV 30 0 5072 host3.example.",
			}, nil)
		case q.Name == "host1.example." && q.Qtype == dns.TypeA:
			return reply(t, req, dns.RcodeSuccess, []string{"host1.example. 60 IN A 192.0.2.1"}, nil)
		case q.Name == "host1.example." && q.Qtype == dns.TypeAAAA:
			return reply(t, req, dns.RcodeSuccess, []string{"host1.example. 60 IN AAAA 2001:db8::1"}, nil)
		case q.Name == "host3.example." && q.Qtype == dns.TypeA:
			return reply(t, req, dns.RcodeSuccess, []string{"host3.example. 60 IN A 192.0.2.3"}, nil)
		case q.Name == "host3.example.":
			return reply(t, req, dns.RcodeSuccess, nil, nil)
		}
		return reply(t, req, dns.RcodeNameError, nil, nil)
	})
	r := newTestResolver(t, up.addr, clock.NewFake(t0), 1)
	got, err := r.Resolve(context.Background(), "svc.example", TransportUDP)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	wantTargets := []Target{
		target("192.0.2.1", 5070, TransportUDP, 10, 0),
		target("2001:db8::1", 5070, TransportUDP, 10, 0),
		target("192.0.2.3", 5072, TransportUDP, 30, 0),
	}
	if !slices.Equal(got, wantTargets) {
		t.Errorf("Resolve = %v\nwant %v (gone.example has no address and is skipped)", got, wantTargets)
	}
	wantQueries := []string{
		"udp SRV _sip._udp.svc.example.",
		"udp A host1.example.", "udp AAAA host1.example.",
		"udp A gone.example.", // NXDOMAIN: no AAAA query
		"udp A host3.example.", "udp AAAA host3.example.",
	}
	if q := up.queries(); !slices.Equal(q, wantQueries) {
		t.Errorf("queries:\n got %q\nwant %q", q, wantQueries)
	}
}

func TestResolver_TruncatedUDP_RFC7766_RetriesOverTCP(t *testing.T) {
	up := startUpstream(t, func(network string, req *dns.Msg) *dns.Msg {
		if network == "udp" {
			m := new(dns.Msg).SetReply(req)
			m.Truncated = true
			return m
		}
		return reply(t, req, dns.RcodeSuccess, []string{"_sip._udp.svc.example. 60 IN SRV 0 0 5070 h.example."},
			[]string{"h.example. 60 IN A 192.0.2.7"})
	})
	r := newTestResolver(t, up.addr, clock.NewFake(t0), 1)
	got, err := r.Resolve(context.Background(), "svc.example", TransportUDP)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if w := []Target{target("192.0.2.7", 5070, TransportUDP, 0, 0)}; !slices.Equal(got, w) {
		t.Errorf("Resolve = %v, want %v", got, w)
	}
	if q, w := up.queries(), []string{"udp SRV _sip._udp.svc.example.", "tcp SRV _sip._udp.svc.example."}; !slices.Equal(q, w) {
		t.Errorf("queries = %q, want %q", q, w)
	}
}

func TestResolver_DotTarget_RFC2782_ServiceNotAvailable(t *testing.T) {
	up := startUpstream(t, func(_ string, req *dns.Msg) *dns.Msg {
		return reply(t, req, dns.RcodeSuccess, []string{"_sip._udp.svc.example. 60 IN SRV 0 0 0 ."}, nil)
	})
	r := newTestResolver(t, up.addr, clock.NewFake(t0), 1)
	if got, err := r.Resolve(context.Background(), "svc.example", TransportUDP); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve = %v, %v; want ErrNotFound", got, err)
	}
	if q := up.queries(); len(q) != 1 {
		t.Errorf("queries = %q; want only the SRV query (no fallback to A)", q)
	}
}

func TestResolver_ConcurrentLookupsShareOneQuery(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, func(_ string, req *dns.Msg) *dns.Msg {
		<-release
		return reply(t, req, dns.RcodeSuccess, []string{"_sip._udp.svc.example. 60 IN SRV 0 0 5070 h.example."},
			[]string{"h.example. 60 IN A 192.0.2.7"})
	})
	r := newTestResolver(t, up.addr, clock.NewFake(t0), 1)

	const callers = 10
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			got, err := r.Resolve(context.Background(), "svc.example", TransportUDP)
			if err == nil && len(got) != 1 {
				err = errors.New("wrong answer")
			}
			errs <- err
		})
	}
	waitFor(t, "the first query to arrive", func() bool { return len(up.queries()) >= 1 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Resolve: %v", err)
		}
	}
	if q := up.queries(); len(q) != 1 {
		t.Errorf("%d concurrent resolutions sent %d queries (%q), want 1", callers, len(q), q)
	}
}

func TestResolver_Timeout(t *testing.T) {
	// A UDP socket that reads nothing: queries go unanswered.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := DefaultResolverConfig()
	cfg.Server, cfg.Timeout = pc.LocalAddr().String(), 100*time.Millisecond
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Resolve(context.Background(), "svc.example", TransportUDP)
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve against a silent server = %v; want a timeout error", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Resolve took %v with a 100ms Timeout", took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Resolve(ctx, "svc.example", TransportUDP); !errors.Is(err, context.Canceled) {
		t.Errorf("Resolve with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestResolverConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		desc string
		edit func(*ResolverConfig)
		ok   bool
	}{
		{"defaults", func(*ResolverConfig) {}, true},
		{"no server", func(c *ResolverConfig) { c.Server = "" }, false},
		{"server without port", func(c *ResolverConfig) { c.Server = "127.0.0.1" }, false},
		{"server port 0", func(c *ResolverConfig) { c.Server = "127.0.0.1:0" }, false},
		{"negative timeout", func(c *ResolverConfig) { c.Timeout = -1 }, false},
		{"negative cache size", func(c *ResolverConfig) { c.MaxCacheEntries = -1 }, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := DefaultResolverConfig()
			c.Server = "127.0.0.1:5353"
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Errorf("Validate() = %v, want ok=%v (errors wrapping ErrInvalidConfig)", err, tc.ok)
			}
		})
	}
}
