package dnszone

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

const testZone = "sip.switchboard.test"

// testTargets is the TargetSource the tests share:
//   - acme: an account whose two nodes serve UDP and TCP, one node on IPv6;
//   - sales.acme: a feature server: two UDP targets at priority 10
//     (weights 60 and 40), a backup at priority 20, and one TLS target;
//   - hq: an account with UDP targets only;
//   - empty: an account with no alive node.
func testTargets() map[string][]Target {
	ip := netip.MustParseAddr
	return map[string][]Target{
		"acme." + testZone: {
			{IP: ip("10.0.0.1"), Port: 5060, Transport: TransportUDP},
			{IP: ip("10.0.0.1"), Port: 5060, Transport: TransportTCP},
			{IP: ip("10.0.0.2"), Port: 5060, Transport: TransportUDP},
			{IP: ip("10.0.0.2"), Port: 5060, Transport: TransportTCP},
			{IP: ip("2001:db8::1"), Port: 5060, Transport: TransportUDP},
		},
		"sales.acme." + testZone: {
			{IP: ip("10.1.0.1"), Port: 5070, Transport: TransportUDP, Priority: 10, Weight: 60},
			{IP: ip("10.1.0.2"), Port: 5070, Transport: TransportUDP, Priority: 10, Weight: 40},
			{IP: ip("10.1.0.3"), Port: 5080, Transport: TransportUDP, Priority: 20},
			{IP: ip("10.1.0.4"), Port: 5061, Transport: TransportTLS},
		},
		"hq." + testZone: {
			{IP: ip("10.2.0.1"), Port: 5060, Transport: TransportUDP},
		},
		"empty." + testZone: {},
	}
}

// countingTargets is a map TargetSource that counts its calls by name, can
// fail, and can block until its context ends.
type countingTargets struct {
	mu      sync.Mutex
	targets map[string][]Target
	calls   map[string]int
	err     error
	block   bool
}

func newCountingTargets(targets map[string][]Target) *countingTargets {
	return &countingTargets{targets: targets, calls: make(map[string]int)}
}

func (d *countingTargets) Targets(ctx context.Context, name string) ([]Target, bool, error) {
	d.mu.Lock()
	d.calls[name]++
	t, ok := d.targets[name]
	err, block := d.err, d.block
	d.mu.Unlock()
	if block {
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	if err != nil {
		return nil, false, err
	}
	return slices.Clone(t), ok, nil
}

func (d *countingTargets) count(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[name]
}

func (d *countingTargets) total() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.calls {
		n += c
	}
	return n
}

func (d *countingTargets) setErr(err error) {
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
}

// startServer runs a Server for dir on 127.0.0.1, port 0, until the test
// ends; edit adjusts its Config.
func startServer(t *testing.T, dir TargetSource, edit ...func(*Config)) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Zone = testZone
	cfg.Addr = "127.0.0.1:0"
	cfg.Targets = dir
	cfg.Registerer = reg
	for _, e := range edit {
		e(&cfg)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, reg
}

// ask sends one query for name and qtype to addr over network ("udp" or
// "tcp") with miekg/dns's client; edit adjusts the query.
func ask(t *testing.T, addr, network, name string, qtype uint16, edit ...func(*dns.Msg)) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	for _, e := range edit {
		e(q)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

// records renders records in zone-file form, for exact comparison.
func records(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

// want parses zone-file lines and renders them as records does.
func want(t *testing.T, lines ...string) []string {
	t.Helper()
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("bad test record %q: %v", l, err)
		}
		out = append(out, rr.String())
	}
	return out
}

// soaLine is the zone's SOA in zone-file form, as the Server sends it.
const soaLine = testZone + ". 5 IN SOA " + testZone + ". hostmaster." + testZone + ". 1 3600 600 86400 5"

// waitFor polls cond every few milliseconds until it holds or the deadline
// passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}
