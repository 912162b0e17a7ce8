package sipedge

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// readFilter sees every packet before sipgo parses it. It drops what
// comes from a banned source, or from a declared trusted source beyond the
// rate they share (admit), answers oversized datagrams with 513, and
// passes the rest on. It does not parse: each datagram is parsed once, by
// sipgo, and one sipgo cannot parse is answered from its log record
// (parseFailed), which is why the filter keeps the datagram it passed.
func (e *Edge) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	ip := addrIP(p.RemoteAddr)
	if !e.admit(p.RemoteAddr, ip, e.cfg.Clock.Now()) {
		return nil, nil
	}
	if !strings.EqualFold(p.Transport, "udp") {
		// Streams are framed by sipgo's stream parser, bounded by its
		// maximum message length.
		return data, nil
	}
	if len(bytes.Trim(data, "\r\n")) == 0 {
		return data, nil // keep-alive
	}
	if len(data) > e.cfg.MaxMessageSize {
		e.metrics.dropped.WithLabelValues("oversized").Inc()
		e.logBad(ip, "oversized datagram", len(data), nil)
		e.replyRaw(p.RemoteAddr, data, 513, "Message Too Large")
		return nil, nil
	}
	e.passed.Lock()
	e.passed.from, e.passed.data = p.RemoteAddr, data
	e.passed.Unlock()
	return data, nil
}

// parseFailed sees sipgo's error records before sipgoFilter passes them
// on. sipgo parses each datagram the read filter passes, on the goroutine
// that ran the filter, and logs one it cannot parse ("failed to parse",
// with the datagram in "data"): that record is how the edge learns of it.
// When its data is the datagram the filter passed last, the edge counts
// it, logs it (once per source per LogEvery, never with its content) and
// answers it with 400 when a reply is possible, and parseFailed reports
// that the record goes no further.
func (e *Edge) parseFailed(r slog.Record) bool {
	if r.Level < slog.LevelError || r.Message != "failed to parse" {
		return false
	}
	var data, perr string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "data":
			data = a.Value.String()
		case "error":
			perr = a.Value.String()
		}
		return true
	})
	e.passed.Lock()
	from, ok := e.passed.from, e.passed.from != nil && string(e.passed.data) == data
	e.passed.Unlock()
	if ok {
		e.metrics.dropped.WithLabelValues("unparsable").Inc()
		e.logBad(addrIP(from), "unparsable datagram", len(data), errors.New(perr))
		e.replyRaw(from, []byte(data), 400, "Bad Request")
	}
	return ok
}

// admit decides whether a packet from addr (whose IP is ip) is read. A
// declared trusted source (an SBC, a NAT; trust.go) takes a token from
// the bucket all of them share, and is never banned; a peer node is
// exempt even there. Every other packet counts against its source's
// flood limit, except from the sources configuration or authentication
// vouched for: trunks, peers, feature-server targets and the flows of
// registered devices.
func (e *Edge) admit(addr net.Addr, ip netip.Addr, now time.Time) bool {
	if e.declared.contains(ip, now) && !e.cfg.Members.IsPeer(addr.String()) {
		if e.shared.AllowN(now, 1) {
			return true
		}
		e.metrics.dropped.WithLabelValues("trusted_rate").Inc()
		if e.rateLog.allow(ip, now) {
			e.log.Warn("packet from a trusted source dropped: trusted sources are over their shared rate", "source", ip.String(),
				"rate", e.cfg.Trust.Rate, "burst", e.cfg.Trust.Burst, "next_log_after", e.cfg.LogEvery)
		}
		return false
	}
	if e.trusted(ip, now) {
		return true
	}
	ok, banned := e.flood.Allow(ip, now)
	if !ok {
		e.metrics.dropped.WithLabelValues("banned").Inc()
		if banned {
			e.log.Warn("source banned for flooding", "source", ip.String(), "for", e.flood.cfg.BanFor)
		}
	}
	return ok
}

// trustAddr exempts the IP of addr (ip:port) from the flood limit for
// trustFor. Only what configuration or authentication vouches for is
// trusted: a trunk's sources, a peer node, a feature-server target, the
// flow of a registered device.
func (e *Edge) trustAddr(addr string) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		e.trust(ap.Addr().Unmap(), e.now())
	}
}

// trust exempts ip from the flood limit for trustFor.
func (e *Edge) trust(ip netip.Addr, now time.Time) {
	e.trustMu.Lock()
	defer e.trustMu.Unlock()
	if len(e.trustedIPs) >= 65536 {
		clear(e.trustedIPs)
	}
	e.trustedIPs[ip] = now.Add(trustFor)
}

func (e *Edge) trusted(ip netip.Addr, now time.Time) bool {
	e.trustMu.Lock()
	defer e.trustMu.Unlock()
	until, ok := e.trustedIPs[ip]
	return ok && now.Before(until)
}

// trustFor is how long a source stays exempt after it was last seen as
// a trunk, a peer, a feature-server target or a registered flow.
const trustFor = 10 * time.Minute

func addrIP(a net.Addr) netip.Addr {
	if a, ok := a.(interface{ AddrPort() netip.AddrPort }); ok { // *net.UDPAddr, *net.TCPAddr
		return a.AddrPort().Addr().Unmap().WithZone("")
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

// logBad logs a bad packet at most once per source per LogEvery, with its
// size and the parse error but never its content.
func (e *Edge) logBad(ip netip.Addr, what string, size int, err error) {
	if !e.logLimit.allow(ip, e.cfg.Clock.Now()) {
		return
	}
	args := []any{"source", ip.String(), "bytes", size, "next_log_after", e.cfg.LogEvery}
	if err != nil {
		args = append(args, "err", withheld(err.Error()))
	}
	e.log.Warn(what, args...)
}

// withheld is msg up to its first quote, where sipgo's messages start
// quoting the packet, and at most 120 bytes.
func withheld(msg string) string {
	if len(msg) > 120 {
		msg = msg[:120] + "... [content withheld]"
	}
	if i := strings.IndexAny(msg, "'\"`"); i >= 0 {
		msg = strings.TrimSpace(msg[:i]) + " [content withheld]"
	}
	return msg
}

// replyRaw answers a datagram that could not be parsed, when it looks
// like a request other than ACK and carries the headers a response needs
// (RFC 3261 section 8.2.6: Via, From, To, Call-ID, CSeq are copied).
func (e *Edge) replyRaw(to net.Addr, data []byte, code int, reason string) {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	lines := bytes.Split(head, []byte("\r\n"))
	if len(lines) < 2 {
		return
	}
	first := bytes.Fields(lines[0])
	if len(first) != 3 || !bytes.HasPrefix(first[2], []byte("SIP/")) || bytes.HasPrefix(first[0], []byte("SIP/")) || string(first[0]) == "ACK" {
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	seen := map[string]bool{}
	for _, l := range lines[1:] {
		name, _, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		switch n := string(bytes.ToLower(bytes.TrimSpace(name))); n {
		case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq":
			b.Write(l)
			b.WriteString("\r\n")
			seen[cmp.Or(compactForm[n], n)] = true
		}
	}
	if len(seen) < 5 { // Via, From, To, Call-ID and CSeq
		return
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	if e.udp != nil {
		_, _ = e.udp.WriteTo(b.Bytes(), to)
	}
}

// compactForm maps the compact header names replyRaw copies to their
// long forms (RFC 3261 section 7.3.3).
var compactForm = map[string]string{"v": "via", "f": "from", "t": "to", "i": "call-id"}

// limiter allows one event per key per interval, with bounded memory.
type limiter[K comparable] struct {
	every time.Duration
	mu    sync.Mutex
	last  map[K]time.Time
}

func newLimiter[K comparable](every time.Duration) *limiter[K] {
	return &limiter[K]{every: every, last: map[K]time.Time{}}
}

func (l *limiter[K]) allow(k K, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[k]; ok && now.Sub(t) < l.every {
		return false
	}
	if len(l.last) >= 4096 {
		maps.DeleteFunc(l.last, func(_ K, t time.Time) bool { return now.Sub(t) >= l.every })
		if len(l.last) >= 4096 {
			return false
		}
	}
	l.last[k] = now
	return true
}
