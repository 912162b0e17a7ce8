package actors

import (
	"testing"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// A call's disposition follows its final status (RFC 3261 21), with the
// values stored in records and shown in JSON.
func TestDispositionOf_RFC3261_21_FinalStatus(t *testing.T) {
	for status, want := range map[int]string{
		200: "completed", 202: "completed", 487: "canceled", 486: "busy", 600: "busy",
		408: "no_answer", 480: "no_answer", 404: "failed", 503: "failed", 0: "failed",
	} {
		if got := DispositionOf(status); string(got) != want {
			t.Errorf("DispositionOf(%d) = %q, want %q", status, got, want)
		}
	}
}

// Only an active call record is active; no record, or an ended one, is not.
func TestIsCallActive(t *testing.T) {
	for rec, want := range map[*actorpb.CallRecord]bool{
		nil: false, {State: "active"}: true, {State: "ended"}: false, {}: false,
	} {
		if got := IsCallActive(rec); got != want {
			t.Errorf("IsCallActive(%v) = %v, want %v", rec, got, want)
		}
	}
}
