package fraud

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
)

// dest is a destination as the indicators see it: the normalized text, its
// hash, and, when it is a telephone number, its digits as a number.
type dest struct {
	text   string // digits with a leading '+' for a number; the lower-cased user otherwise
	hash   uint32
	num    uint64 // the digits (without '+') when isNum
	digits uint8  // how many digits num has
	isNum  bool
}

// NormalizeDestination returns the form of a destination that the
// indicators, the safe list, the prefix lists and blocks compare: for a
// telephone number (digits with an optional leading '+' or "00" and the
// usual separators " -.()"), '+' and its digits; for anything else (a SIP
// URI user such as a device id) the lower-cased text. A "sip:" or "tel:"
// scheme and anything from '@' or ';' on are removed first.
func NormalizeDestination(s string) string { return parseDest(s).text }

func parseDest(s string) dest {
	s = strings.TrimSpace(s)
	for _, scheme := range []string{"sip:", "sips:", "tel:"} {
		if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
			s = s[len(scheme):]
			break
		}
	}
	if i := strings.IndexAny(s, "@;"); i >= 0 {
		s = s[:i]
	}
	var buf [24]byte
	n := 0
	num := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == len(buf) {
				num = false
			} else {
				buf[n] = c
				n++
			}
		case c == '+' && i == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			num = false
		}
		if !num {
			break
		}
	}
	digits, _ := bytes.CutPrefix(buf[:n], []byte("00"))
	if !num || len(digits) == 0 || len(digits) > 19 {
		t := strings.ToLower(s)
		return dest{text: t, hash: hash32(t)}
	}
	d := dest{isNum: true, digits: uint8(len(digits))}
	for _, c := range digits {
		d.num = d.num*10 + uint64(c-'0')
	}
	d.text = "+" + string(digits)
	d.hash = hash32(d.text)
	return d
}

// hash32 is FNV-1a-32 of s, finalized by mix32.
func hash32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return mix32(h)
}

// mix32 finalizes a hash (murmur3's fmix32) so that bloom-filter probes
// taken from its bits are independent enough.
func mix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// matchPrefix reports whether the normalized destination d matches entry, a
// safe-list or prefix-list entry: an entry ending in '*' matches every
// destination that starts with the rest; otherwise the whole destination
// must be equal. Entries are normalized like destinations.
func matchPrefix(d string, entry string) bool {
	if strings.HasSuffix(entry, "*") {
		return strings.HasPrefix(d, entry[:len(entry)-1])
	}
	return d == entry
}

// matchAny reports whether d matches any of entries (see matchPrefix).
func matchAny(d string, entries []string) bool {
	return slices.ContainsFunc(entries, func(e string) bool { return matchPrefix(d, e) })
}

// countryCode returns the E.164 country code (1 to 3 digits) that starts
// the number d (digits without '+'), or "" when none is assigned.
func countryCode(digits string) string {
	for n := 1; n <= 3 && n <= len(digits); n++ {
		if countryCodes[digits[:n]] {
			return digits[:n]
		}
	}
	return ""
}

// NetworkOf returns the network a request's source belongs to, as the
// new-source indicator compares it: the /24 of an IPv4 address or the /48
// of an IPv6 one. source is an address, "ip:port", or
// "transport:ip:port" (the messaging supervisor's CheckMessage.source). It
// returns source itself, lower-cased, when it holds no address.
func NetworkOf(source string) string {
	s := strings.TrimSpace(source)
	if i := strings.Index(s, ":"); i > 0 && i < 5 && !strings.ContainsAny(s[:i], "0123456789") {
		s = s[i+1:] // "udp:" "tcp:" "tls:" "ws:" "wss:"
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return prefixOf(ap.Addr())
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return prefixOf(a)
	}
	return strings.ToLower(source)
}

func prefixOf(a netip.Addr) string {
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}
