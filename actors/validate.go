package actors

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// The checks here are pure: the actors apply them to every write (defence
// in depth) and the HTTP layer applies the same ones before it asks an
// actor, so both name the same field for the same fault.

// Limits on provisioned routing.
const (
	// MaxTrunkSources bounds the source prefixes of one trunk.
	MaxTrunkSources = 64
	// MaxRoutes bounds the rules of an account's route set.
	MaxRoutes = 256
	// MaxRouteUser bounds a route's user pattern, in bytes.
	MaxRouteUser = 64
	// MaxRouteMethod bounds a route's method, in bytes.
	MaxRouteMethod = 32
	// MaxFeatureTargets bounds the targets of one feature server.
	MaxFeatureTargets = 32
	// MaxTargetPriority bounds a feature target's priority and weight (the
	// range of SRV's 16-bit fields, RFC 2782).
	MaxTargetPriority = 65535
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidID reports whether v is a valid id of a group, device, trunk or
// pool: 1 to 63 characters from a-z, 0-9, '.', '_' and '-', starting with
// a letter or digit. These ids never become DNS labels (a device id is a
// SIP user, where dots are common). Accounts and features have the
// stricter rule of CheckLabelID. Reading and deleting by id accept ValidID
// for every kind, so that a record stored before the label rule can still
// be read and removed.
func ValidID(v string) bool { return idPattern.MatchString(v) }

// IDRule is CheckLabelID's rule in words, for error messages.
const IDRule = "1 to 63 characters from a-z, 0-9 and '-', starting and ending with a letter or digit, " +
	"without '-' in both the third and fourth places: one DNS label, so no '.' and no '_'"

// Errors of CheckLabelID; its error wraps one of them.
var (
	// ErrIDNotLabel: the id is not one DNS label.
	ErrIDNotLabel = errors.New("not one DNS label")
	// ErrIDReserved: the id has the form of a label reserved for another
	// use.
	ErrIDReserved = errors.New("reserved label")
)

// CheckLabelID checks an account or feature id, which names DNS labels:
// the account's DNS name is <account>.<zone> and its forwarding names
// <feature>.<account>.<zone> (AccountDNSName, ForwardingDNSName). With a
// dot in either, names would collide across tenants: account "bfs.beta"
// would own "bfs.beta.<zone>", which is also account beta's forwarding
// name for feature bfs. So an id is exactly one label: a host name label
// (RFC 1123 section 2.1), which is also a SIP domainlabel (RFC 3261
// section 25.1), of 1 to 63 octets (RFC 1035 section 2.3.4). That leaves
// out dots (and so empty labels and trailing dots), and underscores, which
// the zone reserves for its service labels (_sip, _sips, _udp, _tcp) and
// SRV target hosts (_ip4-..., _ip6-...). A '-' in both the third and
// fourth places is reserved for IDNA (RFC 5891 section 4.2.3.1:
// "xn--..." labels, which a phone or browser may display as look-alike
// Unicode). It returns nil, or an error wrapping ErrIDNotLabel or
// ErrIDReserved that says what is wrong.
func CheckLabelID(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: the id is empty", ErrIDNotLabel)
	case len(v) > 63:
		return fmt.Errorf("%w: %d characters, at most 63", ErrIDNotLabel, len(v))
	case strings.Contains(v, "."):
		return fmt.Errorf("%w: it contains '.', which would make its DNS names collide with other accounts' names", ErrIDNotLabel)
	case strings.HasPrefix(v, "_"):
		return fmt.Errorf("%w: a label starting with '_' is the zone's (_sip, _udp, _tcp, _ip4-...)", ErrIDReserved)
	case len(v) >= 4 && v[2:4] == "--":
		return fmt.Errorf("%w: '--' in the third and fourth places is reserved for IDNA labels such as \"xn--\" (RFC 5891)", ErrIDReserved)
	}
	for i, c := range v {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && i > 0 && i < len(v)-1:
		case c == '-':
			return fmt.Errorf("%w: it starts or ends with '-'", ErrIDNotLabel)
		default:
			return fmt.Errorf("%w: %q is not allowed, only a-z, 0-9 and '-'", ErrIDNotLabel, c)
		}
	}
	return nil
}

// ValidAccountID reports whether v may be an account id (CheckLabelID).
// Whoever reads an account id out of a DNS name or SIP domain should use
// it, so that no other rule can disagree.
func ValidAccountID(v string) bool { return CheckLabelID(v) == nil }

// LabelIDError is CheckLabelID as a reply's error: nil when v may be an id
// of kind ("account" or "feature"), else an invalid-input error naming
// field and saying what is wrong and what the rule is.
func LabelIDError(field, kind, v string) *actorpb.Error {
	if err := CheckLabelID(v); err != nil {
		return invalid(field, "%q is not a valid %s id (%v): use %s", v, kind, err, IDRule)
	}
	return nil
}

// ValidCallID is the rule for a call actor's identity: a SIP Call-ID made
// of characters safe in store keys and URLs (A-Z, a-z, 0-9 and
// .-_@+~!%*), at most 128 long. The SIP edge hashes any other Call-ID to
// h-<hex>, which passes too.
// It is a byte loop, not callIDChars' pattern, because the SIP edge asks it
// of every call's request (a regexp is about 18 times slower).
func ValidCallID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_@+~!%*", c) >= 0) {
			return false
		}
	}
	return true
}

// callIDChars are the characters of a call id (ValidCallID), as a pattern.
const callIDChars = `[A-Za-z0-9.\-_@+~!%*]`

// NormalizeTrunkSources checks a trunk's sources and returns them as
// canonical, masked CIDR prefixes; a bare IP address stands for its /32 or
// /128.
func NormalizeTrunkSources(sources []string) ([]string, *actorpb.Error) {
	if len(sources) == 0 || len(sources) > MaxTrunkSources {
		return nil, invalid("sources", "a trunk needs 1 to %d source prefixes, e.g. \"192.0.2.0/24\"; got %d", MaxTrunkSources, len(sources))
	}
	out := make([]string, len(sources))
	for i, s := range sources {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, invalid(fmt.Sprintf("sources[%d]", i), "%q is not a CIDR prefix or an IP address, e.g. \"192.0.2.0/24\"", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out[i] = p.Masked().String()
	}
	return out, nil
}

// CheckRoutes checks an account's route rules (syntax only: whether each
// feature exists is for the caller to ask).
func CheckRoutes(routes []*actorpb.Route) *actorpb.Error {
	if len(routes) > MaxRoutes {
		return invalid("routes", "at most %d routes; got %d", MaxRoutes, len(routes))
	}
	for i, r := range routes {
		field := func(f string) string { return fmt.Sprintf("routes[%d].%s", i, f) }
		if r == nil {
			return invalid(fmt.Sprintf("routes[%d]", i), "a route must be an object with method, user and feature")
		}
		if !validMethod(r.Method) {
			return invalid(field("method"), "%q is not a SIP method: use an upper-case method such as INVITE or MESSAGE, or \"*\" for any", r.Method)
		}
		if !validUserPattern(r.User) {
			return invalid(field("user"), "%q is not a user pattern: use an exact user (\"*97\"), a prefix ending in \"*\" (\"9*\"), or \"*\" for any, at most %d characters allowed in a SIP user part", r.User, MaxRouteUser)
		}
		if e := LabelIDError(field("feature"), "feature", r.Feature); e != nil {
			return e
		}
	}
	return nil
}

// methodPattern: "*" or an upper-case SIP token (RFC 3261 section 25.1:
// Method = extension-method = token) without "*", which means "any".
var methodPattern = regexp.MustCompile(fmt.Sprintf("^(\\*|[-A-Z0-9.!%%_+`'~]{1,%d})$", MaxRouteMethod))

func validMethod(m string) bool { return methodPattern.MatchString(m) }

// userPattern: the characters of a SIP user part (RFC 3261 section 25.1:
// unreserved, user-unreserved and %HH escapes). A trailing "*" makes it a
// prefix; "*" alone matches any user.
var userPattern = regexp.MustCompile(`^(?:[-a-zA-Z0-9_.!~*'()&=+$,;?/]|%[0-9a-fA-F]{2})+$`)

func validUserPattern(u string) bool { return len(u) <= MaxRouteUser && userPattern.MatchString(u) }

// NormalizeFeatureTargets checks a feature server's targets and returns
// copies with the transport defaulted to udp and the address in canonical
// form.
func NormalizeFeatureTargets(targets []*actorpb.FeatureTarget) ([]*actorpb.FeatureTarget, *actorpb.Error) {
	if len(targets) == 0 || len(targets) > MaxFeatureTargets {
		return nil, invalid("targets", "a feature server needs 1 to %d targets; got %d", MaxFeatureTargets, len(targets))
	}
	out := make([]*actorpb.FeatureTarget, len(targets))
	seen := map[string]int{}
	for i, t := range targets {
		field := func(f string) string { return fmt.Sprintf("targets[%d].%s", i, f) }
		if t == nil {
			return nil, invalid(fmt.Sprintf("targets[%d]", i), "a target must be an object with address, priority, weight and transport")
		}
		ap, err := netip.ParseAddrPort(t.Address)
		if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
			return nil, invalid(field("address"), "%q is not an IP:port address with a port above 0, e.g. \"192.0.2.10:5060\" or \"[2001:db8::1]:5060\"", t.Address)
		}
		if t.Priority > MaxTargetPriority {
			return nil, invalid(field("priority"), "priority must be from 0 to %d", MaxTargetPriority)
		}
		if t.Weight > MaxTargetPriority {
			return nil, invalid(field("weight"), "weight must be from 0 to %d", MaxTargetPriority)
		}
		tr := cmp.Or(t.Transport, "udp")
		if !slices.Contains([]string{"udp", "tcp", "tls"}, tr) {
			return nil, invalid(field("transport"), "transport must be udp, tcp or tls, not %q", t.Transport)
		}
		c := &actorpb.FeatureTarget{Address: ap.String(), Priority: t.Priority, Weight: t.Weight, Transport: tr}
		if j, dup := seen[c.Transport+" "+c.Address]; dup {
			return nil, invalid(field("address"), "%s over %s is already targets[%d]", c.Address, c.Transport, j)
		}
		seen[c.Transport+" "+c.Address] = i
		out[i] = c
	}
	return out, nil
}
