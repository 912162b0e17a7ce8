package actors

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/callcontext"
	"github.com/switchboard-pbx/switchboard/placement"
)

// KindCallContext is a call's cached context (identity: the call id): the
// call's record or live state plus the apps' supplements (issue 11).
const KindCallContext = placement.KindCallContext

func callContextKey(call string) string { return "cctx/" + call }

// callContext is the behavior of the callcontext kind. It loads the apps'
// supplements from the store and the call from its live call actor (asked
// only if active: reading a context never activates a call, so it never
// counts as call load) or else from the call record in the store. While
// the call is live each request asks the call actor again for its state;
// the call actor never asks a context, so there is no request cycle.
//
// It stays cached while its call is live and for Config.ContextHotLease
// after the call ended (then idle passivation applies), unless the node's
// memory budget (Config.ContextCacheBytes) evicts it first, least recently
// used first. Every write goes to the store before the reply.
type callContext struct {
	sys  *System
	id   string
	act  *Activation
	call *actorpb.CallRecord // nil: no such call (yet)
	live bool
	rec  *actorpb.CallContextRecord
	ver  uint64 // the record's store version; 0: not stored
	// fresh: loaded for the current message (a miss, not a hit).
	fresh bool
}

// bind gives the behavior its activation (for the memory budget).
func (c *callContext) bind(act *Activation) { c.act = act }

func (c *callContext) load(ctx context.Context) error {
	c.call, c.live, c.rec, c.ver = nil, false, nil, 0
	cur, err := loadOne[*actorpb.CallContextRecord](ctx, c.sys.cfg.Store, callContextKey(c.id))
	if err != nil {
		return err
	}
	if cur != nil {
		c.rec, c.ver = cur.rec, cur.version
	}
	if err := c.refreshCall(ctx); err != nil {
		return err
	}
	c.sys.contexts.Miss()
	c.fresh = true
	return nil
}

// refreshCall reads the call's state: from its call actor when that is
// active, else from the store. An ended call's record does not change, so
// it is read once.
func (c *callContext) refreshCall(ctx context.Context) error {
	if c.call != nil && !c.live {
		return nil
	}
	rec, live, err := c.sys.ReadCall(ctx, c.id)
	if err != nil {
		return err
	}
	c.live = live
	if rec != nil {
		c.call = rec
	}
	return nil
}

func (c *callContext) receive(t *turn, msg proto.Message) proto.Message {
	if c.fresh {
		c.fresh = false
	} else {
		c.sys.contexts.Hit()
	}
	var reply proto.Message
	switch m := msg.(type) {
	case *actorpb.GetContext:
		reply = c.get(t, m)
	case *actorpb.PatchContext:
		reply = c.patch(t, m)
	default:
		return errorReply(msg, invalid("", "callcontext actor does not handle %T", msg))
	}
	if c.call == nil && c.rec == nil {
		t.stop = true // nothing to cache
	} else {
		c.account()
	}
	return reply
}

// account reports the context's size to the node's budget and evicts
// what the budget names.
func (c *callContext) account() {
	size := int64(proto.Size(c.call) + proto.Size(c.rec))
	for _, ev := range c.sys.contexts.Touch(c.id, size, c.act) {
		if act, ok := ev.Owner.(*Activation); ok && act != nil && act != c.act {
			c.sys.as.Root.Send(act.PID, passivate{force: true})
		}
	}
}

// passivating implements passivator: the context leaves the budget.
func (c *callContext) passivating(context.Context) { c.sys.contexts.Remove(c.id, c.act) }

// pinned keeps a context cached, idle, while its call is live and for the
// hot lease after it ended (the budget may still evict it).
func (c *callContext) pinned() bool {
	if c.live {
		return true // live implies a call (refreshCall)
	}
	end := c.call.GetEndedAt() // nil without a call
	return end != nil && c.sys.cfg.Clock.Now().Before(end.AsTime().Add(c.sys.cfg.ContextHotLease))
}

// visible tells whether an app of account, acting for user ("" for the
// whole account), may see this call. Anything else is "not found", so
// that another tenant's call ids cannot be probed.
func (c *callContext) visible(account, user string) bool {
	if c.call == nil || c.call.Account != account {
		return false
	}
	if user == "" {
		return true
	}
	for _, p := range callParties(c.call) {
		if p.user == user {
			return true
		}
	}
	return false
}

// refresh reads the call again and checks that the app may see it.
func (c *callContext) refresh(t *turn, account, user string) *actorpb.Error {
	if err := c.refreshCall(t.ctx); err != nil {
		return unavailable("reading call %s failed; retry: %v", c.id, err)
	}
	if !c.visible(account, user) {
		return notFound("call", "call %q not found", c.id)
	}
	return nil
}

func (c *callContext) get(t *turn, m *actorpb.GetContext) proto.Message {
	if e := c.refresh(t, m.Account, m.User); e != nil {
		return &actorpb.ContextReply{Error: e}
	}
	return c.viewReply(nil, nil)
}

func (c *callContext) viewReply(changed, removed []string) proto.Message {
	b, err := json.Marshal(c.view())
	if err != nil {
		return &actorpb.ContextReply{Error: unavailable("encoding context: %v", err)}
	}
	return &actorpb.ContextReply{View: b, Version: c.rec.GetVersion(), Changed: changed, Removed: removed}
}

func (c *callContext) view() callcontext.View {
	apps := make(map[string]callcontext.Namespace, len(c.rec.GetApps()))
	for name, ns := range c.rec.GetApps() {
		apps[name] = callcontext.Namespace{Doc: ns.Doc, Writer: callcontext.Writer{
			App: name, User: ns.User, At: ns.At.AsTime(), Version: ns.Version}}
	}
	return callcontext.Assemble(CallJSON(c.call), c.live, apps, c.rec.GetVersion())
}

func (c *callContext) patch(t *turn, m *actorpb.PatchContext) proto.Message {
	if e := c.refresh(t, m.Account, m.User); e != nil {
		return &actorpb.ContextReply{Error: e}
	}
	if !ValidID(m.App) {
		return &actorpb.ContextReply{Error: invalid("app", "app name %q is not valid", m.App)}
	}
	version := c.rec.GetVersion()
	if m.IfMatch != nil && *m.IfMatch != version {
		return &actorpb.ContextReply{Refusal: actorpb.ContextRefusal_CONTEXT_REFUSAL_STALE, Version: version,
			Error: conflict("If-Match", "the context is at version %d, not %d: read it again (GET), then retry", version, *m.IfMatch)}
	}
	var doc []byte
	if ns := c.rec.GetApps()[m.App]; ns != nil {
		doc = ns.Doc
	}
	res, err := callcontext.Merge(doc, m.Patch, c.sys.cfg.ContextLimits)
	if err != nil {
		var ce *callcontext.Error
		if !errors.As(err, &ce) {
			return &actorpb.ContextReply{Error: unavailable("merging: %v", err)}
		}
		field := "body"
		if ce.Field != "" {
			field = "body" + ce.Field
		}
		r := &actorpb.ContextReply{Error: invalid(field, "%s", ce.Msg)}
		if errors.Is(err, callcontext.ErrTooLarge) {
			r.Refusal = actorpb.ContextRefusal_CONTEXT_REFUSAL_TOO_LARGE
		}
		return r
	}
	if len(res.Changed) == 0 && len(res.Removed) == 0 && c.rec.GetApps()[m.App] != nil {
		return c.viewReply(nil, nil) // nothing changed: no write, no event
	}
	if len(c.rec.GetApps()) >= maxAppsPerCall && c.rec.GetApps()[m.App] == nil {
		return &actorpb.ContextReply{Error: invalid("app", "a call holds at most %d apps' data", maxAppsPerCall)}
	}
	now := c.sys.cfg.Clock.Now()
	next := &actorpb.CallContextRecord{Call: c.id, Account: c.call.Account, Version: version + 1,
		Apps: maps.Clone(c.rec.GetApps())}
	if next.Apps == nil {
		next.Apps = map[string]*actorpb.AppNamespace{}
	}
	next.Apps[m.App] = &actorpb.AppNamespace{Doc: res.Doc, User: m.User, At: timestamppb.New(now), Version: next.Version}
	v, err := putRecord(t.ctx, c.sys.cfg.Store, callContextKey(c.id), next, c.ver) // 0: MustNotExist
	if err != nil {
		return &actorpb.ContextReply{Error: storeFailed(t, err, "context of call "+c.id)}
	}
	c.rec, c.ver = next, v
	c.sys.callEvent(t.ctx, c.call, "context.changed", func(role string) any {
		return callcontext.Changed{Call: c.id, App: m.App, User: m.User, Changed: nonNil(res.Changed),
			Removed: nonNil(res.Removed), Version: next.Version, At: now}
	})
	return c.viewReply(res.Changed, res.Removed)
}

// maxAppsPerCall bounds the namespaces on one call, so that a context's
// size is bounded too (at most this many times the per-app limit).
const maxAppsPerCall = 16

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (c *callContext) debug(context.Context) proto.Message {
	if c.rec == nil {
		return &actorpb.CallContextRecord{Call: c.id}
	}
	return c.rec
}

// requestIfActive sends msg to (kind, identity) only if it has a live
// activation (cluster-wide), without activating it; active is false when
// there was none.
func (s *System) requestIfActive(ctx context.Context, kind, identity string, msg proto.Message) (reply proto.Message, active bool, err error) {
	act, ok := s.lookup.Peek(kind, identity)
	if !ok {
		return nil, false, nil
	}
	timeout := s.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		// Half of what is left: an activation on a node that just died
		// does not answer, and the caller still has time to read the
		// store instead.
		timeout = min(timeout, time.Until(dl)/2)
	}
	if timeout <= 0 {
		return nil, false, context.DeadlineExceeded
	}
	res, err := s.as.Root.RequestFuture(act.PID, msg, timeout).Result()
	if err != nil {
		// Stopped meanwhile (dead letter) or did not answer: not live.
		s.lookup.Invalidate(act)
		return nil, false, nil
	}
	rep, ok := res.(proto.Message)
	return rep, ok, nil
}

// ContextStats returns the node's context cache figures (the memory
// budget's), for /debug/actors.
func (s *System) ContextStats() callcontext.Stats { return s.contexts.Stats() }

// CallJSON is a call as the HTTP API, the contexts and the call events
// show it.
func CallJSON(c *actorpb.CallRecord) map[string]any {
	if c == nil {
		return map[string]any{}
	}
	out := map[string]any{
		"id": c.Id, "account": c.Account, "caller": c.Caller, "callee": c.Callee, "group": c.Group,
		"pool": c.Pool, "node": c.Node, "state": c.State, "started_at": tsJSON(c.StartedAt),
	}
	if c.EndedAt != nil {
		out["ended_at"], out["duration_ms"], out["disposition"] = tsJSON(c.EndedAt), c.DurationMs, c.Disposition
	}
	// What the SIP edge records, when it handled the call.
	for k, v := range map[string]string{"edge_node": c.EdgeNode, "route": c.Route, "target": c.Target, "ended_by": c.EndedBy} {
		if v != "" {
			out[k] = v
		}
	}
	if c.AnsweredAt != nil {
		out["answered_at"] = tsJSON(c.AnsweredAt)
	}
	if c.Status != 0 {
		out["status"] = c.Status
	}
	return out
}

func tsJSON(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime()
	return &v
}

// registerContextMetrics exposes the context budget's figures.
func registerContextMetrics(reg prometheus.Registerer, b *callcontext.Budget) error {
	gauge := func(name, help string, f func(callcontext.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(b.Stats()) })
	}
	counter := func(name, help string, f func(callcontext.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(b.Stats()) })
	}
	return register(reg,
		gauge("switchboard_context_cached", "Call contexts cached on this node.", func(s callcontext.Stats) float64 { return float64(s.Contexts) }),
		gauge("switchboard_context_bytes", "Bytes the cached call contexts are accounted (payload plus a fixed overhead each).", func(s callcontext.Stats) float64 { return float64(s.Bytes) }),
		gauge("switchboard_context_budget_bytes", "This node's memory budget for call contexts (--context-cache-mb).", func(s callcontext.Stats) float64 { return float64(s.LimitBytes) }),
		gauge("switchboard_context_hit_ratio", "Context requests served from memory over all context requests.", func(s callcontext.Stats) float64 { return s.HitRatio }),
		counter("switchboard_context_hits_total", "Context requests served from a cached context.", func(s callcontext.Stats) float64 { return float64(s.Hits) }),
		counter("switchboard_context_misses_total", "Context requests that loaded the context from the store.", func(s callcontext.Stats) float64 { return float64(s.Misses) }),
		counter("switchboard_context_evictions_total", "Contexts evicted to stay within the memory budget.", func(s callcontext.Stats) float64 { return float64(s.Evictions) }),
	)
}
