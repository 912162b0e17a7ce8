package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/callcontext"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// CallEventSink is an EventSink that also names the call an event is
// about, so that subscribers can select one call. The call events and
// context.changed use it when Config.Events implements it, else
// AppendEvent.
type CallEventSink interface {
	AppendCallEvent(ctx context.Context, account, typ, call, user string, data []byte) error
}

// party is a user (device) of the account taking part in a call, and its
// role in it.
type party struct{ user, role string }

// callParties lists the users of the account a call is about: the caller,
// and the callee when the call went to a device (not to a feature's
// route). Each gets its own events and its own entry in the recent-calls
// index, so that a token scoped to one user sees exactly that user's.
func callParties(rec *actorpb.CallRecord) []party {
	var out []party
	if rec.GetCaller() != "" {
		out = append(out, party{rec.Caller, "caller"})
	}
	if rec.GetRoute() == "" && rec.GetCallee() != "" && rec.Callee != rec.Caller {
		out = append(out, party{rec.Callee, "callee"})
	}
	return out
}

// callEvent appends one event of type typ per party of rec to its
// account's stream, data(role) as its payload. A failure is logged: the
// call and the context are already stored.
func (s *System) callEvent(ctx context.Context, rec *actorpb.CallRecord, typ string, data func(role string) any) {
	sink := s.cfg.Events
	if sink == nil || rec == nil {
		return
	}
	cs, _ := sink.(CallEventSink)
	for _, p := range callParties(rec) {
		b, err := json.Marshal(data(p.role))
		if err == nil {
			if cs != nil {
				err = cs.AppendCallEvent(ctx, rec.Account, typ, rec.Id, p.user, b)
			} else {
				err = sink.AppendEvent(ctx, rec.Account, typ, p.user, b)
			}
		}
		if err != nil {
			s.log.Warn("appending a call event failed", "account", rec.Account, "call_id", rec.Id, "type", typ, "err", err)
		}
	}
}

// CallEvent is the data of call.answered and call.ended: the user's role
// and the call.
type CallEvent struct {
	Role string         `json:"role"`
	Call map[string]any `json:"call"`
}

// RingingEvent is the data of call.ringing: the user's role and the
// call's context, so that a CRM can pop the caller's record.
type RingingEvent struct {
	Role    string           `json:"role"`
	Context callcontext.View `json:"context"`
}

// callStarted emits call.ringing. The context carried is the new call's:
// no app can have written on a call before it started (and the call
// actor never asks a context actor: no request cycle).
func (s *System) callStarted(ctx context.Context, rec *actorpb.CallRecord) {
	s.callEvent(ctx, rec, "call.ringing", func(role string) any {
		return RingingEvent{Role: role, Context: callcontext.Assemble(CallJSON(rec), true, nil, 0)}
	})
}

func (s *System) callChanged(ctx context.Context, rec *actorpb.CallRecord, typ string) {
	s.callEvent(ctx, rec, typ, func(role string) any { return CallEvent{Role: role, Call: CallJSON(rec)} })
}

// ---- the recent-calls index --------------------------------------------------

// userCallsPrefix holds a user's calls, newest first:
// acct/<a>/ucalls/<user>/<20 digits: MaxInt64 - started_at ns>-<call>.
func userCallsPrefix(a, user string) string {
	return "acct/" + a + "/ucalls/" + url.PathEscape(user) + "/"
}
func userCallKey(a, user string, started time.Time, call string) string {
	return userCallsPrefix(a, user) + userCallCursor(started, call)
}
func userCallCursor(started time.Time, call string) string {
	return fmt.Sprintf("%020d-%s", math.MaxInt64-started.UnixNano(), call)
}

var cursorPattern = regexp.MustCompile(`^[0-9]{20}-` + callIDChars + `{1,128}$`)

// ValidCallsCursor tells whether after is a cursor ListUserCalls gave.
func ValidCallsCursor(after string) bool { return cursorPattern.MatchString(after) }

// indexCall writes rec into the recent-calls index of each party, when
// the call has ended, through the committer (queued after the record).
func (s *System) indexCall(ctx context.Context, rec *actorpb.CallRecord) {
	for _, p := range callParties(rec) {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&actorpb.CallIndexEntry{Call: rec.Id, Role: p.role, Record: rec})
		if err == nil {
			_, err = s.commits.put(ctx, nil, persistence.Write{Key: userCallKey(rec.Account, p.user, rec.StartedAt.AsTime(), rec.Id), Value: b, Expect: persistence.AnyVersion})
		}
		if err != nil {
			s.log.Warn("indexing a call failed", "account", rec.Account, "call_id", rec.Id, "user", p.user, "err", err)
		}
	}
}

// UserCall is one entry of a user's recent calls.
type UserCall struct {
	Role   string
	Record *actorpb.CallRecord
	// Cursor is what ListUserCalls takes as after to go on past it.
	Cursor string
}

// ErrBadCursor is returned for an after that ListUserCalls did not give.
var ErrBadCursor = errors.New("actors: bad cursor")

// ListUserCalls returns up to limit of user's ended calls in account,
// newest first, started at or after since (zero: any), after the cursor
// after ("" for the start). It reads one page of the user's index: work
// bounded by limit, not by the account's calls. Calls that ended on this
// node are in it: it first waits for the entries queued here.
func (s *System) ListUserCalls(ctx context.Context, account, user string, since time.Time, after string, limit int) ([]UserCall, error) {
	if after != "" && !ValidCallsCursor(after) {
		return nil, ErrBadCursor
	}
	if err := s.commits.sync(ctx); err != nil {
		return nil, err
	}
	prefix := userCallsPrefix(account, user)
	items, err := s.cfg.Store.Scan(ctx, prefix, scanFrom(prefix, after), limit)
	if err != nil {
		return nil, err
	}
	out := make([]UserCall, 0, len(items))
	for _, it := range items {
		var e actorpb.CallIndexEntry
		if err := proto.Unmarshal(it.Value, &e); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", it.Key, err)
		}
		if !since.IsZero() && e.Record.GetStartedAt().AsTime().Before(since) {
			break // newest first: the rest are older still
		}
		out = append(out, UserCall{Role: e.Role, Record: e.Record, Cursor: it.Key[len(prefix):]})
	}
	return out, nil
}
