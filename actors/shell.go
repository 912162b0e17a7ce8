package actors

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

// behavior is what a kind does; the shell carries it out. A behavior is
// used by one goroutine at a time (the actor's), so it needs no locks.
type behavior interface {
	// load reads the actor's state from its source. The shell calls it
	// before the first message and again after a failure left the state
	// in doubt. An error makes the shell answer CODE_UNAVAILABLE and try
	// again on the next message.
	load(ctx context.Context) error
	// receive handles one message and returns the reply, or nil for a
	// one-way message. It sets t.stop to passivate after replying.
	receive(t *turn, msg proto.Message) proto.Message
	// debug returns the state with secrets redacted, for the debug endpoint
	// (ctx bounds what it reads from the store).
	debug(ctx context.Context) proto.Message
}

// pinner is a behavior that may refuse idle passivation: one whose
// state is not in the store yet (a call that is written when it ends).
type pinner interface {
	pinned() bool
}

// passivator is a behavior that keeps some state in memory only for a
// while (bounded writes: a fraud supervisor's histories) and stores it
// when its activation stops.
type passivator interface {
	passivating(ctx context.Context)
}

// turn is one message's handling: its context and what the behavior asks
// the shell to do afterwards.
type turn struct {
	ctx context.Context
	// stop asks the shell to stop the activation after this message.
	stop bool
	// reload asks the shell to drop the state and load it again before the
	// next message (after a write lost to a concurrent writer).
	reload bool
	// pools are tier 1's pool figures, read at most once per turn.
	pools     []placement.PoolState
	poolsErr  error
	poolsRead bool
}

// passivate asks an activation to stop if it is still idle. It never
// crosses nodes: the reaper of the activation's own node sends it.
type passivate struct {
	// force passivates even when not idle (drain).
	force bool
}

// shell is the protoactor actor around a behavior: it loads state, counts
// pending messages, recovers panics, and passivates when idle.
// (protoactor's ReceiveTimeout is not used: its timer races with the
// mailbox under -race.)
type shell struct {
	sys    *System
	act    *Activation
	b      behavior
	loaded bool
	own    Claim // the activation's claim on its identity (fenced kinds)
}

func (s *shell) Receive(c actor.Context) {
	switch msg := c.Message().(type) {
	case *actor.Started:
		s.sys.metrics.activated(s.act.Kind)
		if h := s.sys.cfg.OnActivated; h != nil {
			h(s.act)
		}
	case passivate:
		// Sent by the reaper (a message may have arrived since it looked)
		// or by a drain.
		idle := s.sys.cfg.Clock.Now().Sub(s.act.LastMessageAt()) >= s.sys.cfg.IdleTimeout
		if p, ok := s.b.(pinner); ok && p.pinned() {
			idle = false // its state exists only here until it ends
		}
		if (idle || msg.force) && s.sys.lookup.TryRelease(s.act) {
			// Poison, not Stop: messages queued before it are handled.
			c.Poison(c.Self())
		}
	case *actor.Stopped:
		if p, ok := s.b.(passivator); ok && s.loaded && s.owns() {
			ctx, cancel := s.sys.opContext()
			p.passivating(ctx)
			cancel()
		}
		s.release()
		if s.act.LiveCall() { // stopped by force (a drain) while live
			s.sys.setLiveCall(s.act, false)
			s.sys.timers.set(s.act.Identity, time.Time{})
		}
		s.sys.metrics.passivated(s.act.Kind)
		if h := s.sys.cfg.OnStopped; h != nil {
			h(s.act)
		}
		s.sys.lookup.Stopped(s.act)
	case proto.Message:
		s.act.lastMessage.Store(s.sys.cfg.Clock.Now().UnixNano())
		reply, stop := s.handle(msg)
		if reply != nil && c.Sender() != nil {
			c.Respond(reply)
		}
		// Done before TryRelease: this message no longer counts as pending,
		// so a behavior that asks to stop (t.stop) can.
		s.sys.lookup.Done(s.act)
		if stop && s.sys.lookup.TryRelease(s.act) {
			c.Poison(c.Self())
		}
	}
}

// handle runs one message through the behavior, loading state first if
// needed, and turns a panic into an error reply and a reload.
func (s *shell) handle(msg proto.Message) (reply proto.Message, stop bool) {
	ctx, cancel := s.sys.opContext()
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			s.sys.log.Error("actor panicked; state will be reloaded",
				"kind", s.act.Kind, "id", s.act.Identity, "panic", r, "stack", string(debug.Stack()))
			s.loaded = false
			reply = errorReply(msg, unavailable("internal error in %s actor", s.act.Kind))
		}
	}()
	if s.sys.cfg.Fence != nil && fenced(s.act.Kind) {
		until, e := s.claim(ctx)
		if e != nil {
			// Stop, so that the identity is placed anew on its next message.
			return errorReply(msg, e), true
		}
		// No write of this turn may land after the claim runs out.
		var cancelClaim context.CancelFunc
		ctx, cancelClaim = context.WithTimeout(ctx, until.Sub(s.sys.cfg.Clock.Now()))
		defer cancelClaim()
	}
	if !s.loaded {
		if err := s.b.load(ctx); err != nil {
			s.sys.log.Warn("actor could not load its state", "kind", s.act.Kind, "id", s.act.Identity, "err", err)
			return errorReply(msg, unavailable("state of %s %s could not be loaded; retry", s.act.Kind, s.act.Identity)), false
		}
		s.loaded = true
	}
	if _, ok := msg.(*actorpb.DebugState); ok {
		return s.debugReply(ctx), false
	}
	t := &turn{ctx: ctx}
	reply = s.b.receive(t, msg)
	if t.reload {
		s.loaded = false
	}
	if v, ok := s.b.(vacancy); ok && s.own != nil && v.vacant() {
		t.stop = true // give the claim back: see vacancy
	}
	return reply, t.stop
}

// owns tells whether the activation may still write: it is not fenced,
// or its claim is still valid.
func (s *shell) owns() bool {
	if s.own == nil {
		return s.sys.cfg.Fence == nil || !fenced(s.act.Kind)
	}
	_, err := s.own.Check()
	return err == nil
}

func (s *shell) debugReply(ctx context.Context) proto.Message {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(s.b.debug(ctx))
	if err != nil {
		return &actorpb.DebugStateReply{Error: unavailable("encoding state: %v", err)}
	}
	return &actorpb.DebugStateReply{Json: string(js)}
}

func unavailable(format string, args ...any) *actorpb.Error {
	return &actorpb.Error{Code: actorpb.Code_CODE_UNAVAILABLE, Message: fmt.Sprintf(format, args...)}
}

func invalid(field, format string, args ...any) *actorpb.Error {
	return &actorpb.Error{Code: actorpb.Code_CODE_INVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(field, format string, args ...any) *actorpb.Error {
	return &actorpb.Error{Code: actorpb.Code_CODE_NOT_FOUND, Field: field, Message: fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) *actorpb.Error {
	return &actorpb.Error{Code: actorpb.Code_CODE_CONFLICT, Field: field, Message: fmt.Sprintf(format, args...)}
}

// errorReply builds the reply type that msg expects, carrying e.
func errorReply(msg proto.Message, e *actorpb.Error) proto.Message {
	switch msg.(type) {
	case *actorpb.PutAccount, *actorpb.GetAccount, *actorpb.DeleteAccount:
		return &actorpb.AccountReply{Error: e}
	case *actorpb.PutGroup, *actorpb.DeleteGroup, *actorpb.DescribeGroup:
		return &actorpb.GroupReply{Error: e}
	case *actorpb.ListGroups:
		return &actorpb.GroupListReply{Error: e}
	case *actorpb.PutDevice, *actorpb.GetDevice, *actorpb.DeleteDevice, *actorpb.ResetDeviceCredentials, *actorpb.DigestAnswered:
		return &actorpb.DeviceReply{Error: e}
	case *actorpb.ListDevices:
		return &actorpb.DeviceListReply{Error: e}
	case *actorpb.GetGroupView:
		return &actorpb.GroupView{Error: e}
	case *actorpb.DebugState:
		return &actorpb.DebugStateReply{Error: e}
	case *actorpb.PutPool, *actorpb.GetPools:
		return &actorpb.PoolsReply{Error: e}
	case *actorpb.StartCall, *actorpb.EndCall, *actorpb.AnswerCall, *actorpb.GetCall, *actorpb.RefreshCall, *actorpb.InterruptCall:
		return &actorpb.CallReply{Error: e}
	case *actorpb.PutTrunk, *actorpb.GetTrunk, *actorpb.DeleteTrunk:
		return &actorpb.TrunkReply{Error: e}
	case *actorpb.ListTrunks:
		return &actorpb.TrunkListReply{Error: e}
	case *actorpb.PutRoutes, *actorpb.GetRoutes:
		return &actorpb.RoutesReply{Error: e}
	case *actorpb.GetSecretEdgeView:
		return &actorpb.SecretEdgeView{Error: e}
	case *actorpb.Register, *actorpb.LookupBindings:
		return &actorpb.RegisterReply{Error: e}
	case *actorpb.PutFeatureServer, *actorpb.GetFeatureServer, *actorpb.DeleteFeatureServer:
		return &actorpb.FeatureServerReply{Error: e}
	case *actorpb.CheckMessage:
		return &actorpb.CheckReply{Error: e}
	case *actorpb.MessageDone:
		return &actorpb.MessageDoneReply{Error: e}
	case *actorpb.QueueMessage, *actorpb.DeliveredQueued:
		return &actorpb.QueueReply{Error: e}
	case *actorpb.TakeQueued:
		return &actorpb.QueuedMessages{Error: e}
	case *actorpb.PutFraudPolicy, *actorpb.GetFraudPolicy:
		return &actorpb.FraudPolicyReply{Error: e}
	case *actorpb.RestoreDevice:
		return &actorpb.RestoreReply{Error: e}
	case *actorpb.GetProvisioning:
		return &actorpb.ProvisioningReply{Error: e}
	case *actorpb.GetIncident, *actorpb.ResolveIncident:
		return &actorpb.IncidentReply{Error: e}
	case *actorpb.ListIncidents:
		return &actorpb.IncidentListReply{Error: e}
	case *actorpb.GetContext, *actorpb.PatchContext:
		return &actorpb.ContextReply{Error: e}
	}
	return nil // one-way messages get no reply
}
