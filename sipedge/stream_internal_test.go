package sipedge

import (
	"testing"
)

const twoMessages = "\r\n\r\nOPTIONS sip:a SIP/2.0\r\nl: 5\r\nVia: x\r\n\r\nhello" +
	"MESSAGE sip:b SIP/2.0\r\nContent-Length:  3 \r\n\r\nabc\r\n\r\n"

// RFC 3261 section 18.3: a stream message ends Content-Length bytes after
// the empty line; CRLFs between messages are keep-alives (RFC 5626
// section 3.5.1). However TCP cuts the stream, the framer sees the same
// boundaries.
func TestFramer_RFC3261_18_3_BoundariesWhateverTheCuts(t *testing.T) {
	for cut := 1; cut <= len(twoMessages); cut++ {
		var f framer
		began := 0
		for i := 0; i < len(twoMessages); i += cut {
			if f.feed([]byte(twoMessages[i:min(i+cut, len(twoMessages))])) {
				began++
			}
		}
		if f.messages != 2 || f.inMessage() {
			t.Fatalf("in chunks of %d: %d messages, in message %v; want 2 and false", cut, f.messages, f.inMessage())
		}
		if cut == len(twoMessages) && began != 1 || cut == 1 && began != 2 {
			t.Fatalf("in chunks of %d: %d messages began", cut, began)
		}
	}
	var f framer
	f.feed([]byte("INVITE sip:a SIP/2.0\r\nContent-Length: 10\r\n\r\nabc"))
	if !f.inMessage() {
		t.Fatal("a body 7 bytes short is not in progress")
	}
}

// FuzzFramer: any bytes, cut anywhere, frame the same way and never
// panic.
func FuzzFramer(f *testing.F) {
	f.Add([]byte(twoMessages), uint8(3))
	f.Add([]byte("A\r\nl: -1\r\n\r\n"), uint8(1))
	f.Add([]byte("A\r\nContent-Length: 99999999999999999999\r\n\r\n"), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		var whole, pieces framer
		whole.feed(data)
		step := int(cut%16) + 1
		for i := 0; i < len(data); i += step {
			pieces.feed(data[i:min(i+step, len(data))])
		}
		if whole.messages != pieces.messages || whole.inMessage() != pieces.inMessage() || whole.body != pieces.body {
			t.Fatalf("whole: %d messages, in %v, body %d; in pieces of %d: %d, %v, %d",
				whole.messages, whole.inMessage(), whole.body, step, pieces.messages, pieces.inMessage(), pieces.body)
		}
	})
}
