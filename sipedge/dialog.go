package sipedge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// routeParam is the parameter of this edge's Record-Route URI that signs
// the dialog it record-routed: base64url of HMAC-SHA-256(route key,
// Call-ID | 0 | From tag of the dialog-creating request | 0 | up flow |
// 0 | down flow), cut to 16 bytes. An in-dialog request is relayed only
// when its Route naming this edge carries the signature of its own
// Call-ID and one of its tags (the caller's requests carry that tag in
// From, the callee's in To), so a forged To tag and Route are no way
// through (RFC 3261 section 16.4 lets a proxy put any state it likes into
// its Record-Route URI).
const routeParam = "sbd"

// Flow parameters of a Record-Route entry (RFC 5626 section 5.3 flow
// tokens, signed with the dialog): the flow on this edge of the dialog's
// initiator (upParam) and of its callee (downParam), each
// "transport:ip:port", base64url. A request in the dialog whose route set
// ends at this edge goes out on the flow of the side it is for, not to the
// request-URI: a device behind NAT, or on a TCP or TLS connection it
// opened, is reachable only there.
const (
	upParam   = "sbu"
	downParam = "sbc"
)

// routeMACLen is how much of the HMAC goes into the parameter.
const routeMACLen = 16

// routeKey derives the key of Record-Route signatures from the configured
// secret, apart from any other use of it.
func routeKey(secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("switchboard sipedge record-route v1"))
	return h.Sum(nil)
}

// mac signs parts, each ended by a 0 byte, with the route key.
func (e *Edge) mac(parts ...string) string {
	h := hmac.New(sha256.New, e.routeKey)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:routeMACLen])
}

func encodeFlow(f string) string { return base64.RawURLEncoding.EncodeToString([]byte(f)) }

func decodeFlow(s string) string {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return ""
	}
	return string(b)
}

// recordRoute is this edge's Record-Route entry for the dialog req
// creates, signed over its Call-ID and From tag and the flows up (the
// caller's, when it reached this edge directly) and down (the callee's,
// when this edge sends to it directly); either may be "".
func (e *Edge) recordRoute(req *sip.Request, up, down string) *sip.RecordRouteHeader {
	tag, _ := req.From().Params.Get("tag")
	params := sip.HeaderParams{{K: "lr", V: ""}}
	if up != "" {
		params = append(params, sip.HeaderKV{K: upParam, V: encodeFlow(up)})
	}
	if down != "" {
		params = append(params, sip.HeaderKV{K: downParam, V: encodeFlow(down)})
	}
	params = append(params, sip.HeaderKV{K: routeParam, V: e.mac("dialog", callID(req), tag, up, down)})
	return &sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: e.advHost, Port: e.advPort, UriParams: params}}
}

// dialogRoute is what this edge's own Route entry in an in-dialog request
// says, once its signature is checked.
type dialogRoute struct {
	// fromInitiator: the request comes from the dialog's initiator (its
	// From tag is the signed one), so it goes towards the callee.
	fromInitiator bool
	up, down      string // flows, "" when this edge holds none
}

// flowOnward is the flow the request goes out on when no Route is left
// after this edge: the callee's for the initiator's requests, the
// initiator's for the callee's ("" when this edge holds none).
func (d dialogRoute) flowOnward() string {
	if d.fromInitiator {
		return d.down
	}
	return d.up
}

// ownsDialog checks route, the Route entry naming this edge that an
// in-dialog request carried: whether this edge signed it for the
// request's dialog, and what it says.
func (e *Edge) ownsDialog(route sip.Uri, req *sip.Request) (dialogRoute, bool) {
	sig, ok := route.UriParams.Get(routeParam)
	if !ok || sig == "" {
		return dialogRoute{}, false
	}
	up, _ := route.UriParams.Get(upParam)
	down, _ := route.UriParams.Get(downParam)
	d := dialogRoute{up: decodeFlow(up), down: decodeFlow(down)}
	id := callID(req)
	for i, h := range []*sip.HeaderParams{&req.From().Params, &req.To().Params} {
		tag, _ := h.Get("tag")
		if hmac.Equal([]byte(sig), []byte(e.mac("dialog", id, tag, d.up, d.down))) {
			d.fromInitiator = i == 0
			return d, true
		}
	}
	return dialogRoute{}, false
}

// hopValue is the X-Switchboard-Hop header of a request this edge sends
// to a peer node: this node's name, the flow on the peer to deliver it on
// (for a device registered there; "" for a call placed there), and a
// signature over the Call-ID, name and flow with the cluster's route key,
// which only peers hold.
func (e *Edge) hopValue(req *sip.Request, deliver string) string {
	v := e.cfg.Node
	if deliver != "" {
		v += ";deliver=" + encodeFlow(deliver)
	}
	return v + ";sig=" + e.mac("hop", callID(req), e.cfg.Node, deliver)
}

// hop is a checked X-Switchboard-Hop header.
type hop struct {
	from    string // the peer node's name
	deliver string // the flow here to deliver on, or "" (a call placed here)
}

// checkHop reads and checks the hop header value of req.
func (e *Edge) checkHop(req *sip.Request, value string) (hop, bool) {
	parts := strings.Split(value, ";")
	h := hop{from: strings.TrimSpace(parts[0])}
	sig := ""
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k {
		case "deliver":
			h.deliver = decodeFlow(v)
		case "sig":
			sig = v
		}
	}
	if h.from == "" || sig == "" || !hmac.Equal([]byte(sig), []byte(e.mac("hop", callID(req), h.from, h.deliver))) {
		return hop{}, false
	}
	return h, true
}
