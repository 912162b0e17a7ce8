package sipedge

import (
	"strings"
	"testing"
	"time"

	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/clock"
)

// bareEdge is an Edge with only what building and checking forwarded
// requests needs.
func bareEdge(secret string) *Edge {
	return &Edge{
		cfg:     Config{Zone: "sip.switchboard.test", Clock: clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))},
		advHost: "127.0.0.1", advPort: 5060, routeKey: routeKey([]byte(secret)),
		trustedIPs: map[netip.Addr]time.Time{},
	}
}

func mustRequest(t *testing.T, text string) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(strings.ReplaceAll(text, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

const inviteText = `INVITE sip:bob@acme.sip.switchboard.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK1
Max-Forwards: 70
From: <sip:alice@acme.sip.switchboard.test>;tag=alice-tag
To: <sip:bob@acme.sip.switchboard.test>
Call-ID: call-1
CSeq: 1 INVITE
Proxy-Authorization: Digest username="alice", realm="acme.sip.switchboard.test", nonce="n", uri="sip:bob@acme.sip.switchboard.test", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="c"
Proxy-Authorization: Digest username="alice", realm="carrier.example", nonce="n2", uri="sip:bob@acme.sip.switchboard.test", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="c2"
Content-Length: 0

`

// inDialogText is a request in call-1's dialog, sent by the side whose
// tag is from, with the Route set routes.
func inDialogText(method, from, to, route string) string {
	return method + ` sip:x@127.0.0.9:5070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK2
Max-Forwards: 70
Route: ` + route + `
From: <sip:a@acme.sip.switchboard.test>;tag=` + from + `
To: <sip:b@acme.sip.switchboard.test>;tag=` + to + `
Call-ID: call-1
CSeq: 2 ` + method + `
Content-Length: 0

`
}

// RFC 3261 section 16.6 step 4 and 16.12: the Record-Route entry this
// edge puts on a dialog-creating request comes back as the Route of every
// request in that dialog, from either side, and proves the dialog; the
// same entry for another Call-ID, tag or node secret proves nothing.
func TestDialog_RFC3261_16_6_SignedRecordRouteProvesTheDialog(t *testing.T) {
	e := bareEdge("node secret one")
	rr := e.recordRoute(mustRequest(t, inviteText), "", "")
	route := "<" + rr.Address.String() + ">"
	if !strings.Contains(route, ";lr") || !strings.Contains(route, routeParam+"=") {
		t.Fatalf("Record-Route %s lacks lr or the signature", route)
	}
	for _, tc := range []struct {
		name string
		e    *Edge
		req  string
		want bool
	}{
		{"caller's BYE", e, inDialogText("BYE", "alice-tag", "bob-tag", route), true},
		{"callee's BYE", e, inDialogText("BYE", "bob-tag", "alice-tag", route), true},
		{"another dialog's tags", e, inDialogText("BYE", "mallory", "forged1", route), false},
		{"another Call-ID", e, strings.Replace(inDialogText("BYE", "alice-tag", "bob-tag", route), "call-1", "call-2", 1), false},
		{"another node's secret", bareEdge("node secret two"), inDialogText("BYE", "alice-tag", "bob-tag", route), false},
		{"no signature", e, inDialogText("BYE", "alice-tag", "bob-tag", "<sip:127.0.0.1:5060;lr>"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := mustRequest(t, tc.req)
			if _, got := tc.e.ownsDialog(req.Route().Address, req); got != tc.want {
				t.Fatalf("ownsDialog = %v, want %v", got, tc.want)
			}
		})
	}
}

// Issue 9, hole 4: the proxy forwarded the caller's Proxy-Authorization
// (response, nonce, cnonce) downstream. Credentials for this edge's own
// realms are consumed (Kamailio's consume_credentials); another realm's
// pass on to the hop they are for (RFC 3261 section 22.3).
func TestProxy_RFC3261_22_3_OwnRealmCredentialsConsumed(t *testing.T) {
	e := bareEdge("node secret one")
	req := mustRequest(t, inviteText)
	uri := sip.Uri{Scheme: "sip", User: "vm", Host: "voicemail.acme.sip.switchboard.test"}
	out := e.prepare(req, target{uri: uri, dest: "127.0.0.9:5090", transport: "tcp", feature: true, trusted: true}, &callState{up: "udp:127.0.0.9:5070"})
	var realms []string
	for _, h := range out.GetHeaders("Proxy-Authorization") {
		for _, p := range strings.Split(h.Value(), ",") {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k == "realm" {
				realms = append(realms, strings.Trim(v, `"`))
			}
		}
	}
	if len(realms) != 1 || realms[0] != "carrier.example" {
		t.Fatalf("downstream Proxy-Authorization realms = %v, want only carrier.example:\n%s", realms, out.String())
	}
	if rr := out.RecordRoute(); rr == nil || !e.isSelf(rr.Address) {
		t.Fatalf("the forwarded INVITE has no Record-Route of this edge:\n%s", out.String())
	}
	// The incoming request keeps what it had (a retry to the next target
	// is prepared from it again).
	if n := len(req.GetHeaders("Proxy-Authorization")); n != 2 {
		t.Fatalf("the incoming request lost its credentials: %d left, want 2", n)
	}
}

// RFC 5626 section 5.3: the edge's Record-Route entry carries, signed
// with the dialog, the flows it holds for the caller (up) and the callee
// (down). A request of the dialog whose route set ends here goes out on
// the flow of the side it is for; a changed flow breaks the signature, so
// nobody can point a dialog at another address.
func TestDialog_RFC5626_FlowTokensInRecordRoute(t *testing.T) {
	e := bareEdge("node secret one")
	const up, down = "tcp:198.51.100.7:40001", "udp:203.0.113.9:5062"
	rr := e.recordRoute(mustRequest(t, inviteText), up, down)
	route := "<" + rr.Address.String() + ">"
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"the caller's BYE goes to the callee's flow", "alice-tag", "bob-tag", down},
		{"the callee's BYE goes to the caller's flow", "bob-tag", "alice-tag", up},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := mustRequest(t, inDialogText("BYE", tc.from, tc.to, route))
			d, ok := e.ownsDialog(req.Route().Address, req)
			if !ok {
				t.Fatal("the edge's own Record-Route entry was not recognised")
			}
			req.RemoveHeader("Route")
			nh, ok := e.nextHop(req, d)
			if !ok || nh.flow != tc.want || nh.dest != tc.want[4:] || nh.transport != tc.want[:3] {
				t.Fatalf("next hop %+v, want the flow %s", nh, tc.want)
			}
		})
	}
	forged := strings.Replace(route, encodeFlow(down), encodeFlow("udp:192.0.2.66:5060"), 1)
	req := mustRequest(t, inDialogText("BYE", "alice-tag", "bob-tag", forged))
	if _, ok := e.ownsDialog(req.Route().Address, req); ok {
		t.Fatal("a Record-Route entry with a changed flow was accepted")
	}
}

// The hop header a node sends to a peer is signed with the cluster's route
// key over the Call-ID, the sender and the flow to deliver on: a peer with
// the same key accepts it; another key, another Call-ID or another flow do
// not pass.
func TestHop_SignedHeaderOnlyFromPeers(t *testing.T) {
	sender := bareEdge("cluster secret")
	sender.cfg.Node = "n2"
	req := mustRequest(t, inviteText)
	v := sender.hopValue(req, "tcp:198.51.100.7:40001")
	peer := bareEdge("cluster secret")
	if h, ok := peer.checkHop(req, v); !ok || h.from != "n2" || h.deliver != "tcp:198.51.100.7:40001" {
		t.Fatalf("a peer's hop header was refused: %+v %v", h, ok)
	}
	if _, ok := bareEdge("another cluster").checkHop(req, v); ok {
		t.Fatal("a hop header signed with another key was accepted")
	}
	other := mustRequest(t, strings.Replace(inviteText, "call-1", "call-2", 1))
	if _, ok := peer.checkHop(other, v); ok {
		t.Fatal("a hop header was accepted on another Call-ID")
	}
	moved := strings.Replace(v, encodeFlow("tcp:198.51.100.7:40001"), encodeFlow("udp:192.0.2.66:5060"), 1)
	if _, ok := peer.checkHop(req, moved); ok {
		t.Fatal("a hop header with a changed flow was accepted")
	}
	if _, ok := peer.checkHop(req, "n2"); ok {
		t.Fatal("an unsigned hop header was accepted")
	}
}
