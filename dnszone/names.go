package dnszone

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Service labels of SRV owner names (RFC 2782, RFC 3263 §4.1): the SRV
// records of name for a transport live at srvPrefix[transport]+name.
var srvPrefix = map[string]string{
	TransportUDP: "_sip._udp.",
	TransportTCP: "_sip._tcp.",
	TransportTLS: "_sips._tcp.",
}

// Host labels: the SRV target of a target with address ip, under name, is
// hostLabel(ip)+"."+name. The leading underscore keeps them apart from
// account and feature ids, which are [a-z0-9-].
const (
	hostPrefix4 = "_ip4-" // _ip4-10-0-0-7: the dotted quad with '-' for '.'
	hostPrefix6 = "_ip6-" // _ip6-20010db8000000000000000000000001: 32 hex digits
)

// hostLabel names the SRV target host of ip (see the package doc).
func hostLabel(ip netip.Addr) string {
	if ip.Is4() {
		return hostPrefix4 + strings.ReplaceAll(ip.String(), ".", "-")
	}
	b := ip.As16()
	return hostPrefix6 + hex.EncodeToString(b[:])
}

// parseHostLabel is the inverse of hostLabel. It accepts only the form
// hostLabel writes, so that each address has exactly one host name.
func parseHostLabel(label string) (netip.Addr, bool) {
	var ip netip.Addr
	if rest, ok := strings.CutPrefix(label, hostPrefix4); ok {
		ip, _ = netip.ParseAddr(strings.ReplaceAll(rest, "-", "."))
	} else if rest, ok := strings.CutPrefix(label, hostPrefix6); ok {
		if b, err := hex.DecodeString(rest); err == nil && len(b) == 16 {
			ip = netip.AddrFrom16([16]byte(b))
		}
	}
	// An IPv4 target is named by _ip4- only.
	if !ip.IsValid() || ip.Is4In6() || hostLabel(ip) != label {
		return netip.Addr{}, false
	}
	return ip, true
}

// normalizeIP makes ip the form the zone serves: IPv4-mapped IPv6
// addresses as IPv4, without an IPv6 zone. The zero Addr stays invalid.
func normalizeIP(ip netip.Addr) netip.Addr {
	return ip.Unmap().WithZone("")
}

// nameKind says what a query name is to the zone.
type nameKind int

const (
	// kindOutside: not the zone nor below it.
	kindOutside nameKind = iota
	// kindNone: below the zone, but no name of this shape can exist (a
	// label outside [a-z0-9-], an unknown service label): NXDOMAIN without
	// asking the TargetSource.
	kindNone
	// kindApex: the zone itself, which holds the SOA.
	kindApex
	// kindName: a name the TargetSource may know (account or forwarding name).
	kindName
	// kindService: _sip._udp.<base>, _sip._tcp.<base> or _sips._tcp.<base>,
	// which hold SRV records.
	kindService
	// kindServiceParent: _udp.<base> or _tcp.<base>, the empty
	// non-terminals between a service name and its base (RFC 8020: they
	// exist when the service names below them do).
	kindServiceParent
	// kindHost: <host label>.<base>, an SRV target.
	kindHost
)

// parsedName is a query name taken apart.
type parsedName struct {
	kind nameKind
	// base is the name the TargetSource is asked about (kinds Name, Service,
	// ServiceParent, Host).
	base string
	// transport is the service's transport (kindService).
	transport string
	// ip is the address a host label names (kindHost).
	ip netip.Addr
}

// parseName classifies qname (lowercase, no trailing dot) against zone
// (lowercase, no trailing dot).
func parseName(qname, zone string) parsedName {
	if qname == zone {
		return parsedName{kind: kindApex}
	}
	rel, ok := strings.CutSuffix(qname, "."+zone)
	if !ok {
		return parsedName{kind: kindOutside}
	}
	labels := strings.Split(rel, ".")
	first := labels[0]
	switch {
	case first == "_sip" || first == "_sips":
		if len(labels) < 3 {
			return parsedName{kind: kindNone}
		}
		service := first + "." + labels[1] + "."
		for transport, prefix := range srvPrefix {
			if prefix == service {
				return withBase(parsedName{kind: kindService, transport: transport}, labels[2:], zone)
			}
		}
		return parsedName{kind: kindNone}
	case first == "_udp" || first == "_tcp":
		return withBase(parsedName{kind: kindServiceParent}, labels[1:], zone)
	case strings.HasPrefix(first, "_ip"):
		ip, ok := parseHostLabel(first)
		if !ok {
			return parsedName{kind: kindNone}
		}
		return withBase(parsedName{kind: kindHost, ip: ip}, labels[1:], zone)
	default:
		return withBase(parsedName{kind: kindName}, labels, zone)
	}
}

// withBase sets p.base to labels under zone, or returns kindNone when a
// label is not an id.
func withBase(p parsedName, labels []string, zone string) parsedName {
	if len(labels) == 0 || slices.ContainsFunc(labels, func(l string) bool { return !isIDLabel(l) }) {
		return parsedName{kind: kindNone}
	}
	p.base = strings.Join(labels, ".") + "." + zone
	return p
}

// isIDLabel reports whether l can be an account or feature id: 1 to 63 of
// [a-z0-9-] (a DNS label is at most 63 octets, RFC 1035 §2.3.4).
func isIDLabel(l string) bool {
	return l != "" && len(l) <= 63 && !strings.ContainsFunc(l, func(c rune) bool {
		return (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-'
	})
}

// normalizeZone lowercases zone and drops a trailing dot; it fails unless
// zone is one or more id labels of at most 253 octets in all.
func normalizeZone(zone string) (string, error) {
	z := strings.ToLower(strings.TrimSuffix(zone, "."))
	if z == "" {
		return "", fmt.Errorf("zone is empty; give the DNS name the accounts live under, e.g. sip.example.com")
	}
	if len(z) > 253 {
		return "", fmt.Errorf("zone %q is %d octets long; a DNS name has at most 253", zone, len(z))
	}
	for i, l := range strings.Split(z, ".") {
		if !isIDLabel(l) {
			return "", fmt.Errorf("zone %q: label %d (%q) must be 1-63 letters, digits or '-'", zone, i+1, l)
		}
	}
	return z, nil
}
