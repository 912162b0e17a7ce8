package sipedge_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/sipedge"
)

// Issue 9: attacks on the SIP edge, each as an attacker would try it.

// forgedInDialog is a request of method that pretends to be in a dialog
// through the edge: a To tag, and a Route naming the edge, then the
// routes in extra. Its request-URI points at victim.
func forgedInDialog(method, from, edge, victim, callID string, extra ...string) []byte {
	var routes strings.Builder
	fmt.Fprintf(&routes, "Route: <sip:%s;lr>\n", edge)
	for _, r := range extra {
		fmt.Fprintf(&routes, "Route: <sip:%s;lr>\n", r)
	}
	return crlf(fmt.Sprintf(`%s sip:vm@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport
Max-Forwards: 70
%sFrom: <sip:nobody@evil.example>;tag=%s
To: <sip:vm@beta.%s>;tag=forged1
Call-ID: %s
CSeq: 1 %s
Contact: <sip:nobody@%s>
Content-Type: text/plain
Content-Length: 5

hello`, method, victim, from, unique("b"), routes.String(), unique("t"), testZone, callID, method, from))
}

// victim is a UDP socket standing for another tenant's feature server or
// any address an attacker would like to reach through the edge.
func newVictim(t *testing.T) net.PacketConn {
	t.Helper()
	v, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// requireSilent fails if v receives anything within silenceWait.
func requireSilent(t *testing.T, v net.PacketConn, what string) {
	t.Helper()
	buf := make([]byte, 65535)
	_ = v.SetReadDeadline(time.Now().Add(silenceWait))
	if n, _, err := v.ReadFrom(buf); err == nil {
		t.Fatalf("%s reached the victim:\n%s", what, buf[:n])
	}
}

// TestSecurity_ForgedInDialogRequestsAreNotRelayed: a To tag and a Route
// naming the node made any request "in-dialog", skipping authentication,
// tenancy and account checks, and the edge relayed it to the next Route or
// the request-URI: an open relay. Only dialogs the edge record-routed (its
// signed Route entry) are relayed now; the rest get 403 and nothing
// leaves.
func TestSecurity_ForgedInDialogRequestsAreNotRelayed(t *testing.T) {
	te := startEdge(t)
	victim := newVictim(t)
	attacker := newUDPPeer(t, te, "127.0.0.2")
	for _, tc := range []struct {
		name   string
		method string
		extra  func() []string
	}{
		{"INVITE to the request-URI", "INVITE", func() []string { return nil }},
		{"MESSAGE to the request-URI", "MESSAGE", func() []string { return nil }},
		{"INFO through a second Route", "INFO", func() []string { return []string{victim.LocalAddr().String()} }},
		// A Route entry of the edge with a made-up signature.
		{"forged signature", "BYE", func() []string { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := unique("forged")
			edge := te.Addr()
			if tc.name == "forged signature" {
				edge += ";sbd=AAAAAAAAAAAAAAAAAAAAAA"
			}
			ruri := victim.LocalAddr().String()
			if len(tc.extra()) > 0 {
				ruri = "127.0.0.1:9" // the second Route is what the relay would follow
			}
			attacker.send(forgedInDialog(tc.method, attacker.addr(), edge, ruri, id, tc.extra()...))
			res := attacker.final(id, replyWait)
			if res == nil || res.StatusCode != 403 {
				t.Fatalf("forged in-dialog %s got %v, want 403", tc.method, res)
			}
			requireSilent(t, victim, "the forged "+tc.method)
		})
	}
	// A forged ACK gets no answer and goes nowhere either.
	attacker.send(forgedInDialog("ACK", attacker.addr(), te.Addr(), victim.LocalAddr().String(), unique("ack")))
	requireSilent(t, victim, "the forged ACK")
	if n := te.counter(t, "switchboard_sip_auth_failures_total", map[string]string{"reason": "dialog"}); n < 4 {
		t.Fatalf("auth_failures{reason=dialog} = %v, want at least 4", n)
	}
}

// TestSecurity_ForwardingDoesNotExemptFromFloodLimit: sending to an
// address made it trusted, and trusted addresses skip the flood limit; one
// forged OPTIONS naming the attacker made the attacker exempt. Now only
// configured trunks, peers, feature-server targets and registered flows
// are exempt, so the attacker is banned like anyone else.
func TestSecurity_ForwardingDoesNotExemptFromFloodLimit(t *testing.T) {
	te := startEdge(t, func(c *sipedge.Config) {
		c.Flood = sipedge.FloodConfig{Limit: 20, Window: 2 * time.Second, BanFor: time.Minute}
	})
	attacker := newUDPPeer(t, te, "127.0.0.3")
	host, port, _ := net.SplitHostPort(attacker.addr())
	self := te.Addr()
	// Out of dialog and in dialog, each asking the edge to send to the
	// attacker's own address.
	for _, tag := range []string{"", ";tag=forged2"} {
		id := unique("bypass")
		attacker.send(crlf(fmt.Sprintf(`OPTIONS sip:x@%s:%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK%s
Max-Forwards: 70
Route: <sip:%s;lr>
From: <sip:x@evil.example>;tag=%s
To: <sip:x@%s:%s>%s
Call-ID: %s
CSeq: 1 OPTIONS
Content-Length: 0

`, host, port, attacker.addr(), unique("b"), self, unique("t"), host, port, tag, id)))
		// Wait until the edge has dealt with it: its answer, or the request
		// it relayed to the attacker's own address, carries the Call-ID.
		for {
			raw := attacker.read(replyWait)
			if raw == nil {
				t.Fatalf("the edge neither answered nor relayed the forged OPTIONS %s", id)
			}
			if strings.Contains(string(raw), id) {
				break
			}
		}
	}
	// Twice the limit, each answered or dropped before the next is sent.
	for range 40 {
		if attacker.ping(silenceWait) == nil {
			break // dropped: banned
		}
	}
	banned := false
	for _, b := range te.Bans() {
		banned = banned || b.Source == host
	}
	if !banned {
		t.Fatalf("the attacker at %s was not banned after 40 packets at Limit 20: it made itself flood-exempt; bans %+v", host, te.Bans())
	}
}

// TestSecurity_SlowConnectionsClosedWithinTheTimeout: 200 TCP connections
// that sent half a message stayed open for a whole minute (no read-header
// timeout, no per-source limit). Now a source holds at most MaxPerSource
// connections, each half message is cut at MessageTimeout, and a
// legitimate client is served throughout.
func TestSecurity_SlowConnectionsClosedWithinTheTimeout(t *testing.T) {
	const limit, timeout = 10, 400 * time.Millisecond
	te := startEdge(t, func(c *sipedge.Config) {
		c.Streams = sipedge.StreamConfig{MessageTimeout: timeout, MaxPerSource: limit}
	})
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.4")}}
	half := optionsTCP(unique("slow"))
	half = half[:len(half)/2]
	start := time.Now()
	var conns []net.Conn
	for range 3 * limit {
		c, err := dialer.Dial("tcp", te.Addr())
		if err != nil {
			t.Fatalf("dialing: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_, _ = c.Write(half)
		conns = append(conns, c)
	}
	requireAliveTCP(t, te, "30 half-sent connections from 127.0.0.4")
	// Every connection ends: the ones over the limit at once, the others
	// at the message timeout. None may outlive a generous deadline.
	deadline := start.Add(timeout + 5*time.Second)
	for i, c := range conns {
		_ = c.SetReadDeadline(deadline)
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection %d of %d sending half a message is still open %v after it began", i+1, len(conns), time.Since(start))
		}
		if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("connection %d: %v", i+1, err)
		}
	}
	if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "connection_limit"}); n < 2*limit {
		t.Fatalf("dropped{reason=connection_limit} = %v, want at least %d", n, 2*limit)
	}
	if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "message_timeout"}); n < limit {
		t.Fatalf("dropped{reason=message_timeout} = %v, want at least %d", n, limit)
	}
	requireAliveTCP(t, te, "the slow connections were closed")
	lines := 0
	for _, r := range te.records(t, "WARN") {
		if r.Msg == "SIP connection closed" {
			lines++
		}
	}
	if lines != 1 {
		t.Fatalf("%d \"SIP connection closed\" lines for one source, want 1 per LogEvery:\n%s", lines, te.logs.String())
	}
}

// TestSecurity_IdleConnectionClosed: a connection that carries no
// registered flow is closed after IdleTimeout of silence between
// messages; the message it sent was answered first.
func TestSecurity_IdleConnectionClosed(t *testing.T) {
	te := startEdge(t, func(c *sipedge.Config) {
		c.Streams = sipedge.StreamConfig{IdleTimeout: 300 * time.Millisecond}
	})
	c, err := net.Dial("tcp", te.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(optionsTCP(unique("idle"))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(replyWait))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the idle connection was not closed within %v: %v", replyWait, err)
	}
	if !strings.HasPrefix(string(got), "SIP/2.0 200") {
		t.Fatalf("before closing, the edge answered %q, want 200", got)
	}
}

// TestSecurity_StreamParseErrorsRateLimited: over TCP sipgo's stream
// parser logged every unparsable message at error level, with attacker
// text in the error (2,340 lines for 2,340 packets). Its records now pass
// at most once per message and source per LogEvery, without content.
func TestSecurity_StreamParseErrorsRateLimited(t *testing.T) {
	te := startEdge(t)
	const marker = "ATTACKER-TEXT-5d1e"
	for range 20 {
		data := []byte(strings.Replace(string(badRequest("127.0.0.1:5060", unique("bad"), marker)), "SIP/2.0/UDP", "SIP/2.0/TCP", 1))
		tcpReplies(t, te, data, 50*time.Millisecond, func([]string) bool { return false })
	}
	requireAliveTCP(t, te, "20 bad messages over TCP")
	perMsg := map[string]int{}
	for _, r := range te.records(t, "WARN") {
		if strings.Contains(r.raw, `"component":"sipgo"`) {
			perMsg[r.Msg]++
		}
	}
	if perMsg["failed to parse"] != 1 {
		t.Errorf("sipgo's parse-failure records: %d, want exactly 1 (the path must be exercised, and limited)", perMsg["failed to parse"])
	}
	for msg, n := range perMsg {
		if n > 1 {
			t.Errorf("sipgo logged %q %d times within one LogEvery, want at most once", msg, n)
		}
	}
	if strings.Contains(te.logs.String(), marker) {
		t.Fatalf("the log carries the messages' content:\n%s", te.logs.String())
	}
}
