package actors

import (
	"cmp"
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
// end, then its call record. The record is written from the start (state
// active), again at answer and at end, each time through the node's
// committer (committer.go): the call replies without waiting for the
// sync, the record is durable within Config.RecordFlushInterval plus a
// commit or two, each write by compare-and-set on the version the
// previous one wrote. The activation does not stop while its writes are
// pending, so that it stays the record's only writer and the one that
// answers for it. Calls never migrate: the activation that
// started the call carries it (live) until it ends, and does not passivate
// meanwhile. Any other activation of the identity (a read, a late BYE, a
// sweep after its process died) works from the stored record and stops
// after each message, so that only live calls count as call load.
type call struct {
	sys *System
	id  string
	act *Activation
	rec *actorpb.CallRecord // nil: no such call (yet)
	// version is the stored version the record was loaded at (0: none);
	// ck carries the writes since (the committer chains their versions).
	version uint64
	ck      *commitKey
	// live: this activation started the call and carries it (active).
	live bool
	// holdUntil ends a test call started with hold_ms (zero: none).
	holdUntil time.Time
}

// bind gives the behavior its activation (live calls are counted on it).
func (c *call) bind(act *Activation) { c.act = act }

func (c *call) load(ctx context.Context) error {
	c.rec, c.version = nil, 0
	// Writes of an earlier activation still pending here are taken over.
	c.ck = c.sys.commits.lookup(callKey(c.id))
	rec, pending, err := c.sys.pendingCall(c.id)
	if err != nil {
		return err
	}
	if pending {
		c.rec = rec
	} else {
		cur, err := loadOne[*actorpb.CallRecord](ctx, c.sys.cfg.Store, callKey(c.id))
		if err != nil {
			return err
		}
		if cur != nil {
			c.rec, c.version = cur.rec, cur.version
		}
	}
	// A reload (after a lost write) keeps a live call live while its
	// record still says this process carries it.
	c.setLive(c.live && IsCallActive(c.rec) && c.rec.GetNodeId() == c.sys.NodeID())
	return nil
}

func (c *call) receive(t *turn, msg proto.Message) proto.Message {
	if err := c.sys.commits.failed(c.ck); err != nil {
		// Another process wrote the record: carry on from what it wrote.
		c.ck = nil
		if err := c.load(t.ctx); err != nil {
			t.reload = true
			return errorReply(msg, unavailable("call %s could not be reloaded; retry: %v", c.id, err))
		}
	}
	reply := c.handle(t, msg)
	// Nothing to carry once the record is in the store: stop, or, while
	// its writes are pending, once they are durable (the committer's wake
	// is a CallDeadline, which an ended call answers by stopping).
	if !c.live && !c.sys.commits.busy(c.ck, c.wake) {
		t.stop = true
	}
	return reply
}

// wake tells the activation that its writes are durable.
func (c *call) wake() { c.sys.notify(KindCall, c.id, &actorpb.CallDeadline{}) }

func (c *call) handle(t *turn, msg proto.Message) proto.Message {
	switch msg.(type) {
	case *actorpb.GetCall, *actorpb.AnswerCall, *actorpb.RefreshCall, *actorpb.EndCall, *actorpb.InterruptCall:
		if c.rec == nil {
			return &actorpb.CallReply{Error: notFound("call", "call %q not found", c.id)}
		}
		if _, get := msg.(*actorpb.GetCall); !get && !IsCallActive(c.rec) {
			return &actorpb.CallReply{Call: c.rec, Error: conflict("call", "call %q has already ended", c.id)}
		}
	}
	switch m := msg.(type) {
	case *actorpb.StartCall:
		return c.start(t, m)
	case *actorpb.AnswerCall:
		return c.answer(t, m)
	case *actorpb.RefreshCall:
		return c.refresh(m)
	case *actorpb.EndCall:
		return c.end(t, m)
	case *actorpb.CallDeadline:
		c.deadline(t)
		return nil
	case *actorpb.InterruptCall:
		return c.interrupt(t, m)
	case *actorpb.GetCall:
		return &actorpb.CallReply{Call: c.rec}
	}
	return errorReply(msg, invalid("", "call actor does not handle %T", msg))
}

// start writes the new call's record (state active) after its entry in
// the index of this process's active calls, so that a crash leaves no
// active record that a sweep cannot find.
func (c *call) start(t *turn, m *actorpb.StartCall) proto.Message {
	if c.rec != nil {
		return c.durable(t, m, &actorpb.CallReply{Call: c.rec}) // a retried start: the call exists
	}
	if c.sys.shuttingDown.Load() {
		return &actorpb.CallReply{Error: unavailable("node %s is shutting down; place the call elsewhere", c.sys.cfg.Node)}
	}
	rec := proto.Clone(m.GetCall()).(*actorpb.CallRecord)
	now := c.sys.cfg.Clock.Now()
	rec.Id, rec.State, rec.Node, rec.NodeId = c.id, string(CallActive), c.sys.cfg.Node, c.sys.NodeID()
	rec.StartedAt, rec.ExpiresAt = timestamppb.New(now), nil
	if end := c.maxEnd(rec); !end.IsZero() {
		rec.ExpiresAt = timestamppb.New(end)
	}
	if err := c.sys.indexLiveCall(t.ctx, rec); err != nil {
		return &actorpb.CallReply{Error: unavailable("recording call %s failed; retry: %v", c.id, err)}
	}
	if err := c.save(t, rec); err != nil {
		c.sys.unindexLiveCall(t.ctx, rec)
		return &actorpb.CallReply{Error: err}
	}
	c.setLive(true)
	if m.HoldMs > 0 {
		c.holdUntil = now.Add(time.Duration(m.HoldMs) * time.Millisecond)
	}
	c.arm()
	c.sys.callStarted(t.ctx, c.rec)
	return c.durable(t, m, &actorpb.CallReply{Call: c.rec})
}

// durable returns rep once the call's record is in the store when m asks
// for it (StartCall.durable), else at once.
func (c *call) durable(t *turn, m *actorpb.StartCall, rep *actorpb.CallReply) proto.Message {
	if m.Durable {
		if err := c.sys.commits.sync(t.ctx); err != nil {
			return &actorpb.CallReply{Error: unavailable("storing call %s: %v; retry", c.id, err)}
		}
	}
	return rep
}

// maxEnd is when rec reaches the maximum call length (zero: no limit).
func (c *call) maxEnd(rec *actorpb.CallRecord) time.Time {
	if c.sys.cfg.MaxCallDuration <= 0 {
		return time.Time{}
	}
	return rec.StartedAt.AsTime().Add(c.sys.cfg.MaxCallDuration)
}

// expiry is when the call expires if its session lasts se from now: the
// earlier of that and its maximum length.
func (c *call) expiry(se time.Duration) *timestamppb.Timestamp {
	at := c.sys.cfg.Clock.Now().Add(se)
	if end := c.maxEnd(c.rec); !end.IsZero() && end.Before(at) {
		at = end
	}
	return timestamppb.New(at)
}

// arm sets the call's next deadline on the node's timers.
func (c *call) arm() {
	var at time.Time
	if c.live {
		at = c.holdUntil
		if e := c.rec.GetExpiresAt(); e != nil && (at.IsZero() || e.AsTime().Before(at)) {
			at = e.AsTime()
		}
	}
	c.sys.timers.set(c.id, at)
}

// answer marks the call answered: answered_at is the first answer's time
// (a retransmitted 2xx does not move it), target the address that
// answered, when given; a session interval starts the session timer.
func (c *call) answer(t *turn, m *actorpb.AnswerCall) proto.Message {
	if m.SessionExpiresMs < 0 {
		return &actorpb.CallReply{Error: invalid("session_expires_ms", "session_expires_ms must not be negative, not %d", m.SessionExpiresMs)}
	}
	rec := proto.Clone(c.rec).(*actorpb.CallRecord)
	first := rec.AnsweredAt == nil
	if first {
		rec.AnsweredAt = timestamppb.New(c.sys.cfg.Clock.Now())
	}
	if m.Target != "" {
		rec.Target = m.Target
	}
	if first && m.Dialog != nil {
		rec.Dialog = m.Dialog
	}
	if !first && rec.Target == c.rec.Target {
		// A retransmitted 2xx: its session interval, if any, refreshes.
		if m.SessionExpiresMs > 0 {
			return c.refresh(&actorpb.RefreshCall{SessionExpiresMs: m.SessionExpiresMs})
		}
		return &actorpb.CallReply{Call: c.rec}
	}
	if m.SessionExpiresMs > 0 {
		rec.ExpiresAt = c.expiry(time.Duration(m.SessionExpiresMs) * time.Millisecond)
	}
	if err := c.save(t, rec); err != nil {
		return &actorpb.CallReply{Error: err}
	}
	c.arm()
	if first {
		c.sys.callChanged(t.ctx, c.rec, "call.answered")
	}
	return &actorpb.CallReply{Call: c.rec}
}

// refresh renews the session of a live call. It is not written to the
// store (a refresh may come every 45 s): the stored expires_at is the one
// of the last write, the live call's actor has the current one.
func (c *call) refresh(m *actorpb.RefreshCall) proto.Message {
	if m.SessionExpiresMs <= 0 {
		return &actorpb.CallReply{Error: invalid("session_expires_ms", "session_expires_ms must be above 0, not %d", m.SessionExpiresMs)}
	}
	if !c.live {
		return &actorpb.CallReply{Call: c.rec, Error: conflict("call", "call %q is not carried by a live node; it cannot be refreshed", c.id)}
	}
	rec := proto.Clone(c.rec).(*actorpb.CallRecord)
	rec.ExpiresAt = c.expiry(time.Duration(m.SessionExpiresMs) * time.Millisecond)
	c.rec = rec
	c.arm()
	return &actorpb.CallReply{Call: c.rec}
}

// deadline ends the call if its hold, its session or its maximum length
// ran out; the system tells the edge to hang up an expired call.
func (c *call) deadline(t *turn) {
	if !c.live || !IsCallActive(c.rec) {
		return
	}
	now := c.sys.cfg.Clock.Now()
	var rep proto.Message
	switch {
	case !c.holdUntil.IsZero() && !now.Before(c.holdUntil):
		rep = c.finish(t, &actorpb.EndCall{Disposition: string(DispositionCompleted)})
	case c.rec.ExpiresAt != nil && !now.Before(c.rec.ExpiresAt.AsTime()):
		rep = c.finish(t, &actorpb.EndCall{Disposition: string(DispositionExpired), EndedBy: "expiry", Status: c.finalStatus()})
		if r, ok := rep.(*actorpb.CallReply); ok && r.Error == nil {
			c.sys.hangUp(r.Call)
		}
	default:
		c.arm() // refreshed meanwhile
		return
	}
	if r, ok := rep.(*actorpb.CallReply); ok && r.Error != nil {
		c.sys.log.Warn("ending a call at its deadline failed; trying again", "call_id", c.id, "err", r.Error.Message)
		c.sys.timers.set(c.id, now.Add(deadlineRetry))
	}
}

// deadlineRetry is how soon a call whose end at its deadline failed (the
// store did not answer) tries again.
const deadlineRetry = 5 * time.Second

// finalStatus is the status the caller got: 200 once answered, else none.
func (c *call) finalStatus() uint32 {
	if c.rec.GetAnsweredAt() != nil {
		return 200
	}
	return 0
}

// interrupt ends an active call whose process is gone (the sweep of a
// survivor, from the stored record) or is shutting down (its own live
// activation, at the end of a drain).
func (c *call) interrupt(t *turn, m *actorpb.InterruptCall) proto.Message {
	if c.rec.NodeId != m.NodeId {
		return &actorpb.CallReply{Call: c.rec, Error: conflict("node_id", "call %q is carried by process %s, not %s", c.id, c.rec.NodeId, m.NodeId)}
	}
	live := c.live
	if live && !c.sys.shuttingDown.Load() {
		return &actorpb.CallReply{Call: c.rec, Error: conflict("node_id", "call %q is carried by a live node", c.id)}
	}
	if !live && carriedOn(c.rec) && !c.sys.shuttingDown.Load() {
		return c.adopt(t)
	}
	rep := c.finish(t, &actorpb.EndCall{Disposition: string(DispositionInterrupted), EndedBy: "node", Status: c.finalStatus()})
	if r, ok := rep.(*actorpb.CallReply); ok && r.Error == nil && live {
		c.sys.hangUp(r.Call)
	}
	return rep
}

// carriedOn says whether an answered call goes on without the process
// that carried it: its dialog (stored with the answer) runs between the
// parties' edges, and the node that hosted the call was not the caller's
// edge (the node a callee's flow is on is not recorded; if that one died,
// the call still ends at its expiry).
func carriedOn(rec *actorpb.CallRecord) bool {
	return rec.GetAnsweredAt() != nil && rec.GetDialog() != nil && rec.GetEdgeNode() != "" && rec.GetEdgeNode() != rec.GetNode()
}

// adopt makes this activation carry a call whose process is gone but
// whose dialog goes on (carriedOn): its record names this process and
// node, it counts here, and its expiry (session, maximum length) runs
// here, so that a BYE completes it, and a call whose parties vanished
// still ends, expired, with a BYE to each.
func (c *call) adopt(t *turn) proto.Message {
	old := c.rec
	rec := proto.Clone(c.rec).(*actorpb.CallRecord)
	rec.NodeId, rec.Node = c.sys.NodeID(), c.sys.cfg.Node
	if err := c.sys.indexLiveCall(t.ctx, rec); err != nil {
		return &actorpb.CallReply{Error: unavailable("adopting call %s failed; retry: %v", c.id, err)}
	}
	if err := c.save(t, rec); err != nil {
		c.sys.unindexLiveCall(t.ctx, rec)
		return &actorpb.CallReply{Error: err}
	}
	c.sys.unindexLiveCall(t.ctx, old)
	c.setLive(true)
	c.arm()
	c.sys.log.Info("adopted a call whose process is gone; its dialog goes on", "call_id", c.id, "process", old.NodeId, "node", old.Node)
	return &actorpb.CallReply{Call: c.rec}
}

// end ends the call as its signalling says (EndCall).
func (c *call) end(t *turn, m *actorpb.EndCall) proto.Message {
	if !slices.Contains(endedBy, m.EndedBy) {
		return &actorpb.CallReply{Error: invalid("ended_by", "ended_by must be one of caller, callee, cancel, failure, timeout, expiry or node, not %q", m.EndedBy)}
	}
	return c.finish(t, m)
}

// finish writes the call record. Its duration_ms is the talk time, ended_at
// minus answered_at, for an answered call, and the time from started_at
// to ended_at (ringing, failure) for one never answered. The entry in the
// index of its process's active calls goes after the record.
func (c *call) finish(t *turn, m *actorpb.EndCall) proto.Message {
	rec := proto.Clone(c.rec).(*actorpb.CallRecord)
	now := c.sys.cfg.Clock.Now()
	rec.State, rec.EndedAt, rec.Disposition = string(CallEnded), timestamppb.New(now), m.Disposition
	rec.Status, rec.EndedBy, rec.ExpiresAt = m.Status, m.EndedBy, nil
	if m.EndedBy == "" && m.ByeFrom != "" {
		rec.EndedBy = "callee"
		if m.ByeFrom == rec.Caller {
			rec.EndedBy = "caller"
		}
	}
	if m.Target != "" {
		rec.Target = m.Target
	}
	rec.DurationMs = now.Sub(cmp.Or(rec.AnsweredAt, rec.StartedAt).AsTime()).Milliseconds()
	if err := c.save(t, rec); err != nil {
		return &actorpb.CallReply{Error: err}
	}
	c.setLive(false)
	c.sys.timers.set(c.id, time.Time{})
	c.sys.unindexLiveCall(t.ctx, c.rec)
	c.sys.indexCall(t.ctx, c.rec)
	c.sys.callChanged(t.ctx, c.rec, "call.ended")
	return &actorpb.CallReply{Call: c.rec}
}

// setLive marks whether this activation carries the call, and counts it.
func (c *call) setLive(live bool) {
	c.live = live
	if c.act != nil {
		c.sys.setLiveCall(c.act, live)
	}
}

// pinned keeps a live call from passivating while idle (a call with no
// re-INVITE can be silent for hours; its timers live here), and any call
// while its writes are pending.
func (c *call) pinned() bool { return c.live || c.sys.commits.busy(c.ck, nil) }

func (c *call) save(t *turn, rec *actorpb.CallRecord) *actorpb.Error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return unavailable("encoding call: %v", err)
	}
	// c.version 0 is persistence.MustNotExist: the first write creates it.
	ck, err := c.sys.commits.put(t.ctx, c.ck, persistence.Write{Key: callKey(c.id), Value: b, Expect: c.version})
	if err != nil {
		return storeFailed(t, err, "call "+c.id)
	}
	c.rec, c.ck = rec, ck
	return nil
}

func (c *call) debug(context.Context) proto.Message {
	if c.rec == nil {
		return &actorpb.CallRecord{Id: c.id}
	}
	return c.rec
}
