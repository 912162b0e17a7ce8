package sipedge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"

	"github.com/emiago/sipgo/sip"
)

// routeParam is the parameter of this edge's Record-Route URI that signs
// the dialog it record-routed: base64url of HMAC-SHA-256(route key,
// Call-ID | 0 | From tag of the dialog-creating request), cut to 16 bytes.
// An in-dialog request is relayed only when its Route naming this edge
// carries the signature of its own Call-ID and one of its tags (the
// caller's requests carry that tag in From, the callee's in To), so a
// forged To tag and Route are no way through (RFC 3261 section 16.4 lets
// a proxy put any state it likes into its Record-Route URI).
const routeParam = "sbd"

// routeMACLen is how much of the HMAC goes into the parameter.
const routeMACLen = 16

// routeKey derives the key of Record-Route signatures from the configured
// secret, apart from any other use of it.
func routeKey(secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("switchboard sipedge record-route v1"))
	return h.Sum(nil)
}

// dialogMAC signs the dialog of callID whose initiator's tag is tag.
func (e *Edge) dialogMAC(callID, tag string) string {
	h := hmac.New(sha256.New, e.routeKey)
	h.Write([]byte(callID))
	h.Write([]byte{0})
	h.Write([]byte(tag))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:routeMACLen])
}

// recordRoute is this edge's Record-Route entry for the dialog req
// creates, signed over its Call-ID and From tag.
func (e *Edge) recordRoute(req *sip.Request) *sip.RecordRouteHeader {
	tag, _ := req.From().Params.Get("tag")
	return &sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: e.advHost, Port: e.advPort,
		UriParams: sip.HeaderParams{{K: "lr", V: ""}, {K: routeParam, V: e.dialogMAC(callID(req), tag)}}}}
}

// ownsDialog says whether route, the Route entry naming this edge that an
// in-dialog request carried, is one this edge signed for the request's
// dialog.
func (e *Edge) ownsDialog(route sip.Uri, req *sip.Request) bool {
	sig, ok := route.UriParams.Get(routeParam)
	if !ok || sig == "" {
		return false
	}
	id := callID(req)
	for _, h := range []*sip.HeaderParams{&req.From().Params, &req.To().Params} {
		tag, _ := h.Get("tag")
		if hmac.Equal([]byte(sig), []byte(e.dialogMAC(id, tag))) {
			return true
		}
	}
	return false
}
