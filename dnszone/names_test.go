package dnszone

import (
	"net/netip"
	"strings"
	"testing"
)

func TestHostLabel_RoundTripsAndNeverLooksLikeAnID(t *testing.T) {
	for _, s := range []string{"10.0.0.7", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::", "fe80::1"} {
		ip := netip.MustParseAddr(s)
		l := hostLabel(ip)
		if isIDLabel(l) || !strings.HasPrefix(l, "_") {
			t.Errorf("hostLabel(%s) = %q could be an account or feature id", s, l)
		}
		if len(l) > 63 {
			t.Errorf("hostLabel(%s) = %q is longer than a DNS label may be (RFC 1035 §2.3.4)", s, l)
		}
		back, ok := parseHostLabel(l)
		if !ok || back != ip {
			t.Errorf("parseHostLabel(%q) = %v, %v; want %v", l, back, ok, ip)
		}
	}
	if got := hostLabel(netip.MustParseAddr("10.0.0.7")); got != "_ip4-10-0-0-7" {
		t.Errorf("hostLabel(10.0.0.7) = %q, want _ip4-10-0-0-7", got)
	}
	for _, l := range []string{
		"_ip4-10-0-0", "_ip4-10-0-0-256", "_ip4-010-0-0-1", "_ip4-10.0.0.1", "_ip4-",
		"_ip6-20010db8", "_ip6-20010DB8000000000000000000000001", "_ip6-00000000000000000000ffff0a000001", "_ip5-1",
	} {
		if ip, ok := parseHostLabel(l); ok {
			t.Errorf("parseHostLabel(%q) = %v; want rejected (each address has one spelling)", l, ip)
		}
	}
}

func TestParseName(t *testing.T) {
	const z = testZone
	for _, tc := range []struct {
		qname string
		want  parsedName
	}{
		{z, parsedName{kind: kindApex}},
		{"acme." + z, parsedName{kind: kindName, base: "acme." + z}},
		{"sales.acme." + z, parsedName{kind: kindName, base: "sales.acme." + z}},
		{"_sip._udp.acme." + z, parsedName{kind: kindService, base: "acme." + z, transport: TransportUDP}},
		{"_sip._tcp.sales.acme." + z, parsedName{kind: kindService, base: "sales.acme." + z, transport: TransportTCP}},
		{"_sips._tcp.acme." + z, parsedName{kind: kindService, base: "acme." + z, transport: TransportTLS}},
		{"_tcp.acme." + z, parsedName{kind: kindServiceParent, base: "acme." + z}},
		{"_ip4-10-0-0-1.acme." + z, parsedName{kind: kindHost, base: "acme." + z, ip: netip.MustParseAddr("10.0.0.1")}},
		{"_sips._udp.acme." + z, parsedName{kind: kindNone}},
		{"_sip._udp." + z, parsedName{kind: kindNone}},
		{"_sip." + z, parsedName{kind: kindNone}},
		{"_udp." + z, parsedName{kind: kindNone}},
		{"_sip._udp._ip4-10-0-0-1.acme." + z, parsedName{kind: kindNone}},
		{"a_b.acme." + z, parsedName{kind: kindNone}},
		{".acme." + z, parsedName{kind: kindNone}},
		{strings.Repeat("a", 64) + "." + z, parsedName{kind: kindNone}},
		{"switchboard.test", parsedName{kind: kindOutside}},
		{"xsip.switchboard.test", parsedName{kind: kindOutside}},
		{"acme.xsip.switchboard.test", parsedName{kind: kindOutside}},
	} {
		if got := parseName(tc.qname, z); got != tc.want {
			t.Errorf("parseName(%q) = %+v, want %+v", tc.qname, got, tc.want)
		}
	}
}
