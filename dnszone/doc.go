// Package dnszone is Switchboard's DNS: the authoritative server for the
// zone of account DNS names and forwarding names (Server), and the client
// the SIP proxy resolves those names with (Resolver).
//
// It is the only package that imports github.com/miekg/dns (v1.1.73), and
// no miekg type appears in its API. Which targets a name has comes from a
// TargetSource, which the caller implements over its own state (alive nodes
// of an account's pools, healthy targets of a feature server); this package
// must not know about actors, placement, SIP messages or storage.
//
// # Names
//
// With zone "sip.switchboard.test" (Config.Zone, lowercase):
//
//	acme.sip.switchboard.test                        account DNS name <a>.<zone>
//	sales.acme.sip.switchboard.test                  forwarding name <f>.<a>.<zone>
//	_sip._udp.<name>, _sip._tcp.<name>, _sips._tcp.<name>
//	                                                 SRV: <name>'s udp, tcp, tls targets
//	_ip4-10-0-0-7.<name>                             SRV target host: A 10.0.0.7
//	_ip6-20010db8000000000000000000000001.<name>     SRV target host: AAAA 2001:db8::1
//	sip.switchboard.test                             the apex: SOA
//
// Every name below the zone made of id labels ([a-z0-9-], 1-63 octets) is
// passed to the TargetSource, lowercased, without the trailing dot and without
// any service prefix or host label; the TargetSource alone decides which
// exist. A name with any other label (an underscore, say) that is not one
// of the forms above does not exist, and the TargetSource is not asked.
//
// SRV target hosts: an SRV record must point at a host name, not an address
// (RFC 2782), so every target gets one under the name it serves:
// "_ip4-" and its dotted quad with '-' for '.', or "_ip6-" and its 16
// octets in 32 lowercase hex digits. The underscore keeps these apart from
// any account or feature id. The Server answers such a name with the
// address it spells as long as that address is one of the name's current
// targets (else NXDOMAIN), and puts those answers in the additional
// section of the SRV answer, so a resolver needs no second query.
//
// # Answers
//
//   - A (AAAA) for a name: its targets' distinct IPv4 (IPv6) addresses, in
//     the TargetSource's order; none of that family: NOERROR, no answer, SOA in
//     the authority section (RFC 2308 §2.2).
//   - SRV for a service name: one record per distinct target of that
//     transport (priority, weight, port, host as above), the hosts'
//     addresses in the additional section.
//   - SOA for the apex. NS is not served (NOERROR, no answer): the zone is
//     delegated to the nodes by the parent zone's operator.
//   - Any other type (ANY too, RFC 8482), or a type a name does not hold:
//     NOERROR, no answer, SOA. _udp.<name> and _tcp.<name> exist (empty
//     non-terminals, RFC 8020) when <name> does.
//   - A name that does not exist: NXDOMAIN with the SOA.
//   - A name outside the zone: NXDOMAIN without SOA and without AA (the
//     server is no authority for it, RFC 1035 §4.1.1); never REFUSED, and
//     never recursion.
//   - A class other than IN: NOERROR, no answer, no AA.
//   - A TargetSource error or timeout (Config.QueryTimeout): SERVFAIL.
//   - Opcodes other than QUERY: NOTIMP. Malformed messages: FORMERR or no
//     answer (miekg/dns decides, before this package sees them).
//
// AA is set on every answer from the zone; RA never is. All records carry
// Config.TTL (default 5s), which is also the SOA MINIMUM, so "no such name"
// is cached no longer than an answer. A query with EDNS gets EDNS back
// (payload 1232, RFC 6891 §7; version other than 0: BADVERS). Over UDP an
// answer larger than the client's payload size (512 without EDNS) is cut
// and has TC set, and the client asks again over TCP (RFC 1035 §4.2.1,
// RFC 7766).
//
// # Lifecycle
//
// NewServer binds UDP and TCP on one port (port 0: UDP picks, TCP follows,
// retried a few times). Run serves until its context ends or Close is
// called, then waits for the queries under way; the caller owns its
// goroutine. Close stops Run and waits for it.
//
// The Resolver starts no goroutines. It implements RFC 3263 §4 for one
// transport: SRV first, ordered by priority and weighted random choice
// (RFC 2782, drawn from the injected Rand on every call, cached or not),
// addresses from the additional section or else A and AAAA queries, and
// with no SRV records the name's own addresses at 5060 (5061 for TLS).
// Answers, negative ones too (RFC 2308), are cached for their TTL by the
// injected Clock; concurrent lookups of one question share one query. A
// truncated UDP answer is asked again over TCP.
//
// # Logging and metrics
//
// Logs go to the configured Logger with component=dnszone: TargetSource
// errors at WARN (once per failed query), the rest at DEBUG.
//
// Metrics (registered on Config.Registerer, the node's registry):
//
//	switchboard_dns_queries_total{qtype,rcode}  queries answered; qtype is A,
//	                                            AAAA, SRV, SOA, NS, ANY or other;
//	                                            rcode NOERROR, NXDOMAIN, SERVFAIL,
//	                                            NOTIMP, FORMERR, BADVERS, ...
//	switchboard_dns_query_seconds               time from receiving a query to
//	                                            writing its answer
//
// The queries of types A and SRV with NOERROR, NXDOMAIN and SERVFAIL are
// listed at 0 from the start; other series appear when first counted.
//
// Messages that miekg/dns rejects before the handler (not a query, more
// than one question) are not counted.
package dnszone
