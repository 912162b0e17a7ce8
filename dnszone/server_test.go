package dnszone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// checkHeader fails unless resp has rcode, AA as given, and RA clear: the
// server is an authority that never recurses (RFC 1035 §4.1.1).
func checkHeader(t *testing.T, resp *dns.Msg, rcode int, aa bool) {
	t.Helper()
	if resp.Rcode != rcode {
		t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[rcode])
	}
	if resp.Authoritative != aa {
		t.Errorf("AA = %v, want %v", resp.Authoritative, aa)
	}
	if resp.RecursionAvailable {
		t.Error("RA is set; the server does not recurse")
	}
}

func TestServer_AccountName_A_AAAA_RFC1035_4_1_1_AuthoritativeNoRecursion(t *testing.T) {
	dir := newCountingTargets(testTargets())
	s, _ := startServer(t, dir)
	name := "acme." + testZone + "."

	resp := ask(t, s.Addr(), "udp", name, dns.TypeA)
	checkHeader(t, resp, dns.RcodeSuccess, true)
	if got, w := records(resp.Answer), want(t, name+" 5 IN A 10.0.0.1", name+" 5 IN A 10.0.0.2"); !slices.Equal(got, w) {
		t.Errorf("A answer:\n got %q\nwant %q", got, w)
	}
	if len(resp.Ns) != 0 || len(resp.Extra) != 0 {
		t.Errorf("A answer has authority %v and additional %v; want none", resp.Ns, resp.Extra)
	}

	resp = ask(t, s.Addr(), "udp", name, dns.TypeAAAA)
	checkHeader(t, resp, dns.RcodeSuccess, true)
	if got, w := records(resp.Answer), want(t, name+" 5 IN AAAA 2001:db8::1"); !slices.Equal(got, w) {
		t.Errorf("AAAA answer:\n got %q\nwant %q", got, w)
	}
	if n := dir.count("acme." + testZone); n != 2 {
		t.Errorf("TargetSource asked %d times for acme, want 2 (one per query)", n)
	}
}

func TestServer_AAAAForIPv4OnlyName_RFC2308_2_2_NoDataWithSOA(t *testing.T) {
	s, _ := startServer(t, newCountingTargets(testTargets()))
	resp := ask(t, s.Addr(), "udp", "sales.acme."+testZone, dns.TypeAAAA)
	checkHeader(t, resp, dns.RcodeSuccess, true)
	if len(resp.Answer) != 0 {
		t.Errorf("answer = %v, want none", resp.Answer)
	}
	if got, w := records(resp.Ns), want(t, soaLine); !slices.Equal(got, w) {
		t.Errorf("authority:\n got %q\nwant %q", got, w)
	}
}

func TestServer_ForwardingName_SRV_RFC2782_TargetsAndAdditional(t *testing.T) {
	dir := newCountingTargets(testTargets())
	s, _ := startServer(t, dir)
	base := "sales.acme." + testZone + "."
	h1, h2, h3, h4 := "_ip4-10-1-0-1."+base, "_ip4-10-1-0-2."+base, "_ip4-10-1-0-3."+base, "_ip4-10-1-0-4."+base

	resp := ask(t, s.Addr(), "udp", "_sip._udp."+base, dns.TypeSRV)
	checkHeader(t, resp, dns.RcodeSuccess, true)
	if got, w := records(resp.Answer), want(t,
		"_sip._udp."+base+" 5 IN SRV 10 60 5070 "+h1,
		"_sip._udp."+base+" 5 IN SRV 10 40 5070 "+h2,
		"_sip._udp."+base+" 5 IN SRV 20 0 5080 "+h3,
	); !slices.Equal(got, w) {
		t.Errorf("SRV answer:\n got %q\nwant %q", got, w)
	}
	if got, w := records(resp.Extra), want(t, h1+" 5 IN A 10.1.0.1", h2+" 5 IN A 10.1.0.2", h3+" 5 IN A 10.1.0.3"); !slices.Equal(got, w) {
		t.Errorf("additional:\n got %q\nwant %q", got, w)
	}
	if n := dir.count("sales.acme." + testZone); n != 1 {
		t.Errorf("TargetSource asked %d times for sales.acme (without the _sip._udp prefix), want 1", n)
	}

	// _sips._tcp holds the TLS targets (RFC 3263 §4.1).
	resp = ask(t, s.Addr(), "udp", "_sips._tcp."+base, dns.TypeSRV)
	checkHeader(t, resp, dns.RcodeSuccess, true)
	if got, w := records(resp.Answer), want(t, "_sips._tcp."+base+" 5 IN SRV 0 0 5061 "+h4); !slices.Equal(got, w) {
		t.Errorf("_sips._tcp answer:\n got %q\nwant %q", got, w)
	}

	// No TCP targets: the service name exists, without records.
	resp = ask(t, s.Addr(), "udp", "_sip._tcp."+base, dns.TypeSRV)
	checkHeader(t, resp, dns.RcodeSuccess, true)
	if len(resp.Answer) != 0 || !slices.Equal(records(resp.Ns), want(t, soaLine)) {
		t.Errorf("_sip._tcp: answer %v, authority %v; want none and the SOA", resp.Answer, resp.Ns)
	}
}

func TestServer_SRVTargetHosts_RFC2782_ResolveToTheirAddress(t *testing.T) {
	s, _ := startServer(t, newCountingTargets(testTargets()))
	acme := "acme." + testZone + "."
	v6host := "_ip6-20010db8000000000000000000000001." + acme

	// Every SRV target of acme resolves, through the same server, to the
	// address in the additional section.
	srv := ask(t, s.Addr(), "udp", "_sip._udp."+acme, dns.TypeSRV)
	if len(srv.Answer) != 3 {
		t.Fatalf("SRV answer = %v, want 3 records", srv.Answer)
	}
	for i, rr := range srv.Answer {
		host := rr.(*dns.SRV).Target
		qtype := dns.TypeA
		if host == v6host {
			qtype = dns.TypeAAAA
		}
		resp := ask(t, s.Addr(), "udp", host, qtype)
		checkHeader(t, resp, dns.RcodeSuccess, true)
		if got, w := records(resp.Answer), records(srv.Extra[i:i+1]); !slices.Equal(got, w) {
			t.Errorf("%s: answer %q, want %q", host, got, w)
		}
	}

	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"_ip4-10-0-0-1." + acme + " (A of an IPv4 host)", dns.TypeA, dns.RcodeSuccess},
		{"_ip4-10-0-0-1." + acme + " (AAAA of an IPv4 host: no data)", dns.TypeAAAA, dns.RcodeSuccess},
		{"_ip4-10-9-9-9." + acme + " (not a target)", dns.TypeA, dns.RcodeNameError},
		{"_ip4-10-0-0-01." + acme + " (not the canonical spelling)", dns.TypeA, dns.RcodeNameError},
		{"_ip6-0a." + acme + " (malformed)", dns.TypeA, dns.RcodeNameError},
		{"_ip4-10-0-0-1.nobody." + testZone + ". (base does not exist)", dns.TypeA, dns.RcodeNameError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, _, _ := strings.Cut(tc.name, " ")
			resp := ask(t, s.Addr(), "udp", name, tc.qtype)
			checkHeader(t, resp, tc.rcode, true)
			wantAnswers := 0
			if tc.rcode == dns.RcodeSuccess && tc.qtype == dns.TypeA {
				wantAnswers = 1
			}
			if len(resp.Answer) != wantAnswers {
				t.Errorf("answer = %v, want %d records", resp.Answer, wantAnswers)
			}
		})
	}
}

func TestServer_UnknownNames_RFC2308_2_1_NXDOMAIN(t *testing.T) {
	dir := newCountingTargets(testTargets())
	s, _ := startServer(t, dir)
	for _, tc := range []struct {
		desc     string
		name     string
		aa       bool // AA and SOA: the server is the authority for the name
		askedDir string
	}{
		{"unknown account", "nobody." + testZone, true, "nobody." + testZone},
		{"unknown forwarding name", "x.nobody." + testZone, true, "x.nobody." + testZone},
		{"service of unknown name", "_sip._udp.nobody." + testZone, true, "nobody." + testZone},
		{"unknown service label", "_xmpp._tcp.acme." + testZone, true, ""},
		{"label with an underscore", "_foo.acme." + testZone, true, ""},
		{"outside the zone", "example.com", false, ""},
		{"a sibling of the zone", "acme.switchboard.test", false, ""},
		{"a suffix lookalike", "acme.xsip.switchboard.test", false, ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := dir.total()
			resp := ask(t, s.Addr(), "udp", tc.name, dns.TypeA)
			checkHeader(t, resp, dns.RcodeNameError, tc.aa)
			if len(resp.Answer) != 0 {
				t.Errorf("answer = %v, want none", resp.Answer)
			}
			wantNs := []string{}
			if tc.aa {
				wantNs = want(t, soaLine)
			}
			if got := records(resp.Ns); !slices.Equal(got, wantNs) {
				t.Errorf("authority:\n got %q\nwant %q", got, wantNs)
			}
			switch {
			case tc.askedDir != "" && dir.count(tc.askedDir) == 0:
				t.Errorf("TargetSource was not asked about %q", tc.askedDir)
			case tc.askedDir == "" && dir.total() != before:
				t.Errorf("TargetSource was asked about a name that cannot exist")
			}
		})
	}
}

func TestServer_TCP_RFC7766_AnswersLikeUDP(t *testing.T) {
	s, _ := startServer(t, newCountingTargets(testTargets()))
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"acme." + testZone, dns.TypeA},
		{"_sip._udp.sales.acme." + testZone, dns.TypeSRV},
		{"nobody." + testZone, dns.TypeA},
	} {
		udp := ask(t, s.Addr(), "udp", q.name, q.qtype)
		tcp := ask(t, s.Addr(), "tcp", q.name, q.qtype)
		checkHeader(t, tcp, udp.Rcode, true)
		if !slices.Equal(records(tcp.Answer), records(udp.Answer)) || !slices.Equal(records(tcp.Extra), records(udp.Extra)) {
			t.Errorf("%s over TCP: answer %v extra %v; over UDP: %v %v", q.name, tcp.Answer, tcp.Extra, udp.Answer, udp.Extra)
		}
	}
}

func TestServer_LargeAnswer_RFC1035_4_2_1_TruncatedOverUDPWholeOverTCP(t *testing.T) {
	const n = 40
	targets := map[string][]Target{}
	for i := range n {
		targets["big."+testZone] = append(targets["big."+testZone],
			Target{IP: netip.AddrFrom4([4]byte{10, 3, 0, byte(i + 1)}), Port: 5060, Transport: TransportUDP, Weight: 1})
	}
	s, _ := startServer(t, newCountingTargets(targets))
	name := "_sip._udp.big." + testZone

	udp := ask(t, s.Addr(), "udp", name, dns.TypeSRV)
	if !udp.Truncated {
		t.Errorf("UDP answer without EDNS carries %d SRV and TC clear; %d do not fit 512 bytes", len(udp.Answer), n)
	}
	udp.Compress = true // as the server sent it
	if b, _ := udp.Pack(); len(b) > dns.MinMsgSize {
		t.Errorf("UDP answer is %d bytes, more than 512 (RFC 1035 §4.2.1)", len(b))
	}
	edns := ask(t, s.Addr(), "udp", name, dns.TypeSRV, func(m *dns.Msg) { m.SetEdns0(4096, false) })
	edns.Compress = true
	if b, _ := edns.Pack(); len(b) > ednsSize {
		t.Errorf("UDP answer with EDNS is %d bytes, more than the %d the server offers", len(b), ednsSize)
	}
	tcp := ask(t, s.Addr(), "tcp", name, dns.TypeSRV)
	if tcp.Truncated || len(tcp.Answer) != n || len(tcp.Extra) != n {
		t.Errorf("TCP answer: TC=%v, %d SRV, %d additional; want all %d", tcp.Truncated, len(tcp.Answer), len(tcp.Extra), n)
	}
}

func TestServer_ApexAndOtherTypes_RFC8482(t *testing.T) {
	s, _ := startServer(t, newCountingTargets(testTargets()))
	apex := testZone + "."
	for _, tc := range []struct {
		desc   string
		name   string
		qtype  uint16
		answer []string
		aa     bool
		soa    bool
	}{
		{"SOA at the apex", apex, dns.TypeSOA, []string{soaLine}, true, false},
		{"NS at the apex (not served)", apex, dns.TypeNS, nil, true, true},
		{"A at the apex", apex, dns.TypeA, nil, true, true},
		{"ANY for a name", "acme." + apex, dns.TypeANY, nil, true, true},
		{"TXT for a name", "acme." + apex, dns.TypeTXT, nil, true, true},
		{"SRV for a name without service labels", "acme." + apex, dns.TypeSRV, nil, true, true},
		{"A for a service name", "_sip._udp.acme." + apex, dns.TypeA, nil, true, true},
		{"_udp empty non-terminal (RFC 8020)", "_udp.acme." + apex, dns.TypeA, nil, true, true},
		{"an account with no alive node", "empty." + apex, dns.TypeA, nil, true, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			resp := ask(t, s.Addr(), "udp", tc.name, tc.qtype)
			checkHeader(t, resp, dns.RcodeSuccess, tc.aa)
			if got, w := records(resp.Answer), want(t, tc.answer...); !slices.Equal(got, w) {
				t.Errorf("answer:\n got %q\nwant %q", got, w)
			}
			if tc.soa && !slices.Equal(records(resp.Ns), want(t, soaLine)) {
				t.Errorf("authority = %v, want the SOA", resp.Ns)
			}
		})
	}

	t.Run("class CH", func(t *testing.T) {
		resp := ask(t, s.Addr(), "udp", "acme."+apex, dns.TypeA, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS })
		checkHeader(t, resp, dns.RcodeSuccess, false)
		if len(resp.Answer)+len(resp.Ns) != 0 {
			t.Errorf("class CH: answer %v authority %v, want none", resp.Answer, resp.Ns)
		}
	})
}

func TestServer_QueryNamesAreCaseInsensitive_RFC4343(t *testing.T) {
	dir := newCountingTargets(testTargets())
	s, _ := startServer(t, dir)
	name := "ACME.Sip.SwitchBoard.TEST."
	resp := ask(t, s.Addr(), "udp", name, dns.TypeA)
	checkHeader(t, resp, dns.RcodeSuccess, true)
	if resp.Question[0].Name != name {
		t.Errorf("question echoed as %q, want %q unchanged", resp.Question[0].Name, name)
	}
	if got, w := records(resp.Answer), want(t, name+" 5 IN A 10.0.0.1", name+" 5 IN A 10.0.0.2"); !slices.Equal(got, w) {
		t.Errorf("answer:\n got %q\nwant %q", got, w)
	}
	if dir.count("acme."+testZone) != 1 {
		t.Errorf("TargetSource not asked with the lowercase name; calls: %v", dir.calls)
	}
}

func TestServer_Opcodes_RFC1035_4_1_1_NotImplemented(t *testing.T) {
	s, _ := startServer(t, newCountingTargets(testTargets()))
	for _, op := range []int{dns.OpcodeNotify, dns.OpcodeUpdate, dns.OpcodeStatus} {
		t.Run(dns.OpcodeToString[op], func(t *testing.T) {
			resp := ask(t, s.Addr(), "udp", testZone, dns.TypeSOA, func(m *dns.Msg) { m.Opcode = op })
			if resp.Rcode != dns.RcodeNotImplemented {
				t.Errorf("rcode = %s, want NOTIMP", dns.RcodeToString[resp.Rcode])
			}
			if len(resp.Answer) != 0 {
				t.Errorf("answer = %v, want none", resp.Answer)
			}
		})
	}
}

func TestServer_TargetSourceFailure_SERVFAIL(t *testing.T) {
	t.Run("error", func(t *testing.T) {
		dir := newCountingTargets(testTargets())
		dir.setErr(errors.New("actor unreachable"))
		s, _ := startServer(t, dir)
		resp := ask(t, s.Addr(), "udp", "acme."+testZone, dns.TypeA)
		checkHeader(t, resp, dns.RcodeServerFailure, false)
	})
	t.Run("timeout", func(t *testing.T) {
		dir := newCountingTargets(testTargets())
		dir.block = true
		s, _ := startServer(t, dir, func(c *Config) { c.QueryTimeout = 50 * time.Millisecond })
		start := time.Now()
		resp := ask(t, s.Addr(), "udp", "acme."+testZone, dns.TypeA)
		checkHeader(t, resp, dns.RcodeServerFailure, false)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("SERVFAIL took %v; QueryTimeout is 50ms", took)
		}
	})
}

func TestServer_EDNS_RFC6891(t *testing.T) {
	s, _ := startServer(t, newCountingTargets(testTargets()))
	t.Run("OPT answered with OPT (§7)", func(t *testing.T) {
		resp := ask(t, s.Addr(), "udp", "acme."+testZone, dns.TypeA, func(m *dns.Msg) { m.SetEdns0(4096, false) })
		checkHeader(t, resp, dns.RcodeSuccess, true)
		opt := resp.IsEdns0()
		if opt == nil || opt.UDPSize() != ednsSize {
			t.Fatalf("OPT = %v, want one offering %d bytes", opt, ednsSize)
		}
		if len(resp.Answer) != 2 {
			t.Errorf("answer = %v, want 2 A records", resp.Answer)
		}
	})
	t.Run("unknown version is BADVERS (§6.1.3)", func(t *testing.T) {
		resp := ask(t, s.Addr(), "udp", "acme."+testZone, dns.TypeA, func(m *dns.Msg) {
			m.SetEdns0(4096, false)
			m.IsEdns0().SetVersion(1)
		})
		if resp.Rcode != dns.RcodeBadVers || len(resp.Answer) != 0 {
			t.Errorf("rcode %s with %d answers, want BADVERS and none", dns.RcodeToString[resp.Rcode], len(resp.Answer))
		}
	})
	t.Run("without OPT, none", func(t *testing.T) {
		if resp := ask(t, s.Addr(), "udp", "acme."+testZone, dns.TypeA); resp.IsEdns0() != nil {
			t.Errorf("answer to a query without EDNS has OPT %v", resp.IsEdns0())
		}
	})
}

func TestServer_Metrics(t *testing.T) {
	s, reg := startServer(t, newCountingTargets(testTargets()))
	ask(t, s.Addr(), "udp", "acme."+testZone, dns.TypeA)
	ask(t, s.Addr(), "tcp", "acme."+testZone, dns.TypeA)
	ask(t, s.Addr(), "udp", "nobody."+testZone, dns.TypeSRV)
	ask(t, s.Addr(), "udp", "acme."+testZone, dns.TypeMX)

	// The answer is written before it is counted: poll.
	counter := func(qtype, rcode string) func() float64 {
		return func() float64 {
			var m dto.Metric
			if err := s.m.queries.WithLabelValues(qtype, rcode).Write(&m); err != nil {
				t.Fatal(err)
			}
			return m.GetCounter().GetValue()
		}
	}
	for _, c := range []struct {
		qtype, rcode string
		n            float64
	}{{"A", "NOERROR", 2}, {"SRV", "NXDOMAIN", 1}, {"other", "NOERROR", 1}} {
		get := counter(c.qtype, c.rcode)
		waitFor(t, fmt.Sprintf("switchboard_dns_queries_total{qtype=%q,rcode=%q} = %v", c.qtype, c.rcode, c.n), func() bool { return get() == c.n })
	}
	waitFor(t, "4 observations of switchboard_dns_query_seconds", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "switchboard_dns_query_seconds" {
				return mf.GetMetric()[0].GetHistogram().GetSampleCount() == 4
			}
		}
		return false
	})

	// A second Server on the same registry shares the metrics.
	cfg := DefaultConfig()
	cfg.Zone, cfg.Addr, cfg.Targets, cfg.Registerer = testZone, "127.0.0.1:0", MapTargets{}, reg
	s2, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("second Server on one registry: %v", err)
	}
	s2.Close()
	if s2.m.queries != s.m.queries {
		t.Error("second Server did not reuse the registered counter")
	}
	// A foreign metric of the same name is an error, not a panic.
	bad := prometheus.NewRegistry()
	bad.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_dns_query_seconds", Help: "x"}))
	cfg.Registerer = bad
	if _, err := NewServer(cfg); err == nil {
		t.Error("NewServer registered over a foreign metric of the same name")
	}
}

func TestServer_Lifecycle(t *testing.T) {
	newServer := func(t *testing.T, addr string) *Server {
		t.Helper()
		cfg := DefaultConfig()
		cfg.Zone, cfg.Addr, cfg.Targets = testZone, addr, MapTargets(testTargets())
		s, err := NewServer(cfg)
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		return s
	}

	t.Run("UDP and TCP share the port", func(t *testing.T) {
		s := newServer(t, "127.0.0.1:0")
		defer s.Close()
		_, port, _ := net.SplitHostPort(s.Addr())
		if port == "0" {
			t.Fatalf("Addr() = %s, want the bound port", s.Addr())
		}
		if s.ln.Addr().(*net.TCPAddr).Port != s.pc.LocalAddr().(*net.UDPAddr).Port {
			t.Errorf("TCP %v and UDP %v differ", s.ln.Addr(), s.pc.LocalAddr())
		}
	})

	t.Run("a taken fixed port is an error", func(t *testing.T) {
		s := newServer(t, "127.0.0.1:0")
		defer s.Close()
		cfg := DefaultConfig()
		cfg.Zone, cfg.Addr, cfg.Targets = testZone, s.Addr(), MapTargets{}
		if s2, err := NewServer(cfg); err == nil {
			s2.Close()
			t.Fatalf("second NewServer on %s succeeded", s.Addr())
		}
	})

	t.Run("Close without Run frees the port; Run after Close fails", func(t *testing.T) {
		s := newServer(t, "127.0.0.1:0")
		addr := s.Addr()
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Run(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("Run after Close = %v, want ErrClosed", err)
		}
		s2 := newServer(t, addr)
		s2.Close()
	})

	t.Run("Close stops Run and waits for it", func(t *testing.T) {
		s := newServer(t, "127.0.0.1:0")
		errc := make(chan error, 1)
		go func() { errc <- s.Run(context.Background()) }()
		ask(t, s.Addr(), "udp", "acme."+testZone, dns.TypeA) // it serves
		if err := s.Run(context.Background()); !errors.Is(err, ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case <-s.done:
		default:
			t.Fatal("Close returned before Run did")
		}
		// done is closed by Run's deferred call; the goroutine's send of
		// Run's result follows a moment later, so it is waited for with a
		// deadline rather than expected at once.
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after Close")
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		c := &dns.Client{Net: "tcp", Timeout: time.Second}
		if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("acme."+testZone+".", dns.TypeA), s.Addr()); err == nil {
			t.Error("a TCP query succeeded after Close")
		}
	})

	t.Run("context end stops Run", func(t *testing.T) {
		s := newServer(t, "127.0.0.1:0")
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Run(ctx) }()
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	})
}

func TestConfig_Validate(t *testing.T) {
	ok := func() Config {
		c := DefaultConfig()
		c.Zone, c.Targets = testZone, MapTargets{}
		return c
	}
	for _, tc := range []struct {
		desc string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"zone with a dot and capitals", func(c *Config) { c.Zone = "SIP.Example.COM." }, true},
		{"no zone", func(c *Config) { c.Zone = "" }, false},
		{"zone with an empty label", func(c *Config) { c.Zone = "sip..example" }, false},
		{"zone with an underscore", func(c *Config) { c.Zone = "_sip.example" }, false},
		{"no target source", func(c *Config) { c.Targets = nil }, false},
		{"addr without port", func(c *Config) { c.Addr = "127.0.0.1" }, false},
		{"addr with a bad port", func(c *Config) { c.Addr = "127.0.0.1:70000" }, false},
		{"TTL below a second", func(c *Config) { c.TTL = 500 * time.Millisecond }, false},
		{"TTL not whole seconds", func(c *Config) { c.TTL = 1500 * time.Millisecond }, false},
		{"negative query timeout", func(c *Config) { c.QueryTimeout = -time.Second }, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c := ok()
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}
