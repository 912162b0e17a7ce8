package sipedge_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-pbx/switchboard/sipedge"
)

// messageWith is a MESSAGE to bob of acme with the given Content-Type
// header line ("" for none) and body.
func messageWith(t *testing.T, contentType, body string) string {
	t.Helper()
	ct := ""
	if contentType != "" {
		ct = "Content-Type: " + contentType + "\n"
	}
	return `MESSAGE sip:bob@acme.sip.switchboard.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKm1
Max-Forwards: 70
From: <sip:alice@acme.sip.switchboard.test>;tag=a1
To: <sip:bob@acme.sip.switchboard.test>
Call-ID: m1
CSeq: 1 MESSAGE
` + ct + `Content-Length: ` + strconv.Itoa(len(body)) + `

` + body
}

// RFC 3428 section 7 and RFC 3261 section 21.4.13: a MESSAGE over the
// size limit is 513; one with no body, no Content-Type or a media type
// not accepted is 415 with Accept.
func TestCheckMessageRequest_RFC3428_7_SizeAndMediaType(t *testing.T) {
	rules := sipedge.DefaultMessageRules()
	rules.MaxBody = 16
	for _, tc := range []struct {
		name, ct, body string
		want           int
	}{
		{"plain text", "text/plain", "hello", 0},
		{"with parameters, other case", "Text/Plain; charset=UTF-8", "hello", 0},
		{"CPIM", "message/cpim", "hello", 0},
		{"is-composing", "application/im-iscomposing+xml", "<x/>", 0},
		{"at the limit", "text/plain", strings.Repeat("a", 16), 0},
		{"over the limit", "text/plain", strings.Repeat("a", 17), 513},
		{"no body", "text/plain", "", 415},
		{"no Content-Type", "", "hello", 415},
		{"HTML", "text/html", "<b>hi</b>", 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rej := sipedge.CheckMessageRequest(parseRequest(t, messageWith(t, tc.ct, tc.body)), rules)
			got := 0
			if rej != nil {
				got = rej.Code
			}
			if got != tc.want {
				t.Fatalf("CheckMessageRequest = %d, want %d", got, tc.want)
			}
			if got == 415 {
				found := false
				for _, h := range rej.Headers {
					found = found || h[0] == "Accept" && strings.Contains(h[1], "text/plain")
				}
				if !found {
					t.Fatalf("415 without an Accept naming text/plain: %+v", rej.Headers)
				}
			}
		})
	}
}
