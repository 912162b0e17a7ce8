package sipedge

import (
	"cmp"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/placement"
)

// target is one next hop of a request.
type target struct {
	uri       sip.Uri // the request-URI to send
	dest      string  // ip:port
	transport string  // udp, tcp, tls
	feature   bool    // a feature-server target: health-checked, failed over
	hop       bool    // a peer node that hosts the call
	// trusted: a configured feature server, a peer node, or the source of
	// a registered device's flow; sending to it exempts it from the flood
	// limit. Targets taken from a request (in-dialog next hops) never are.
	trusted bool
	// flow: the target is a device flow this edge holds ("tcp:ip:port").
	flow string
	// deliver: the target is a device flow a peer node holds; the request
	// goes to that node (dest), which sends it out on the flow.
	deliver string
	// q: a registered contact's preference in thousandths (1000 = 1.0).
	q int
}

// routeInitial handles an out-of-dialog request other than REGISTER from an
// authenticated caller: it picks the target by the account's routes or
// the callee's registrations, places INVITEs by tier 2 and proxies.
func (e *Edge) routeInitial(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, account string, c *caller) {
	user := req.Recipient.User
	feature := MatchRoute(c.acct.Routes, string(req.Method), user)
	callee := ""
	if feature == "" {
		if req.Method == sip.OPTIONS {
			e.respondOptions(req, tx)
			return
		}
		if user == "" {
			e.respond(req, tx, 404, "No User In Request-URI")
			return
		}
		callee = user
	}
	if req.Method == sip.MESSAGE {
		e.message(ctx, req, tx, account, c, feature, callee)
		return
	}
	if !req.IsInvite() {
		targets, rej := e.targets(ctx, account, feature, callee, req)
		if rej != nil {
			e.rejectWith(req, tx, rej)
			return
		}
		e.proxy(req, tx, targets, nil)
		return
	}
	// Toll fraud on calls is caught by the same engine as on messages.
	if rej := e.check(ctx, req, account, c, "call", nil, callee != ""); rej != nil {
		e.rejectWith(req, tx, rej)
		return
	}
	if callee != "" {
		// Fail fast on an unknown callee, before a call is placed.
		if _, rej := e.device(ctx, account, callee); rej != nil {
			e.rejectWith(req, tx, rej)
			return
		}
	}
	e.startCall(ctx, req, tx, account, c, feature, callee)
}

// startCall places the call actor by tier 2 in the caller's group's pool
// and hands the INVITE to the node that got it.
func (e *Edge) startCall(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, account string, c *caller, feature, callee string) {
	// A device's group, else its trunk's (a caller is one or the other).
	group, callerID := cmp.Or(c.device.GetGroup(), c.trunk.GetGroup()), cmp.Or(c.device.GetId(), c.user)
	pool := cmp.Or(c.acct.PoolOf(group), e.cfg.Pool)
	hint, err := e.callHint(ctx, pool)
	if err != nil {
		e.respond(req, tx, 503, "Pool Conditions Unavailable", [2]string{"Retry-After", "1"})
		return
	}
	id := CallIdentity(callID(req))
	rec := &actorpb.CallRecord{
		Account: account, Caller: callerID, Callee: callee, Group: group, Pool: pool,
		EdgeNode: e.cfg.Node, Route: feature,
	}
	if c.trunk != nil {
		rec.PlacementReason = "trunk " + c.trunk.Id
	}
	rep, err := e.cfg.Actors.RequestWithHint(ctx, actors.KindCall, id, hint, &actorpb.StartCall{Call: rec})
	if errors.Is(err, placement.ErrNoCapacity) || errors.Is(err, placement.ErrNoMembers) {
		e.respond(req, tx, 503, "No Capacity", [2]string{"Retry-After", "5"})
		return
	}
	cr, ok := rep.(*actorpb.CallReply)
	if err != nil || !ok || cr.Error != nil {
		e.log.Warn("placing a call failed", "call_id", callID(req), "err", err)
		e.respond(req, tx, 503, "Call Placement Failed", [2]string{"Retry-After", "1"})
		return
	}
	if !actors.IsCallActive(cr.Call) || cr.Call.EdgeNode != e.cfg.Node {
		e.respond(req, tx, 400, "Call-ID Already Used")
		return
	}
	host := cr.Call.Node
	// The caller's flow: requests in the dialog for the caller go out on
	// it (this edge's Record-Route entry carries it).
	up := flowKey(req.Transport(), req.Source())
	if host == e.cfg.Node {
		e.handleCall(req, tx, id, cr.Call, up)
		return
	}
	addr, ok := e.cfg.Members.SIPAddr(host)
	if !ok {
		e.endCall(id, 503, "failure", "")
		e.respond(req, tx, 503, "Call's Node Unreachable", [2]string{"Retry-After", "1"})
		return
	}
	// A SIP hop to the node that hosts the call, as a dispatcher would,
	// over TCP: a softphone's INVITE often exceeds what UDP may carry
	// (RFC 3261 section 18.1.1).
	req.AppendHeader(sip.NewHeader(hopHeader, e.hopValue(req, "")))
	e.proxy(req, tx, []target{{uri: req.Recipient, dest: addr, transport: "tcp", hop: true, trusted: true}}, &callState{id: id, hopFailure: true, up: up})
}

// hintTTL is how long the edge reuses a pool's placement hint: pool
// conditions change by provisioning, rarely, and a call placed on the
// previous second's conditions is placed well.
const hintTTL = time.Second

type cachedHint struct {
	hint actors.Hint
	at   time.Time
}

// callHint is the tier-2 hint for pool, from the pools actor at most
// once per hintTTL.
func (e *Edge) callHint(ctx context.Context, pool string) (actors.Hint, error) {
	now := e.now()
	e.hintMu.Lock()
	c, ok := e.hints[pool]
	e.hintMu.Unlock()
	if ok && now.Sub(c.at) < hintTTL {
		return c.hint, nil
	}
	h, err := e.cfg.Actors.CallHint(ctx, pool)
	if err != nil {
		return h, err
	}
	e.hintMu.Lock()
	if len(e.hints) > 1024 {
		clear(e.hints)
	}
	e.hints[pool] = cachedHint{hint: h, at: now}
	e.hintMu.Unlock()
	return h, nil
}

// hostInvite takes an INVITE a peer's edge placed here: the call actor
// (local, started by that edge) says what to reach.
func (e *Edge) hostInvite(req *sip.Request, tx sip.ServerTransaction, account string) {
	req.RemoveHeader(hopHeader)
	ctx, cancel := e.actorCtx(context.Background())
	defer cancel()
	id := CallIdentity(callID(req))
	rep, err := e.cfg.Actors.Request(ctx, actors.KindCall, id, &actorpb.GetCall{})
	cr, ok := rep.(*actorpb.CallReply)
	if err != nil || !ok || cr.Error != nil || cr.Call.Account != account {
		e.respond(req, tx, 500, "Call Not Placed Here")
		return
	}
	e.handleCall(req, tx, id, cr.Call, "")
}

// handleCall proxies a call's INVITE on the node that hosts the call; up
// is the caller's flow when it reached this edge directly.
func (e *Edge) handleCall(req *sip.Request, tx sip.ServerTransaction, id string, rec *actorpb.CallRecord, up string) {
	ctx, cancel := e.actorCtx(context.Background())
	targets, rej := e.targets(ctx, rec.Account, rec.Route, rec.Callee, req)
	cancel()
	if rej != nil {
		e.endCall(id, rej.Code, "failure", "")
		e.rejectWith(req, tx, rej)
		return
	}
	e.proxy(req, tx, targets, &callState{id: id, owner: true, up: up})
}

// device returns an account's device, from the node's snapshot.
func (e *Edge) device(ctx context.Context, account, id string) (*actorpb.Device, *Reject) {
	d, err := e.cfg.Accounts.Device(ctx, account, id)
	switch {
	case errors.Is(err, accountview.ErrNotFound):
		return nil, reject(404, "Not Found")
	case err != nil:
		return nil, reject(503, "Account Unavailable", [2]string{"Retry-After", "1"})
	}
	return d, nil
}

// targets resolves where a request goes: a feature by its forwarding
// name through DNS (SRV, then A), or a device of the same account by its
// registrations.
func (e *Edge) targets(ctx context.Context, account, feature, callee string, req *sip.Request) ([]target, *Reject) {
	if feature != "" {
		name := actors.ForwardingDNSName(feature, account, e.cfg.Zone)
		ts, err := e.cfg.Resolver.Resolve(ctx, name, "udp")
		if err != nil || len(ts) == 0 {
			e.log.Warn("feature server unresolvable", "account", account, "feature", feature, "name", name, "err", err)
			return nil, reject(503, "Feature Unavailable", [2]string{"Retry-After", "5"})
		}
		out := make([]target, 0, len(ts))
		for _, t := range ts {
			uri := req.Recipient
			uri.Host, uri.Port, uri.UriParams = name, 0, nil
			out = append(out, target{uri: uri, dest: net.JoinHostPort(t.IP.String(), strconv.Itoa(int(t.Port))),
				transport: strings.ToLower(t.Transport), feature: true, trusted: true})
		}
		return out, nil
	}
	d, rej := e.device(ctx, account, callee)
	if rej != nil {
		return nil, rej
	}
	rep, err := e.cfg.Actors.Request(ctx, actors.KindDeviceGroup, account+"/"+d.Group, &actorpb.LookupBindings{Device: d.Id})
	rr, ok := rep.(*actorpb.RegisterReply)
	if err != nil || !ok || rr.Error != nil {
		return nil, reject(503, "Registrar Unavailable", [2]string{"Retry-After", "1"})
	}
	var out []target
	for _, b := range rr.Bindings {
		if t, ok := e.bindingTarget(b); ok {
			t.q = int(b.QMilli)
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, reject(480, "Temporarily Unavailable")
	}
	return out, nil
}

// bindingTarget is where a request for a registered contact goes: out on
// the flow its REGISTER came on (the device may be behind NAT, or on a
// connection it opened; a registered flow, so trusted), through the node
// that holds that flow when it is another; else the contact itself. A
// stream flow whose node is gone is gone with it: no target.
func (e *Edge) bindingTarget(b *actorpb.Binding) (target, bool) {
	var uri sip.Uri
	if err := sip.ParseUri(b.Contact, &uri); err != nil {
		return target{}, false
	}
	t := target{uri: uri, transport: "udp", dest: uri.HostPort()}
	tp, src, ok := strings.Cut(b.Source, ":")
	if !ok {
		return t, true
	}
	if b.EdgeNode != "" && b.EdgeNode != e.cfg.Node {
		if addr, up := e.cfg.Members.SIPAddr(b.EdgeNode); up {
			return target{uri: uri, transport: "tcp", dest: addr, trusted: true, deliver: b.Source}, true
		}
		if tp != "udp" {
			return target{}, false
		}
	}
	t.transport, t.dest, t.trusted, t.flow = tp, src, true, b.Source
	return t, true
}

// deliver sends a request a peer node handed over (a hop with a flow to
// deliver on) out on that flow, when this edge holds it; else 430 Flow
// Failed (RFC 5626 section 5.3), and the peer tries the device's other
// contacts.
func (e *Edge) deliver(req *sip.Request, tx sip.ServerTransaction, flow string) {
	if !e.flows.holds(flow, e.now()) {
		e.respond(req, tx, 430, "Flow Failed")
		return
	}
	tp, remote, _ := strings.Cut(flow, ":")
	e.proxy(req, tx, []target{{uri: req.Recipient, dest: remote, transport: tp, trusted: true, flow: flow}}, nil)
}

// callState ties a proxied INVITE to its call actor.
type callState struct {
	id string
	// owner: this node hosts the call and keeps its record.
	owner bool
	// hopFailure: this edge ends the call if the hop to its node fails.
	hopFailure bool
	// bye: the request is the BYE that ends the call.
	bye bool
	// message: the request is a MESSAGE in flight at its account's
	// supervisor (message.go); it is told how the message ended.
	message *inFlight
	// up: the caller's flow, when the INVITE came to this edge directly
	// from the caller.
	up string
	// refresh: the request is a re-INVITE or UPDATE in the call's dialog;
	// its 2xx renews the call's session.
	refresh bool
}

func (e *Edge) endCall(id string, status int, endedBy, target string) {
	e.endCallMsg(id, &actorpb.EndCall{Status: uint32(status), EndedBy: endedBy, Target: target})
}

// endOwnCall ends the call of cs when this node hosts it.
func (e *Edge) endOwnCall(cs *callState, status int, endedBy, target string) {
	if cs != nil && cs.owner {
		e.endCall(cs.id, status, endedBy, target)
	}
}

// endCallMsg writes the call record with m, its disposition filled.
func (e *Edge) endCallMsg(id string, m *actorpb.EndCall) {
	m.Disposition = string(actors.DispositionOf(int(m.Status)))
	e.metrics.calls.WithLabelValues(m.Disposition).Inc()
	ctx, cancel := e.actorCtx(context.Background())
	_, err := e.cfg.Actors.Request(ctx, actors.KindCall, id, m)
	cancel()
	if err == nil {
		return
	}
	// The call's actor is unreachable: its node may just have died, and
	// the cluster not yet know (its next activation, on a survivor, loads
	// the record from the store). Try again in the background, for a
	// while, rather than leave the record to the sweep of dead nodes'
	// calls (which would call it interrupted).
	e.wg.Go(func() {
		wait := 250 * time.Millisecond
		deadline := time.NewTimer(endCallRetryFor)
		defer deadline.Stop()
		for {
			select {
			case <-e.done:
				return
			case <-deadline.C:
				e.log.Warn("writing the call record failed", "call", id, "err", err)
				return
			case <-time.After(wait):
			}
			ctx, cancel := e.actorCtx(context.Background())
			_, err = e.cfg.Actors.Request(ctx, actors.KindCall, id, m)
			cancel()
			if err == nil {
				return
			}
			wait = min(2*wait, 2*time.Second)
		}
	})
}

// endCallRetryFor bounds the retries of a call record's end.
const endCallRetryFor = time.Minute

// answerCall marks the call answered by target, with the session
// interval its 2xx negotiated (0: none) and its dialog.
// It is told, not asked: the call actor is on this node (the one that
// hosts the call handles its INVITE's answer).
func (e *Edge) answerCall(id, target string, se time.Duration, d *actorpb.CallDialog) {
	m := &actorpb.AnswerCall{Target: target, SessionExpiresMs: se.Milliseconds(), Dialog: d}
	if err := e.cfg.Actors.Tell(actors.KindCall, id, m); err != nil {
		e.log.Warn("marking the call answered failed", "call", id, "err", err)
	}
}

// refreshCall tells the call that a re-INVITE or UPDATE renewed its
// session (RFC 4028 section 10), when the 2xx carries a session interval.
func (e *Edge) refreshCall(id string, res *sip.Response) {
	se := sessionExpires(res)
	if se <= 0 {
		return
	}
	if err := e.cfg.Actors.Tell(actors.KindCall, id, &actorpb.RefreshCall{SessionExpiresMs: se.Milliseconds()}); err != nil {
		e.log.Warn("refreshing the call's session failed", "call", id, "err", err)
	}
}

// inDialog forwards a request inside a dialog along its route set (RFC
// 3261 section 16.12, loose routing): this proxy's Route entry was
// consumed on entry; the next one, or else the request-URI, says where it
// goes. A BYE ends the call on the node that hosts it.
func (e *Edge) inDialog(req *sip.Request, tx sip.ServerTransaction, d dialogRoute) {
	t, ok := e.nextHop(req, d)
	if !ok {
		e.respond(req, tx, 404, "No Route For In-Dialog Request")
		return
	}
	// A request a peer node forwarded says so (signed); the first node a
	// BYE meets ends the call's record, wherever the call actor lives (it
	// reactivates from the store when its node is gone).
	fromPeer := false
	if v := req.GetHeader(hopHeader); v != nil {
		_, fromPeer = e.checkHop(req, v.Value())
		req.RemoveHeader(hopHeader)
	}
	if t.hop {
		req.AppendHeader(sip.NewHeader(hopHeader, e.hopValue(req, "")))
	}
	var cs *callState
	switch {
	case fromPeer:
	case req.Method == sip.BYE:
		cs = &callState{id: CallIdentity(callID(req)), owner: true, bye: true}
	case req.IsInvite() || req.Method == sip.UPDATE:
		// A session refresh, when its 2xx carries Session-Expires.
		cs = &callState{id: CallIdentity(callID(req)), refresh: true}
	}
	e.proxy(req, tx, []target{t}, cs)
}

// nextHop is where an in-dialog request goes: the top Route (over TCP
// when it names a peer node), else the flow this edge holds for the side
// the request is for (d), else its request-URI.
func (e *Edge) nextHop(req *sip.Request, d dialogRoute) (target, bool) {
	uri := req.Recipient
	r := req.Route()
	if r != nil {
		uri = r.Address
	} else if f := d.flowOnward(); f != "" {
		tp, remote, _ := strings.Cut(f, ":")
		return target{uri: req.Recipient, dest: remote, transport: tp, trusted: true, flow: f}, true
	}
	if uri.Host == "" {
		return target{}, false
	}
	tp := "udp"
	if v, ok := uri.UriParams.Get("transport"); ok && v != "" {
		tp = strings.ToLower(v)
	}
	dest := net.JoinHostPort(uri.Host, strconv.Itoa(cmp.Or(uri.Port, 5060)))
	if r != nil && e.cfg.Members.IsPeer(dest) {
		return target{uri: req.Recipient, dest: dest, transport: "tcp", hop: true, trusted: true}, true
	}
	return target{uri: req.Recipient, dest: dest, transport: tp}, true
}

// forwardAck relays an ACK for a 2xx (the ones for other responses end at
// their transaction) statelessly along the route set.
func (e *Edge) forwardAck(req *sip.Request, d dialogRoute) {
	t, ok := e.nextHop(req, d)
	if !ok {
		return
	}
	out := req.Clone()
	out.RemoveHeader(hopHeader)
	if mf := out.MaxForwards(); mf != nil {
		mf.Dec()
	}
	out.SetDestination(t.dest)
	out.SetTransport(strings.ToUpper(t.transport))
	out.PrependHeader(e.via(out))
	e.fromListener(out)
	if err := e.cli.WriteRequest(out, sendAsIs); err != nil {
		e.log.Debug("forwarding an ACK failed", "call_id", callID(req), "err", err)
	}
}

// sendAsIs is a client option that sends a forwarded request as it is:
// sipgo would otherwise fill in its own Via, From, To and Contact.
func sendAsIs(*sipgo.Client, *sip.Request) error { return nil }

// via is this proxy's Via entry for out, with a fresh branch.
func (e *Edge) via(out *sip.Request) *sip.ViaHeader {
	return &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: strings.ToUpper(out.Transport()), Host: e.advHost, Port: e.advPort,
		Params: sip.HeaderParams{{K: "branch", V: sip.GenerateBranchN(16)}}}
}

// strayResponse relays a response no client transaction matched (a 2xx
// retransmitted after its transaction ended) along its Via, statelessly
// (RFC 3261 section 16.11).
func (e *Edge) strayResponse(res *sip.Response) {
	v := res.Via()
	if v == nil || !strings.EqualFold(v.Host, e.advHost) || v.Port != e.advPort {
		return
	}
	out := res.Clone()
	out.RemoveHeader("Via")
	next := out.Via()
	if next == nil {
		return
	}
	out.SetDestination(viaDestination(next))
	if err := e.srv.WriteResponse(out); err != nil {
		e.log.Debug("relaying a stray response failed", "err", err)
	}
}

// viaDestination is where a response to via goes (RFC 3261 section
// 18.2.2 with RFC 3581 received/rport).
func viaDestination(v *sip.ViaHeader) string {
	host, port := v.Host, v.Port
	if r, ok := v.Params.Get("received"); ok && r != "" {
		host = r
	}
	if r, ok := v.Params.Get("rport"); ok && r != "" {
		if p, err := strconv.Atoi(r); err == nil {
			port = p
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(cmp.Or(port, 5060)))
}
