package dnszone

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// SOA timers. There are no secondaries and no zone transfers, so refresh,
// retry and expire only need to be plausible; the serial never changes.
const (
	soaSerial  = 1
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 86400
)

// responder builds the answer to one query. It holds no sockets, so tests
// and the fuzz target call it directly; Server adds sockets, EDNS, size
// limits and metrics around it.
type responder struct {
	zone string // lowercase, no trailing dot
	src  TargetSource
	ttl  uint32 // seconds, for answers and (as the SOA minimum) for negative answers
	log  *slog.Logger
}

// answer returns the response to req. It never returns nil. A TargetSource
// error is logged here and answered SERVFAIL.
func (z *responder) answer(ctx context.Context, req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = false // no recursion, ever
	if req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented // RFC 1035 §4.1.1
		return m
	}
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	owner := dns.Fqdn(q.Name) // answers keep the query's spelling (RFC 4343 §4.1)
	if q.Qclass != dns.ClassINET {
		return m // the zone is class IN only: no data, and not an authority (AA clear)
	}
	p := parseName(strings.TrimSuffix(strings.ToLower(owner), "."), z.zone)
	if p.kind == kindOutside {
		// Not our zone: "no such name", but without AA, which claims
		// authority for the name asked (RFC 1035 §4.1.1), and without SOA.
		m.Rcode = dns.RcodeNameError
		return m
	}
	m.Authoritative = true
	switch p.kind {
	case kindNone:
		return z.nxdomain(m)
	case kindApex:
		if q.Qtype == dns.TypeSOA {
			m.Answer = []dns.RR{z.soa()}
			return m
		}
		return z.nodata(m)
	}

	targets, ok, err := z.src.Targets(ctx, p.base)
	if err != nil {
		z.log.Warn("target lookup failed; answering SERVFAIL", slog.String("name", p.base), slog.Any("error", err))
		m.Authoritative = false
		m.Rcode = dns.RcodeServerFailure
		return m
	}
	if !ok {
		return z.nxdomain(m)
	}
	switch p.kind {
	case kindName:
		m.Answer = z.addressRecords(owner, q.Qtype, targets)
	case kindService:
		if q.Qtype == dns.TypeSRV {
			m.Answer, m.Extra = z.srvRecords(owner, p, targets)
		}
	case kindHost:
		if !slices.ContainsFunc(targets, func(t Target) bool { return normalizeIP(t.IP) == p.ip }) {
			return z.nxdomain(m) // not (or no longer) one of the name's targets
		}
		m.Answer = z.addressRecords(owner, q.Qtype, []Target{{IP: p.ip}})
	case kindServiceParent:
		// An empty non-terminal: it exists, with no records.
	}
	if len(m.Answer) == 0 {
		return z.nodata(m)
	}
	return m
}

// nxdomain makes m "no such name" with the SOA for negative caching
// (RFC 2308 §2.1, §3).
func (z *responder) nxdomain(m *dns.Msg) *dns.Msg {
	m.Rcode = dns.RcodeNameError
	m.Ns = []dns.RR{z.soa()}
	return m
}

// nodata makes m "the name exists, without records of that type": NOERROR,
// an empty answer and the SOA for negative caching (RFC 2308 §2.2, §3).
func (z *responder) nodata(m *dns.Msg) *dns.Msg {
	m.Answer = nil
	m.Ns = []dns.RR{z.soa()}
	return m
}

// soa is the zone's SOA record. Its MNAME is the apex itself (there is no
// primary to name) and its MINIMUM is the answer TTL, so that resolvers
// cache "no such name" no longer than an answer (RFC 2308 §5).
func (z *responder) soa() *dns.SOA {
	apex := z.zone + "."
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: apex, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: z.ttl},
		Ns:      apex,
		Mbox:    "hostmaster." + apex,
		Serial:  soaSerial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  z.ttl,
	}
}

// addressRecords answers an A (or AAAA) query for owner with the distinct
// IPv4 (or IPv6) addresses of targets, in the TargetSource's order. Other
// qtypes (ANY included, RFC 8482) get none.
func (z *responder) addressRecords(owner string, qtype uint16, targets []Target) []dns.RR {
	if qtype != dns.TypeA && qtype != dns.TypeAAAA {
		return nil
	}
	var out []dns.RR
	seen := make(map[netip.Addr]bool, len(targets))
	for _, t := range targets {
		ip := normalizeIP(t.IP)
		if !ip.IsValid() || seen[ip] || ip.Is4() != (qtype == dns.TypeA) {
			continue
		}
		seen[ip] = true
		out = append(out, z.addressRecord(owner, ip))
	}
	return out
}

// addressRecord is the A or AAAA record of owner for ip.
func (z *responder) addressRecord(owner string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		return &dns.A{
			Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: z.ttl},
			A:   ip.AsSlice(),
		}
	}
	return &dns.AAAA{
		Hdr:  dns.RR_Header{Name: owner, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: z.ttl},
		AAAA: ip.AsSlice(),
	}
}

// srvRecords answers an SRV query for the service name owner: one SRV per
// distinct target of the service's transport (RFC 2782), each pointing at
// the target's host name under p.base, and those hosts' addresses for the
// additional section (RFC 2782, "Target").
func (z *responder) srvRecords(owner string, p parsedName, targets []Target) (answer, extra []dns.RR) {
	type key struct {
		ip                 netip.Addr
		port, prio, weight uint16
	}
	seen := make(map[key]bool, len(targets))
	hosts := make(map[netip.Addr]bool, len(targets))
	for _, t := range targets {
		ip := normalizeIP(t.IP)
		if !ip.IsValid() || !strings.EqualFold(t.Transport, p.transport) {
			continue
		}
		k := key{ip, t.Port, t.Priority, t.Weight}
		if seen[k] {
			continue // no duplicate records in an RRset (RFC 2181 §5)
		}
		seen[k] = true
		host := hostLabel(ip) + "." + p.base + "."
		answer = append(answer, &dns.SRV{
			Hdr:      dns.RR_Header{Name: owner, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: z.ttl},
			Priority: t.Priority,
			Weight:   t.Weight,
			Port:     t.Port,
			Target:   host,
		})
		if !hosts[ip] {
			hosts[ip] = true
			extra = append(extra, z.addressRecord(host, ip))
		}
	}
	return answer, extra
}
