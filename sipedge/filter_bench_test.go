package sipedge

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// benchInvite is a typical INVITE from a phone, with an SDP body.
const benchInvite = "INVITE sip:bob@acme.sip.switchboard.test SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-524287-1---77ba2b0c7ba1d2e2;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"Contact: <sip:alice@192.0.2.10:5062;transport=udp>\r\n" +
	"To: <sip:bob@acme.sip.switchboard.test>\r\n" +
	"From: \"Alice\" <sip:alice@acme.sip.switchboard.test>;tag=1c1b3b5a\r\n" +
	"Call-ID: a84b4c76e66710-7f2c@192.0.2.10\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n" +
	"Content-Type: application/sdp\r\n" +
	"User-Agent: bench\r\n" +
	"Content-Length: 142\r\n\r\n" +
	"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"

// BenchmarkDatagramParse measures what each UDP datagram costs to parse.
// The read filter used to parse it fully (to answer what does not parse
// with 400 and keep its content out of sipgo's log), then sipgo parsed it
// again: "filter+sipgo" is that cost, the baseline. Now sipgo's parse is
// the only one ("sipgo"), and an unparsable datagram is answered from
// sipgo's log record of it (parseFailed). Compare ns/op and allocs/op.
//
//	go test -run '^$' -bench DatagramParse ./sipedge/
func BenchmarkDatagramParse(b *testing.B) {
	data := []byte(benchInvite)
	p := sip.NewParser()
	if _, err := p.ParseSIP(data); err != nil {
		b.Fatal(err)
	}
	b.Run("sipgo", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := p.ParseSIP(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("filter+sipgo", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			for range 2 {
				if _, err := p.ParseSIP(data); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
