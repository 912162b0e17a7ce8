package actors

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Bounds on an account's sip_trusted_sources. An account's declaration
// moves the sources it names from the SIP edge's per-source flood limit
// to the limit all trusted sources share, for everyone's traffic from
// them, so an account may name only a few, narrow prefixes: a site's NAT
// or an SBC cluster, never a provider's network.
const (
	// MaxTrustedSources is how many prefixes one account may declare.
	MaxTrustedSources = 16
	// MinTrustedBits4 and MinTrustedBits6 are the shortest prefixes an
	// account may declare: a /24 of IPv4 (256 addresses), a /48 of IPv6
	// (one site).
	MinTrustedBits4 = 24
	MinTrustedBits6 = 48
)

// ParseTrustedSources checks an account's sip_trusted_sources and returns
// them canonical (masked, IPv4-mapped addresses unmapped, sorted, each
// once). A bare address is its own prefix (/32, /128).
func ParseTrustedSources(in []string) ([]netip.Prefix, error) {
	if len(in) > MaxTrustedSources {
		return nil, fmt.Errorf("at most %d prefixes, got %d", MaxTrustedSources, len(in))
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		minBits := MinTrustedBits4
		if p.Addr().Is6() {
			minBits = MinTrustedBits6
		}
		if p.Bits() < minBits {
			return nil, fmt.Errorf("%s is wider than an account may declare (at most /%d for IPv4, /%d for IPv6)", p, MinTrustedBits4, MinTrustedBits6)
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return cmp.Or(a.Addr().Compare(b.Addr()), a.Bits()-b.Bits()) })
	return slices.Compact(out), nil
}

// ParsePrefix reads a CIDR prefix ("203.0.113.0/24") or an address
// ("203.0.113.7", its own prefix), unmapping IPv4-mapped IPv6 and masking
// the host bits.
func ParsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: a prefix has no zone", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix (such as 203.0.113.0/24) or an address", s)
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix must be /96 or longer", s)
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// PrefixStrings is ps as text.
func PrefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
