package sipedge

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The declared set is driven by the caller's clock; these tests pass the
// time in.

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestDeclared_OperatorPrefixes(t *testing.T) {
	d := newDeclared(prefixes("10.1.0.0/16", "2001:db8:1::/48", "::ffff:192.0.2.0/120"), time.Minute)
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"10.1.2.3", true},
		{"10.2.0.1", false},
		{"2001:db8:1:5::1", true},
		{"2001:db8:2::1", false},
		{"192.0.2.200", true}, // declared IPv4-mapped, matched unmapped
		{"192.0.3.1", false},
		{"::a01:203", false}, // 10.1.2.3's bits as IPv6 are not 10.1.2.3
	} {
		if got := d.contains(netip.MustParseAddr(tc.ip), floodT0); got != tc.want {
			t.Errorf("contains(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if d.contains(netip.Addr{}, floodT0) {
		t.Error("the zero address is declared")
	}
}

// TestDeclared_AccountPrefixesExpireWithdrawAndShare: an account's
// prefixes count until TTL after its view was last read, a view without
// them withdraws them at once, and a prefix two accounts declare stays
// while either does.
func TestDeclared_AccountPrefixesExpireWithdrawAndShare(t *testing.T) {
	d := newDeclared(nil, 10*time.Minute)
	sbc := netip.MustParseAddr("203.0.113.9")
	d.account("acme", prefixes("203.0.113.0/24"), floodT0)
	if !d.contains(sbc, floodT0.Add(9*time.Minute)) {
		t.Fatal("declared address not contained within the TTL")
	}
	d.account("acme", prefixes("203.0.113.0/24"), floodT0.Add(9*time.Minute)) // read again
	if !d.contains(sbc, floodT0.Add(18*time.Minute)) {
		t.Fatal("a view read again did not renew the TTL")
	}
	if d.contains(sbc, floodT0.Add(19*time.Minute)) {
		t.Fatal("declared address still contained a TTL after the view was last read")
	}

	d.account("acme", prefixes("203.0.113.0/24"), floodT0.Add(20*time.Minute))
	d.account("globex", prefixes("203.0.113.0/24", "198.51.100.0/24"), floodT0.Add(20*time.Minute))
	d.account("acme", nil, floodT0.Add(21*time.Minute))
	if !d.contains(sbc, floodT0.Add(21*time.Minute)) {
		t.Fatal("a prefix globex declares went with acme's withdrawal")
	}
	d.account("globex", prefixes("198.51.100.0/24"), floodT0.Add(22*time.Minute))
	if d.contains(sbc, floodT0.Add(22*time.Minute)) {
		t.Fatal("a prefix no account declares any more is still contained")
	}
	if !d.contains(netip.MustParseAddr("198.51.100.1"), floodT0.Add(22*time.Minute)) {
		t.Fatal("globex's other prefix lost")
	}
	d.account("globex", nil, floodT0.Add(23*time.Minute))
	if len(d.owners) != 0 || len(d.accounts) != 0 || len(d.bits) != 0 || len(d.lens) != 0 {
		t.Fatalf("after every withdrawal the set keeps owners %v accounts %v bits %v lens %v", d.owners, d.accounts, d.bits, d.lens)
	}
}

// TestDeclared_StaleAccountsSwept: accounts whose views were not read for
// a TTL are forgotten, so memory follows the accounts in use.
func TestDeclared_StaleAccountsSwept(t *testing.T) {
	d := newDeclared(nil, time.Minute)
	d.account("acme", prefixes("203.0.113.0/24"), floodT0)
	d.account("globex", prefixes("198.51.100.0/24"), floodT0.Add(2*time.Minute))
	if _, kept := d.accounts["acme"]; kept || len(d.accounts) != 1 {
		t.Fatalf("accounts = %v, want acme swept and globex kept", d.accounts)
	}
}

func TestTrustConfig_Defaults(t *testing.T) {
	c := TrustConfig{}
	c.fill()
	if c.Rate != 5000 || c.Burst != 10000 || c.TTL != trustFor {
		t.Fatalf("defaults = %+v, want Rate 5000, Burst 10000, TTL %v", c, trustFor)
	}
	c = TrustConfig{Rate: -1}
	c.fill()
	if c.limit() != rate.Inf || c.Burst != 2 {
		t.Fatalf("Rate -1: limit %v burst %d, want no limit", c.limit(), c.Burst)
	}
}

// BenchmarkDeclared_Contains: the read filter's lookup for every packet,
// with 10,000 accounts declaring 4 prefixes each of 4 lengths: its cost
// follows the distinct prefix lengths, not the prefixes.
func BenchmarkDeclared_Contains(b *testing.B) {
	d := newDeclared(prefixes("192.0.2.0/24"), time.Hour)
	for i := range 10000 {
		var ps []netip.Prefix
		for j, bits := range []int{24, 28, 30, 32} {
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), byte(j * 16)}), bits).Masked())
		}
		d.account(fmt.Sprint("a", i), ps, floodT0)
	}
	hit, miss := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("198.51.100.1")
	b.ResetTimer()
	for i := range b.N {
		ip := hit
		if i%2 == 1 {
			ip = miss
		}
		d.contains(ip, floodT0)
	}
}
