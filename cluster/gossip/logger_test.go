package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestMemberlistLogger_MapsLevelsAndDropsDebug(t *testing.T) {
	var buf bytes.Buffer
	l := memberlistLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("[DEBUG] memberlist: Failed to join 127.0.0.1:1: connection refused")
	l.Printf("[INFO] memberlist: Marking b as failed, suspect timeout reached (1 peer confirmations)")
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: b)")
	l.Printf("[ERR] memberlist: Push/Pull with b failed: EOF")
	l.Printf("something without a level")
	l.Printf("[ERR] memberlist: Failed to send gossip to 127.0.0.1:7946: write udp 127.0.0.1:7947->127.0.0.1:7946: use of closed network connection")
	out := buf.String()
	if strings.Contains(out, "Failed to join") {
		t.Fatalf("DEBUG line passed through:\n%s", out)
	}
	for _, want := range []string{
		`level=INFO msg="Marking b as failed`,
		`level=WARN msg="Refuting a suspect message`,
		`level=ERROR msg="Push/Pull with b failed: EOF" library=memberlist`,
		`level=WARN msg="something without a level"`,
		`level=INFO msg="Failed to send gossip to 127.0.0.1:7946`, // our own transport closed: a leave
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
