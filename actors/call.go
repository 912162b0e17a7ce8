package actors

import (
	"context"
	"errors"
	"fmt"
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
}

func newCall(sys *System, id string) *call { return &call{sys: sys, id: id} }

func (c *call) load(ctx context.Context) error {
	c.rec, c.version = nil, 0
	it, err := c.sys.cfg.Store.Get(ctx, callKey(c.id))
	if errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	rec := &actorpb.CallRecord{}
	if err := proto.Unmarshal(it.Value, rec); err != nil {
		return fmt.Errorf("decoding call %s: %w", c.id, err)
	}
	c.rec, c.version = rec, it.Version
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
		if err := c.save(t, rec); err != nil {
			return &actorpb.CallReply{Error: err}
		}
		if m.HoldMs > 0 {
			self, root := t.self, c.sys.as.Root
			c.timer = time.AfterFunc(time.Duration(m.HoldMs)*time.Millisecond, func() {
				root.Send(self, &actorpb.EndCall{Disposition: "completed"})
			})
		}
		return &actorpb.CallReply{Call: c.rec}
	case *actorpb.EndCall:
		if c.rec == nil || c.rec.State != "active" {
			return &actorpb.CallReply{Call: c.rec, Error: conflictOrMissing(c.rec, c.id)}
		}
		if c.timer != nil {
			c.timer.Stop()
		}
		rec := proto.Clone(c.rec).(*actorpb.CallRecord)
		now := c.sys.cfg.Clock.Now()
		rec.State, rec.EndedAt, rec.Disposition = "ended", timestamppb.New(now), m.Disposition
		rec.DurationMs = now.Sub(rec.StartedAt.AsTime()).Milliseconds()
		if err := c.save(t, rec); err != nil {
			return &actorpb.CallReply{Error: err}
		}
		t.stop = true // the record is written; the activation is done
		return &actorpb.CallReply{Call: c.rec}
	case *actorpb.GetCall:
		if c.rec == nil {
			return &actorpb.CallReply{Error: notFound("call", "call %q not found", c.id)}
		}
		return &actorpb.CallReply{Call: c.rec}
	}
	return errorReply(msg, invalid("", "call actor does not handle %T", msg))
}

func conflictOrMissing(rec *actorpb.CallRecord, id string) *actorpb.Error {
	if rec == nil {
		return notFound("call", "call %q not found", id)
	}
	return conflict("call", "call %q has already ended", id)
}

func (c *call) save(t *turn, rec *actorpb.CallRecord) *actorpb.Error {
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
