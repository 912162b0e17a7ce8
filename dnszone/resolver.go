package dnszone

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// ErrNotFound is wrapped by Resolve's error when the name does not exist
// (NXDOMAIN) or has no address to reach it at.
var ErrNotFound = errors.New("dnszone: name not found")

// Resolver finds the SIP servers behind a name as RFC 3263 §4 says, asking
// one DNS server (normally a Server of this package) and caching answers
// for their TTL. It is safe for concurrent use and starts no goroutines.
type Resolver struct {
	cfg      ResolverConfig
	log      *slog.Logger
	udp, tcp *dns.Client
	cache    *cache
	randMu   sync.Mutex // guards cfg.Rand
}

// NewResolver validates cfg and returns a Resolver. It sends nothing yet.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Resolver{
		cfg:   cfg,
		log:   cfg.Logger.With(slog.String("component", "dnszone"), slog.String("dns_server", cfg.Server)),
		udp:   &dns.Client{Net: "udp", Timeout: cfg.Timeout},
		tcp:   &dns.Client{Net: "tcp", Timeout: cfg.Timeout},
		cache: newCache(cfg.Clock, cfg.MaxCacheEntries),
	}, nil
}

// Resolve returns the targets of name for transport (TransportUDP,
// TransportTCP or TransportTLS), in the order to try them (RFC 3263 §4.4):
//
//   - the SRV records of _sip._udp.<name>, _sip._tcp.<name> or
//     _sips._tcp.<name> (RFC 3263 §4.1), ordered by priority and, within
//     one, by weighted random choice (RFC 2782), drawn anew on every call,
//     cached or not; each SRV target becomes one Target per address, taken
//     from the answer's additional section or else looked up (A, then
//     AAAA);
//   - with no SRV records, the name's own A and AAAA records, at port 5060
//     (5061 for TLS) (RFC 3263 §4.2);
//   - an IP address for name is returned as it is, at that port.
//
// Answers, "no such name" and "no records" included, are cached for their
// TTL (RFC 2308 for the negative ones). An error wraps ErrNotFound when the
// name does not exist or none of its servers has an address; other errors
// are a failed query (timeout, SERVFAIL, REFUSED).
func (r *Resolver) Resolve(ctx context.Context, name, transport string) ([]Target, error) {
	transport = strings.ToLower(transport)
	prefix, ok := srvPrefix[transport]
	if !ok {
		return nil, fmt.Errorf("dnszone: resolve %q: transport %q is not %q, %q or %q", name, transport, TransportUDP, TransportTCP, TransportTLS)
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	port := uint16(DefaultPort)
	if transport == TransportTLS {
		port = DefaultTLSPort
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		return []Target{{IP: normalizeIP(ip), Port: port, Transport: transport}}, nil
	}
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return nil, fmt.Errorf("dnszone: resolve %q: not a DNS name", name)
	}

	srv, err := r.lookup(ctx, prefix+name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	if records := answersOf[*dns.SRV](srv.answer); len(records) > 0 {
		return r.fromSRV(ctx, prefix+name, transport, srv, records)
	}
	ips, err := r.addresses(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("dnszone: %s has no SRV, A or AAAA records: %w", name, ErrNotFound)
	}
	out := make([]Target, 0, len(ips))
	for _, ip := range ips {
		out = append(out, Target{IP: ip, Port: port, Transport: transport})
	}
	return out, nil
}

// fromSRV turns SRV records into targets, in RFC 2782 order.
func (r *Resolver) fromSRV(ctx context.Context, owner, transport string, srv *entry, records []*dns.SRV) ([]Target, error) {
	var out []Target
	var errs []error
	for _, rec := range orderSRV(records, r.intN) {
		if rec.Target == "." {
			continue // "the service is decidedly not available at this domain" (RFC 2782)
		}
		ips := additionalAddresses(srv.extra, rec.Target)
		if len(ips) == 0 {
			var err error
			ips, err = r.addresses(ctx, strings.ToLower(strings.TrimSuffix(rec.Target, ".")))
			if err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				// The other SRV targets may still do.
				r.log.Debug("SRV target has no address", slog.String("name", owner), slog.String("target", rec.Target), slog.Any("error", err))
				errs = append(errs, err)
				continue
			}
		}
		for _, ip := range ips {
			out = append(out, Target{IP: ip, Port: rec.Port, Transport: transport, Priority: rec.Priority, Weight: rec.Weight})
		}
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("dnszone: no SRV target of %s resolved: %w", owner, errors.Join(errs...))
		}
		return nil, fmt.Errorf("dnszone: no SRV target of %s has an address: %w", owner, ErrNotFound)
	}
	return out, nil
}

// addresses returns host's IPv4 then IPv6 addresses. NXDOMAIN is an error
// wrapping ErrNotFound; no records is an empty list.
func (r *Resolver) addresses(ctx context.Context, host string) ([]netip.Addr, error) {
	a, err := r.lookup(ctx, host, dns.TypeA)
	if err != nil {
		return nil, err
	}
	if a.rcode == dns.RcodeNameError {
		return nil, fmt.Errorf("dnszone: %s: no such name (NXDOMAIN): %w", host, ErrNotFound)
	}
	ips := addressesOf(a.answer)
	aaaa, err := r.lookup(ctx, host, dns.TypeAAAA)
	if err != nil {
		if len(ips) == 0 {
			return nil, err
		}
		r.log.Debug("AAAA lookup failed; using the IPv4 addresses", slog.String("name", host), slog.Any("error", err))
		return ips, nil
	}
	return append(ips, addressesOf(aaaa.answer)...), nil
}

// intN returns a uniform random int in [0, n) from the injected source.
func (r *Resolver) intN(n int) int {
	r.randMu.Lock()
	defer r.randMu.Unlock()
	return r.cfg.Rand.IntN(n)
}

// lookup returns the answer to (qname, qtype) from the cache, or asks the
// server and caches the answer. Concurrent lookups of one question share
// one query.
func (r *Resolver) lookup(ctx context.Context, qname string, qtype uint16) (*entry, error) {
	key := cacheKey{qname, qtype}
	for {
		e, f, leader := r.cache.get(key)
		if e != nil {
			return e, nil
		}
		if leader {
			e, err := r.exchange(ctx, qname, qtype)
			r.cache.finish(key, f, e, err, ctx.Err() != nil)
			return e, err
		}
		select {
		case <-f.done:
			if f.leaderGaveUp && ctx.Err() == nil {
				continue // the leader's context ended, not ours: ask again
			}
			return f.e, f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("dnszone: query %s %s: %w", qname, dns.TypeToString[qtype], ctx.Err())
		}
	}
}

// exchange sends one query over UDP, and again over TCP when the answer
// came truncated (RFC 1035 §4.2.1, RFC 7766 §5). Only NOERROR and NXDOMAIN
// are answers; other response codes are errors.
func (r *Resolver) exchange(ctx context.Context, qname string, qtype uint16) (*entry, error) {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(qname), qtype) // RD set: harmless to an authority, needed by a recursive server
	q.SetEdns0(ednsSize, false)
	what := fmt.Sprintf("%s %s at %s", qname, dns.TypeToString[qtype], r.cfg.Server)
	resp, _, err := r.udp.ExchangeContext(qctx, q, r.cfg.Server)
	if err == nil && resp.Truncated {
		resp, _, err = r.tcp.ExchangeContext(qctx, q, r.cfg.Server)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("dnszone: query %s: %w", what, err)
	}
	if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("dnszone: query %s: the server answered %s", what, rcodeLabel(resp.Rcode))
	}
	return newEntry(resp, r.cfg.Clock.Now()), nil
}

// answersOf returns the records of type T in rrs.
func answersOf[T dns.RR](rrs []dns.RR) []T {
	var out []T
	for _, rr := range rrs {
		if t, ok := rr.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// addressesOf returns the addresses of the A and AAAA records in rrs.
func addressesOf(rrs []dns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		if ip, ok := addressOf(rr); ok {
			out = append(out, ip)
		}
	}
	return out
}

// additionalAddresses returns the addresses that extra gives for host
// (RFC 2782: "the client SHOULD use this information"), IPv4 first.
func additionalAddresses(extra []dns.RR, host string) []netip.Addr {
	ips := addressesOf(slices.DeleteFunc(slices.Clone(extra), func(rr dns.RR) bool {
		return !strings.EqualFold(rr.Header().Name, host)
	}))
	slices.SortStableFunc(ips, func(a, b netip.Addr) int { return cmp.Compare(a.BitLen(), b.BitLen()) })
	return ips
}

// addressOf returns the address of an A or AAAA record.
func addressOf(rr dns.RR) (netip.Addr, bool) {
	var b []byte
	switch rr := rr.(type) {
	case *dns.A:
		b = rr.A.To4()
	case *dns.AAAA:
		b = rr.AAAA.To16()
	default:
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(b)
	return normalizeIP(ip), ok
}
