package actors

import "github.com/switchboard-pbx/switchboard/actors/actorpb"

// The call lifecycle, its one home: a call's record is CallActive from
// its start until it ends, then CallEnded for good, with a Disposition
// and who ended it (ended_by). The values are stored in records and shown
// in JSON as they are.

// CallState is a call record's state.
type CallState string

const (
	CallActive CallState = "active"
	CallEnded  CallState = "ended"
)

// Disposition is how a call ended.
type Disposition string

const (
	DispositionCompleted Disposition = "completed" // answered (2xx), then hung up
	DispositionCanceled  Disposition = "canceled"  // the caller gave up (487)
	DispositionBusy      Disposition = "busy"      // 486, 600
	DispositionNoAnswer  Disposition = "no_answer" // 408, 480
	DispositionFailed    Disposition = "failed"    // any other final status
	// The session timer (RFC 4028) or the maximum call length ran out;
	// ended_by "expiry".
	DispositionExpired Disposition = "expired"
	// The process that carried the call died (a survivor ended it) or shut
	// down; ended_by "node".
	DispositionInterrupted Disposition = "interrupted"
)

// DispositionOf is the disposition of a call its signalling ended with
// the final status status (RFC 3261 21).
func DispositionOf(status int) Disposition {
	switch {
	case status >= 200 && status < 300:
		return DispositionCompleted
	case status == 487:
		return DispositionCanceled
	case status == 486 || status == 600:
		return DispositionBusy
	case status == 408 || status == 480:
		return DispositionNoAnswer
	}
	return DispositionFailed
}

// endedBy lists the values a call's ended_by may take ("" when unknown).
// EndCall may give the first six; the system gives "expiry" and "node".
var endedBy = []string{"", "caller", "callee", "cancel", "failure", "timeout", "expiry", "node"}

// IsCallActive is the lifecycle's one rule: only an active call (a record
// that exists and has not ended) may be answered, refreshed, ended,
// interrupted or adopted; an ended call never changes again.
func IsCallActive(rec *actorpb.CallRecord) bool { return rec.GetState() == string(CallActive) }
