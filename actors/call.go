package actors

import (
	"context"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

func callKey(id string) string { return "call/" + id }

// call is the behavior of the call kind: one call (dialog) from start to
// end, then its call record. Calls never migrate: the activation lives
// where tier 2 placed it until the call ends, and then passivates.
type call struct {
	sys     *System
	id      string
	rec     *actorpb.CallRecord // nil before StartCall
	version uint64
	timer   *time.Timer
	// atEnd: the call is written once, when it ends (StartCall.record_at_end).
	atEnd bool
}

func newCall(sys *System, id string) *call { return &call{sys: sys, id: id} }

func (c *call) load(ctx context.Context) error {
	c.rec, c.version = nil, 0
	cur, err := loadOne[*actorpb.CallRecord](ctx, c.sys.cfg.Store, callKey(c.id))
	if err != nil || cur == nil {
		return err
	}
	c.rec, c.version = cur.rec, cur.version
	return nil
}

func (c *call) receive(t *turn, msg proto.Message) proto.Message {
	switch m := msg.(type) {
	case *actorpb.StartCall:
		if c.rec != nil {
			return &actorpb.CallReply{Call: c.rec} // a retried start: the call exists
		}
		rec := proto.Clone(m.GetCall()).(*actorpb.CallRecord)
		rec.Id, rec.State, rec.Node = c.id, "active", c.sys.cfg.Node
		rec.StartedAt = timestamppb.New(c.sys.cfg.Clock.Now())
		c.atEnd = m.RecordAtEnd
		if err := c.save(t, rec); err != nil {
			return &actorpb.CallReply{Error: err}
		}
		c.sys.callStarted(t.ctx, c.rec)
		if m.HoldMs > 0 {
			// Through notify, so that the lookup counts the message as
			// pending like any other.
			sys, id := c.sys, c.id
			c.timer = time.AfterFunc(time.Duration(m.HoldMs)*time.Millisecond, func() {
				sys.notify(KindCall, id, &actorpb.EndCall{Disposition: "completed"})
			})
		}
		return &actorpb.CallReply{Call: c.rec}
	case *actorpb.AnswerCall:
		return c.answer(t, m)
	case *actorpb.EndCall:
		return c.end(t, m)
	case *actorpb.GetCall:
		if c.rec == nil {
			return &actorpb.CallReply{Error: notFound("call", "call %q not found", c.id)}
		}
		return &actorpb.CallReply{Call: c.rec}
	}
	return errorReply(msg, invalid("", "call actor does not handle %T", msg))
}

// answer marks the call answered: answered_at is the first answer's time
// (a retransmitted 2xx does not move it), target the address that
// answered, when given.
func (c *call) answer(t *turn, m *actorpb.AnswerCall) proto.Message {
	if c.rec == nil || c.rec.State != "active" {
		return &actorpb.CallReply{Call: c.rec, Error: conflictOrMissing(c.rec, c.id)}
	}
	rec := proto.Clone(c.rec).(*actorpb.CallRecord)
	if rec.AnsweredAt == nil {
		rec.AnsweredAt = timestamppb.New(c.sys.cfg.Clock.Now())
	}
	if m.Target != "" {
		rec.Target = m.Target
	}
	if proto.Equal(rec, c.rec) {
		return &actorpb.CallReply{Call: c.rec}
	}
	first := c.rec.AnsweredAt == nil
	if err := c.save(t, rec); err != nil {
		return &actorpb.CallReply{Error: err}
	}
	if first {
		c.sys.callChanged(t.ctx, c.rec, "call.answered")
	}
	return &actorpb.CallReply{Call: c.rec}
}

// endedBy lists the values EndCall.ended_by may take ("" when unknown).
var endedBy = []string{"", "caller", "callee", "cancel", "failure", "timeout"}

// end writes the call record. Its duration_ms is the talk time, ended_at
// minus answered_at, for an answered call, and the time from started_at
// to ended_at (ringing, failure) for one never answered.
func (c *call) end(t *turn, m *actorpb.EndCall) proto.Message {
	if c.rec == nil || c.rec.State != "active" {
		return &actorpb.CallReply{Call: c.rec, Error: conflictOrMissing(c.rec, c.id)}
	}
	if !slices.Contains(endedBy, m.EndedBy) {
		return &actorpb.CallReply{Error: invalid("ended_by", "ended_by must be one of caller, callee, cancel, failure or timeout, not %q", m.EndedBy)}
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	rec := proto.Clone(c.rec).(*actorpb.CallRecord)
	now := c.sys.cfg.Clock.Now()
	rec.State, rec.EndedAt, rec.Disposition = "ended", timestamppb.New(now), m.Disposition
	rec.Status, rec.EndedBy = m.Status, m.EndedBy
	if m.EndedBy == "" && m.ByeFrom != "" {
		rec.EndedBy = "callee"
		if m.ByeFrom == rec.Caller {
			rec.EndedBy = "caller"
		}
	}
	if m.Target != "" {
		rec.Target = m.Target
	}
	from := rec.StartedAt
	if rec.AnsweredAt != nil {
		from = rec.AnsweredAt
	}
	rec.DurationMs = now.Sub(from.AsTime()).Milliseconds()
	if err := c.save(t, rec); err != nil {
		return &actorpb.CallReply{Error: err}
	}
	c.sys.indexCall(t.ctx, c.rec)
	c.sys.callChanged(t.ctx, c.rec, "call.ended")
	t.stop = true // the record is written; the activation is done
	return &actorpb.CallReply{Call: c.rec}
}

// pinned keeps an active call that is written only when it ends from
// passivating while idle (a call with no re-INVITE can be silent for
// hours).
func (c *call) pinned() bool { return c.atEnd && c.rec != nil && c.rec.State == "active" }

func conflictOrMissing(rec *actorpb.CallRecord, id string) *actorpb.Error {
	if rec == nil {
		return notFound("call", "call %q not found", id)
	}
	return conflict("call", "call %q has already ended", id)
}

func (c *call) save(t *turn, rec *actorpb.CallRecord) *actorpb.Error {
	if c.atEnd && rec.State == "active" {
		c.rec = rec // written when the call ends
		return nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return unavailable("encoding call: %v", err)
	}
	expect := c.version
	if expect == 0 {
		expect = persistence.MustNotExist
	}
	v, err := c.sys.cfg.Store.Put(t.ctx, callKey(c.id), b, expect)
	if err != nil {
		return storeFailed(t, err, "call "+c.id)
	}
	c.rec, c.version = rec, v
	return nil
}

func (c *call) debug() proto.Message {
	if c.rec == nil {
		return &actorpb.CallRecord{Id: c.id}
	}
	return c.rec
}
