package dnszone

import (
	"context"
	"net/netip"
	"slices"
)

// Transports of a Target, as SIP names them (RFC 3261 §18). Each maps to
// one SRV service label (RFC 3263 §4.1).
const (
	TransportUDP = "udp" // _sip._udp
	TransportTCP = "tcp" // _sip._tcp
	TransportTLS = "tls" // _sips._tcp
)

// Default SIP ports (RFC 3261 §19.1.2), used when a name has no SRV
// records (RFC 3263 §4.2).
const (
	DefaultPort    = 5060 // sip: over UDP and TCP
	DefaultTLSPort = 5061 // sips:, SIP over TLS
)

// Target is one SIP server behind a name.
type Target struct {
	// IP is the server's address. An IPv4-mapped IPv6 address counts as
	// IPv4; a zone is dropped.
	IP netip.Addr
	// Port is the SIP port on IP.
	Port uint16
	// Transport is TransportUDP, TransportTCP or TransportTLS.
	Transport string
	// Priority and Weight order the targets as RFC 2782 says: lower
	// Priority first; within one, in proportion to Weight.
	Priority uint16
	Weight   uint16
}

// TargetSource answers which targets a name has. The Server calls it for every
// query about a name below its zone, with the name lowercased, without the
// trailing dot and without any "_sip._udp."-style service prefix (for
// example "acme.sip.switchboard.test" or "sales.acme.sip.switchboard.test").
//
// ok=false means the name does not exist (NXDOMAIN). A name that exists but
// has no targets now (an account whose nodes are all down) must report
// ok=true with no targets: the answer is then "no records" rather than "no
// such name", which resolvers would otherwise cache as covering every name
// below it too (RFC 8020). The same holds for an account that has
// forwarding names below its own.
//
// Targets is called concurrently, from the Server's query goroutines, and
// must not block long: ctx carries the Server's QueryTimeout. An error
// makes the Server answer SERVFAIL.
type TargetSource interface {
	Targets(ctx context.Context, name string) (targets []Target, ok bool, err error)
}

// MapTargets is an in-memory TargetSource for tests and simulations: a name
// is present when it is a key, with the key's targets. It must not be
// written while a Server reads it.
type MapTargets map[string][]Target

// Targets returns a copy of d[name].
func (d MapTargets) Targets(_ context.Context, name string) ([]Target, bool, error) {
	t, ok := d[name]
	return slices.Clone(t), ok, nil
}
