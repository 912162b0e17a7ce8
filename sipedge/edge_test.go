package sipedge_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/sipedge"
)

// These tests run a real Edge on loopback and talk to it over real
// sockets. Each packet a test sends is answered, or shown to be dropped,
// by an OPTIONS sent after it: the edge reads a socket's datagrams in
// order and its read filter answers bad ones before it reads the next, so
// whatever the filter sends arrives before the OPTIONS' 200.

// paddedOptions is an OPTIONS to the edge of exactly size bytes, padded
// with an extension header (RFC 3261 section 8.2.2: unknown headers are
// ignored).
func paddedOptions(from, callID string, size int) []byte {
	base := optionsTo(from, callID)
	head, _, _ := strings.Cut(string(base), "\r\n\r\n")
	const name = "X-Padding: "
	pad := size - len(head) - len("\r\n"+name) - len("\r\n\r\n")
	return []byte(head + "\r\n" + name + strings.Repeat("p", pad) + "\r\n\r\n")
}

func TestEdge_RFC3261_11_OptionsToTheEdgeIs200(t *testing.T) {
	te := startEdge(t)
	res := newUDPPeer(t, te, "127.0.0.1").ping(replyWait)
	if res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS sip:127.0.0.1 got %v, want 200", res)
	}
	// RFC 3261 section 11.2: the answer says what the server supports.
	if h := res.GetHeader("Allow"); h == nil || !strings.Contains(h.Value(), "INVITE") || !strings.Contains(h.Value(), "REGISTER") {
		t.Fatalf("200 to OPTIONS has Allow %v, want the methods the edge handles", h)
	}
	if got := te.actors.Requests(); len(got) != 0 {
		t.Fatalf("an OPTIONS to the edge itself asked the actors %v", got)
	}
}

func TestFilter_RFC3261_21_5_14_OversizedDatagramIs513(t *testing.T) {
	te := startEdge(t, func(c *sipedge.Config) { c.MaxMessageSize = 2048 })
	p := newUDPPeer(t, te, "127.0.0.1")

	id := unique("fits")
	p.send(paddedOptions(p.addr(), id, 2048))
	if res := p.final(id, replyWait); res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS of exactly MaxMessageSize (2048) bytes got %v, want 200", res)
	}

	id = unique("oversized")
	before := p.sendThenPing(paddedOptions(p.addr(), id, 3000))
	if len(before) != 1 || before[0].code != 513 || before[0].callID != id {
		t.Fatalf("OPTIONS of 3000 bytes got %v, want one 513 Message Too Large for Call-ID %s", codes(before), id)
	}
	if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "oversized"}); n != 1 {
		t.Fatalf("dropped{reason=oversized} = %v, want 1", n)
	}
}

// badRequest is a request whose Max-Forwards is not a number (RFC 3261
// section 20.22: 1*DIGIT), so it does not parse, but which carries every
// header a response needs (section 8.2.6.2).
func badRequest(from, callID, marker string) []byte {
	return crlf(fmt.Sprintf(`OPTIONS sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK%s
Max-Forwards: seventy
To: <sip:127.0.0.1>
From: "%s" <sip:probe@client.invalid>;tag=%s
Call-ID: %s
CSeq: 7 OPTIONS
Content-Type: text/plain
Content-Length: %d

%s`, from, unique("b"), marker, unique("t"), callID, len(marker), marker))
}

func TestFilter_RFC3261_16_3_UnparsableRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		data func(from, callID string) []byte
		want []int // responses before the next OPTIONS' 200
	}{
		{"RFC3261_16_3 malformed header with a request line and mandatory headers is 400",
			func(from, id string) []byte { return badRequest(from, id, "x") }, []int{400}},
		{"RFC4475_3_1_2_1 extraneous header field separators are 400",
			func(from, id string) []byte {
				return crlf(fmt.Sprintf("INVITE sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\nFrom: sip:caller@example.net;tag=134161461246\n"+
					"Max-Forwards: 7\nCall-ID: %s\nCSeq: 8 INVITE\nVia: SIP/2.0/UDP %s;;,;,,\nContent-Length: 0\n\n", id, from))
			}, []int{400}},
		{"RFC4475_3_1_2_2 Content-Length larger than the datagram is 400 (RFC 3261 18.3)",
			func(from, id string) []byte {
				return crlf(fmt.Sprintf("OPTIONS sip:127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\nMax-Forwards: 70\nTo: <sip:127.0.0.1>\n"+
					"From: <sip:probe@client.invalid>;tag=1\nCall-ID: %s\nCSeq: 1 OPTIONS\nContent-Length: 9999\n\nshort", from, unique("b"), id))
			}, []int{400}},
		{"an unparsable ACK is not answered (RFC 3261 17.1.1.3)",
			func(from, id string) []byte {
				return []byte(strings.Replace(strings.Replace(string(badRequest(from, id, "x")), "OPTIONS sip:", "ACK sip:", 1), "7 OPTIONS", "7 ACK", 1))
			}, nil},
		{"an unparsable request without a Call-ID cannot be answered",
			func(from, id string) []byte {
				return []byte(strings.Replace(string(badRequest(from, id, "x")), "Call-ID: ", "Kall-ID: ", 1))
			}, nil},
		{"an unparsable response is not answered",
			func(from, id string) []byte {
				return crlf(fmt.Sprintf("SIP/2.0 200 OK\nVia: SIP/2.0/UDP %s;branch=z9hG4bKx\nTo: <sip:a@b>\nFrom: <sip:c@d>;tag=1\nCall-ID: %s\nCSeq: one OPTIONS\n\n", from, id))
			}, nil},
		{"pure garbage gets nothing",
			func(string, string) []byte {
				return []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello, is this TLS?\r\n\r\n")
			}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := startEdge(t)
			p := newUDPPeer(t, te, "127.0.0.1")
			id := unique("bad")
			before := p.sendThenPing(tc.data(p.addr(), id))
			if got := codes(before); !slices.Equal(got, tc.want) {
				t.Fatalf("responses = %v, want %v", got, tc.want)
			}
			for _, r := range before {
				// RFC 3261 section 8.2.6.2: Call-ID and CSeq are copied.
				if r.callID != id || !strings.Contains(r.raw, "\r\nCSeq: ") {
					t.Fatalf("the 400 does not copy the request's Call-ID and CSeq:\n%s", r.raw)
				}
			}
			if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "unparsable"}); n != 1 {
				t.Fatalf("dropped{reason=unparsable} = %v, want 1", n)
			}
		})
	}
}

// logRecord is one line of the edge's JSON log.
type logRecord struct {
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	Source string `json:"source"`
	Bytes  int    `json:"bytes"`
	raw    string
}

func (te *testEdge) records(t *testing.T, minLevel string) []logRecord {
	t.Helper()
	rank := map[string]int{"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3}
	var out []logRecord
	for _, line := range strings.Split(strings.TrimSpace(te.logs.String()), "\n") {
		if line == "" {
			continue
		}
		var r logRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		r.raw = line
		if rank[r.Level] >= rank[minLevel] {
			out = append(out, r)
		}
	}
	return out
}

// TestFilter_BadPacketsLoggedOncePerSourcePerLogEvery: a source sending
// garbage costs one log line per LogEvery, and no log line carries what it
// sent (it may be anyone's data, and logs are read by operators).
func TestFilter_BadPacketsLoggedOncePerSourcePerLogEvery(t *testing.T) {
	te := startEdge(t)
	const marker = "PAYLOAD-7f3a9c-must-not-be-logged"
	a := newUDPPeer(t, te, "127.0.0.1")
	for range 50 {
		a.send(badRequest(a.addr(), unique("bad"), marker))
	}
	if res := a.ping(replyWait); res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS after 50 bad packets got %v, want 200", res)
	}
	warn := te.records(t, "WARN")
	if len(warn) != 1 || warn[0].Msg != "unparsable datagram" || warn[0].Source != "127.0.0.1" || warn[0].Bytes == 0 {
		t.Fatalf("after 50 bad packets from one source the log has %d lines at WARN and above, want one "+
			"\"unparsable datagram\" line naming source 127.0.0.1 and its size:\n%s", len(warn), te.logs.String())
	}

	// Another source gets its own line.
	b := newUDPPeer(t, te, "127.0.0.2")
	b.send(badRequest(b.addr(), unique("bad"), marker))
	b.ping(replyWait)
	if warn := te.records(t, "WARN"); len(warn) != 2 || warn[1].Source != "127.0.0.2" {
		t.Fatalf("a second source's bad packet: %d lines, want a second line for 127.0.0.2:\n%s", len(warn), te.logs.String())
	}

	// After LogEvery (default one minute) the first source is logged again.
	te.clock.Advance(time.Minute)
	a.send(badRequest(a.addr(), unique("bad"), marker))
	a.ping(replyWait)
	if warn := te.records(t, "WARN"); len(warn) != 3 || warn[2].Source != "127.0.0.1" {
		t.Fatalf("a bad packet a minute later: %d lines, want a third line for 127.0.0.1:\n%s", len(warn), te.logs.String())
	}

	if strings.Contains(te.logs.String(), marker) {
		t.Fatalf("the log carries the packets' content:\n%s", te.logs.String())
	}
	if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "unparsable"}); n != 52 {
		t.Fatalf("dropped{reason=unparsable} = %v, want 52: every bad packet is counted even when not logged", n)
	}
}

// TestFilter_ParseErrorLoggedWithoutPayload: the one line logged for a
// bad packet names the parse error, but sipgo's parse errors quote what
// they could not parse (the whole start line, a header value), so the
// error text must not carry the packet into the log either.
func TestFilter_ParseErrorLoggedWithoutPayload(t *testing.T) {
	for _, tc := range []struct {
		name string
		data func(from string) []byte
	}{
		{"first line", func(string) []byte {
			return []byte("PAYLOAD-7f3a9c-first-line-" + strings.Repeat("z", 1000) + "\r\nVia: x\r\n\r\n")
		}},
		{"header value", func(from string) []byte {
			return []byte(strings.Replace(string(badRequest(from, unique("bad"), "x")), "Max-Forwards: seventy", "Max-Forwards: PAYLOAD-7f3a9c", 1))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := startEdge(t)
			p := newUDPPeer(t, te, "127.0.0.1")
			p.sendThenPing(tc.data(p.addr()))
			if len(te.records(t, "WARN")) != 1 {
				t.Fatalf("want one line about the bad packet:\n%s", te.logs.String())
			}
			if strings.Contains(te.logs.String(), "PAYLOAD-7f3a9c") {
				t.Fatalf("the log carries the packet's content:\n%s", te.logs.String())
			}
		})
	}
}

// TestFilter_StreamParseErrorsLoggedWithoutPayload: over TCP the read
// filter leaves framing to sipgo's stream parser, which logs what it
// cannot parse at error level with the whole message, for every message.
// The edge promises one line per source per LogEvery without content
// whatever the transport.
func TestFilter_StreamParseErrorsLoggedWithoutPayload(t *testing.T) {
	te := startEdge(t)
	const marker = "PAYLOAD-7f3a9c-must-not-be-logged"
	for range 3 {
		data := []byte(strings.Replace(string(badRequest("127.0.0.1:5060", unique("bad"), marker)), "SIP/2.0/UDP", "SIP/2.0/TCP", 1))
		tcpReplies(t, te, data, silenceWait, func([]string) bool { return false })
	}
	requireAliveTCP(t, te, "bad messages over TCP")
	if strings.Contains(te.logs.String(), marker) {
		t.Fatalf("the log carries the messages' content:\n%s", te.logs.String())
	}
}

// TestFlood_BannedSourceUnansweredOtherSourcesServed: after Kamailio's
// pike, a source sending more than Limit packets in a Window is banned:
// what it sends is dropped unread, and the edge goes on serving others.
func TestFlood_BannedSourceUnansweredOtherSourcesServed(t *testing.T) {
	te := startEdge(t, func(c *sipedge.Config) {
		c.Flood = sipedge.FloodConfig{Limit: 20, Window: 2 * time.Second, BanFor: time.Minute}
	})
	flooder := newUDPPeer(t, te, "127.0.0.1")
	other := newUDPPeer(t, te, "127.0.0.2")

	// The fake clock stands still: every packet falls in one window.
	for i := 1; i <= 20; i++ {
		if res := flooder.ping(replyWait); res == nil || res.StatusCode != 200 {
			t.Fatalf("OPTIONS %d of 20 (within the limit) got %v, want 200", i, res)
		}
	}
	if bans := te.Bans(); len(bans) != 0 {
		t.Fatalf("Bans after 20 packets at Limit 20 = %+v, want none", bans)
	}

	// Packet 21 starts the ban and is dropped; later ones are dropped too.
	for range 5 {
		flooder.send(optionsTo(flooder.addr(), unique("flood")))
	}
	if res := other.ping(replyWait); res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS from 127.0.0.2 while 127.0.0.1 is banned got %v, want 200", res)
	}
	bans := te.Bans()
	if len(bans) != 1 || bans[0].Source != "127.0.0.1" || bans[0].Packets != 21 || bans[0].Dropped != 5 ||
		!bans[0].Until.Equal(bans[0].Since.Add(time.Minute)) {
		t.Fatalf("Bans = %+v, want 127.0.0.1 banned for a minute after 21 packets, 5 dropped", bans)
	}
	if n := te.counter(t, "switchboard_sip_dropped_total", map[string]string{"reason": "banned"}); n != 5 {
		t.Fatalf("dropped{reason=banned} = %v, want 5", n)
	}
	if raw := flooder.read(silenceWait); raw != nil {
		t.Fatalf("the banned source got an answer: %q", raw)
	}
	var banLines int
	for _, r := range te.records(t, "WARN") {
		if r.Msg == "source banned for flooding" && r.Source == "127.0.0.1" {
			banLines++
		}
	}
	if banLines != 1 {
		t.Fatalf("%d \"source banned for flooding\" lines, want 1 (when the ban starts):\n%s", banLines, te.logs.String())
	}

	// BanFor later the source is heard again.
	te.clock.Advance(time.Minute)
	if res := flooder.ping(replyWait); res == nil || res.StatusCode != 200 {
		t.Fatalf("OPTIONS after the ban ended got %v, want 200", res)
	}
	if bans := te.Bans(); len(bans) != 0 {
		t.Fatalf("Bans after BanFor = %+v, want none", bans)
	}
}

// inviteTo is an INVITE from the peer at from to ruri, after RFC 3261
// section 4, with maxForwards in Max-Forwards.
//
// The tests do not ACK the edge's final responses: the INVITE server
// transaction retransmits them until the edge closes, which is harmless,
// whereas an ACK the edge reads just before Close races sipgo's shutdown
// (a request handled while UserAgent.Close runs makes sipgo open a UDP
// socket that nothing closes; goleak sees its reader).
func inviteTo(from, ruri, callID string, maxForwards int) string {
	return fmt.Sprintf(`INVITE %s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK%s
Max-Forwards: %d
To: Bob <%s>
From: Alice <sip:alice@acme.sip.switchboard.test>;tag=1928301774
Call-ID: %s
CSeq: 314159 INVITE
Contact: <sip:alice@%s>
Content-Length: 0

`, ruri, from, unique("b"), maxForwards, ruri, callID, from)
}

func TestEdge_RFC3261_16_3_MaxForwardsZeroInviteIs483(t *testing.T) {
	te := startEdge(t)
	p := newUDPPeer(t, te, "127.0.0.1")
	id := unique("mf0")
	p.send(crlf(inviteTo(p.addr(), "sip:bob@acme.sip.switchboard.test", id, 0)))
	res := p.final(id, replyWait)
	if res == nil || res.StatusCode != 483 {
		t.Fatalf("INVITE with Max-Forwards 0 got %v, want 483 Too Many Hops", res)
	}
	if got := te.actors.Requests(); len(got) != 0 {
		t.Fatalf("a request with no hops left reached the actors: %v", got)
	}
	// Max-Forwards 1 is still allowed in: it gets the digest challenge.
	id = unique("mf1")
	p.send(crlf(inviteTo(p.addr(), "sip:bob@acme.sip.switchboard.test", id, 1)))
	if res := p.final(id, replyWait); res == nil || res.StatusCode != 407 {
		t.Fatalf("INVITE with Max-Forwards 1 got %v, want 407 (it goes on to authentication)", res)
	}
}

func TestEdge_InviteOutsideServedAccountsIs404(t *testing.T) {
	for _, tc := range []struct {
		name, ruri  string
		wantActors  []string
		wantCode    int
		wantHeaders []string
	}{
		{"host outside the zone is never an account", "sip:bob@biloxi.example.com", nil, 404, nil},
		{"IP literal host", "sip:bob@192.0.2.1", nil, 404, nil},
		{"nested name in the zone", "sip:bob@sales.acme.sip.switchboard.test", nil, 404, nil},
		{"account the actors do not know", "sip:bob@nobody.sip.switchboard.test",
			[]string{"account/nobody: *actorpb.GetSecretEdgeView"}, 404, nil},
		// The account that exists: the caller must prove who it is
		// (RFC 3261 section 22.3).
		{"account served here challenges", "sip:bob@acme.sip.switchboard.test",
			[]string{"account/acme: *actorpb.GetSecretEdgeView", "account/acme: *actorpb.GetSecretEdgeView"}, 407, []string{"Proxy-Authenticate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := startEdge(t)
			p := newUDPPeer(t, te, "127.0.0.1")
			id := unique("inv")
			p.send(crlf(inviteTo(p.addr(), tc.ruri, id, 70)))
			res := p.final(id, replyWait)
			if res == nil || res.StatusCode != tc.wantCode {
				t.Fatalf("INVITE %s got %v, want %d", tc.ruri, res, tc.wantCode)
			}
			for _, h := range tc.wantHeaders {
				if res.GetHeader(h) == nil {
					t.Fatalf("%d has no %s header:\n%s", res.StatusCode, h, res)
				}
			}
			if got := te.actors.Requests(); !slices.Equal(got, tc.wantActors) {
				t.Fatalf("actors asked %v, want %v", got, tc.wantActors)
			}
		})
	}
}
