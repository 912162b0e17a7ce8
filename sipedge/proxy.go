package sipedge

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// proxy forwards req statefully (RFC 3261 section 16) to the first target
// that answers, failing over on 503, 408 or silence, relaying
// provisional and final responses upstream, and cancelling downstream
// when the caller cancels. An INVITE to several contacts of a device is
// forked instead (fork.go).
func (e *Edge) proxy(req *sip.Request, tx sip.ServerTransaction, targets []target, cs *callState) {
	e.metrics.transactions.Inc()
	defer e.metrics.transactions.Dec()
	canceled := make(chan struct{})
	if req.IsInvite() {
		var once sync.Once
		tx.OnCancel(func(*sip.Request) { once.Do(func() { close(canceled) }) })
	}
	// Received and rport on the sender's Via (RFC 3261 section 18.2.1,
	// RFC 3581) so responses find their way back.
	if v := req.Via(); v != nil {
		host, port, _ := strings.Cut(req.Source(), ":")
		if i := strings.LastIndexByte(req.Source(), ':'); i > 0 {
			host, port = req.Source()[:i], req.Source()[i+1:]
		}
		if v.Host != host {
			v.Params.Add("received", host)
		}
		if v.Params.Has("rport") {
			v.Params.Add("rport", port)
		}
	}
	if forks(req, targets) {
		e.fork(req, tx, targets, cs, canceled)
		return
	}
	var lastCode int
	// Targets known down go last: skipped while another is up, tried
	// when none is (stale health must not turn overload into refusal).
	up, down := make([]target, 0, len(targets)), []target(nil)
	for _, t := range targets {
		if t.feature && !e.health.Use(t.dest, t.transport, e.now()) {
			down = append(down, t)
			continue
		}
		up = append(up, t)
	}
	if len(up) == 0 {
		up = down
	}
	for i, t := range up {
		out := e.prepare(req, t, cs)
		relayed, code := e.attempt(req, out, tx, t, cs, canceled)
		if relayed {
			return
		}
		lastCode = code
		if t.feature && i < len(up)-1 {
			e.metrics.failovers.Inc()
		}
		if e.callerCanceled(canceled, cs) {
			return
		}
	}
	// RFC 3261 section 16.7 step 6: a 503 from downstream is not relayed
	// as such (it would tell the caller that this proxy is out of
	// service): every target refused -> 500, none answered -> 408, every
	// target known down -> 503 with Retry-After.
	code, reason := 500, "Every Target Failed"
	var hdrs [][2]string
	switch {
	case len(targets) == 1 && targets[0].hop:
		code, reason = 503, "Call's Node Did Not Answer"
		hdrs = append(hdrs, [2]string{"Retry-After", "1"})
	case lastCode == 408 || lastCode == 0:
		code, reason = 408, "No Target Answered"
	}
	if cs != nil && (cs.owner && !cs.bye || cs.hopFailure) {
		e.endCall(cs.id, code, "failure", "")
	}
	if req.Method == sip.BYE && cs != nil && cs.bye {
		// The other side is gone; the call has ended anyway.
		e.endByBye(cs.id, req)
	}
	if cs != nil && cs.message != nil {
		e.messageDone(cs.message, code, "")
	}
	e.respond(req, tx, code, reason, hdrs...)
}

// callerCanceled says whether the caller has cancelled the INVITE, and
// then ends the call's record as cancelled: sipgo has answered the CANCEL
// with 200 and the INVITE with 487.
func (e *Edge) callerCanceled(canceled <-chan struct{}, cs *callState) bool {
	select {
	case <-canceled:
		e.endOwnCall(cs, 487, "cancel", "")
		return true
	default:
		return false
	}
}

// prepare makes the copy of req that goes to t: request-URI, Max-Forwards
// decreased, Record-Route on dialog-creating requests (with the flows
// this edge holds for either side), the hop header when a peer node
// delivers it, our Via on top.
func (e *Edge) prepare(req *sip.Request, t target, cs *callState) *sip.Request {
	out := req.Clone()
	out.Recipient = t.uri
	if mf := out.MaxForwards(); mf != nil {
		mf.Dec()
	} else {
		m := sip.MaxForwardsHeader(70)
		out.AppendHeader(&m)
	}
	if req.IsInvite() && !req.To().Params.Has("tag") {
		// An edge that holds a flow of the dialog, or that sends to a
		// feature server (which answers where the INVITE came from), stays
		// on its route. The node that hosts a call between devices but
		// reaches neither directly is left out, so the dialog does not
		// depend on it: its requests go from one party's edge to the
		// other's, and the call's record is in the store.
		up := ""
		if cs != nil {
			up = cs.up
		}
		if up != "" || t.flow != "" || t.feature {
			out.PrependHeader(e.recordRoute(req, up, t.flow))
		}
	}
	if t.deliver != "" {
		out.AppendHeader(sip.NewHeader(hopHeader, e.hopValue(req, t.deliver)))
	}
	// Our own realms' credentials are consumed here (Kamailio's
	// consume_credentials): nobody downstream is to see a response, nonce
	// and cnonce a device answered to us. Other realms' credentials pass.
	e.consumeCredentials(out)
	out.SetTransport(strings.ToUpper(t.transport))
	out.SetDestination(t.dest)
	out.PrependHeader(e.via(out))
	e.fromListener(out)
	if t.trusted {
		// A configured feature server, a peer node or a registered
		// device's flow: its answers are not a flood. Nothing else
		// becomes exempt by being sent to.
		e.trustAddr(t.dest)
	}
	return out
}

// fromListener sends a UDP request from the listening socket (sipgo
// would open an ephemeral one for a destination it has not heard from),
// so that peers recognise this node by its source address and responses
// come back to the advertised port.
func (e *Edge) fromListener(req *sip.Request) {
	if !strings.EqualFold(req.Transport(), "UDP") {
		return
	}
	if a, ok := e.udp.LocalAddr().(*net.UDPAddr); ok {
		req.Laddr = sip.Addr{IP: a.IP, Port: a.Port, Hostname: a.IP.String()}
	}
}

// attempt sends out to t and follows its client transaction. relayed: a
// final response went upstream; else (503, 408 or silence) the next
// target is to be tried. code is the status that ended the attempt.
func (e *Edge) attempt(req, out *sip.Request, tx sip.ServerTransaction, t target, cs *callState, canceled <-chan struct{}) (relayed bool, code int) {
	clTx, err := e.cli.TransactionRequest(context.Background(), out, sendAsIs)
	if err != nil {
		e.noteTarget(t, false, err.Error())
		return false, 0
	}
	if req.IsInvite() {
		// 2xx retransmissions go upstream too (RFC 6026).
		clTx.OnRetransmission(func(res *sip.Response) {
			if res.IsSuccess() {
				e.relayStateless(req, res)
			}
		})
	}
	timer := time.NewTimer(e.cfg.FailoverTimeout)
	defer timer.Stop()
	provisional := false
	for {
		select {
		case res, ok := <-clTx.Responses():
			if !ok {
				e.noteTarget(t, false, "transaction ended")
				return false, 0
			}
			if res.IsProvisional() {
				if !provisional {
					provisional = true
					timer.Reset(e.cfg.RingTimeout)
				}
				if res.StatusCode > 100 {
					e.relay(req, tx, res)
				}
				continue
			}
			code = res.StatusCode
			// 430: the node that was to hold the device's flow no longer
			// does; its other contacts may still answer.
			failover := (code == 503 || code == 408) && !t.hop || code == 430 && t.deliver != ""
			e.noteTarget(t, !failover, "status "+strconv.Itoa(code))
			if failover {
				return false, code
			}
			if cs != nil && cs.message != nil && !e.messageDone(cs.message, code, t.dest) {
				// Terminated while in flight (fraud containment): the
				// sender is told no, whatever the target said.
				e.respond(req, tx, 403, "Message Terminated")
				return true, 403
			}
			e.relay(req, tx, res)
			e.finish(req, res, cs, t, code)
			return true, code
		case <-clTx.Done():
			e.noteTarget(t, false, errText(clTx.Err()))
			return false, 0
		case <-timer.C:
			if !provisional {
				clTx.Terminate()
				e.noteTarget(t, false, "no response in "+e.cfg.FailoverTimeout.String())
				return false, 0
			}
			// Rang too long (fr_inv_timer): cancel downstream, 408 up.
			e.cancelDownstream(out)
			e.drainTx(clTx)
			e.respond(req, tx, 408, "Request Timeout")
			e.endOwnCall(cs, 408, "timeout", t.dest)
			return true, 408
		case <-canceled:
			// sipgo has answered the CANCEL with 200 and the INVITE with
			// 487; the CANCEL goes on downstream (section 16.10).
			e.cancelDownstream(out)
			e.drainTx(clTx)
			e.endOwnCall(cs, 487, "cancel", t.dest)
			return true, 487
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "transaction ended"
	}
	return err.Error()
}

// finish records what res, a final response, means for the call.
func (e *Edge) finish(req *sip.Request, res *sip.Response, cs *callState, t target, code int) {
	if cs != nil && cs.refresh && code >= 200 && code < 300 {
		e.refreshCall(cs.id, res)
		return
	}
	if cs == nil || !cs.owner {
		return
	}
	switch {
	case cs.bye:
		e.endByBye(cs.id, req)
	case req.IsInvite() && code >= 200 && code < 300:
		e.answerCall(cs.id, t.dest, sessionExpires(res), dialogOf(req, res))
	case req.IsInvite():
		e.endCall(cs.id, code, "failure", t.dest)
	}
}

// endByBye writes the record of a call a BYE ended; the call actor says
// which side sent it (the caller when the From user is the call's
// caller).
func (e *Edge) endByBye(id string, req *sip.Request) {
	e.endCallMsg(id, &actorpb.EndCall{Status: 200, ByeFrom: req.From().Address.User})
}

func (e *Edge) noteTarget(t target, ok bool, why string) {
	if t.feature && e.health.Record(t.dest, t.transport, ok, why, e.now()) {
		e.log.Warn("feature-server target changed state", "target", t.dest, "up", ok, "why", why)
	}
}

// relay sends a downstream response upstream in the server transaction,
// without our Via.
func (e *Edge) relay(req *sip.Request, tx sip.ServerTransaction, res *sip.Response) {
	out := res.Clone()
	out.RemoveHeader("Via")
	out.SetDestination(req.Source())
	e.send(req, tx, out)
}

// relayStateless sends a retransmitted 2xx upstream outside a
// transaction.
func (e *Edge) relayStateless(req *sip.Request, res *sip.Response) {
	out := res.Clone()
	out.RemoveHeader("Via")
	out.SetDestination(req.Source())
	if err := e.srv.WriteResponse(out); err != nil {
		e.log.Debug("relaying a 2xx retransmission failed", "err", err)
	}
}

// drainTx reads what is left of a client transaction nobody follows any
// more (the 487 after a CANCEL), so that sipgo, which hands responses over
// on an unbuffered channel, can finish it: it ACKs a non-2xx final itself.
func (e *Edge) drainTx(clTx sip.ClientTransaction) {
	e.wg.Go(func() {
		t := time.NewTimer(timerB)
		defer t.Stop()
		for {
			select {
			case res := <-clTx.Responses():
				if !res.IsProvisional() {
					return
				}
			case <-clTx.Done():
				return
			case <-t.C:
				clTx.Terminate()
				return
			case <-e.done:
				clTx.Terminate()
				return
			}
		}
	})
}

// cancelDownstream sends CANCEL for out (RFC 3261 section 9.1: same
// request-URI, Call-ID, From, To, CSeq number and top Via as the request
// it cancels) and lets its transaction finish in the background.
func (e *Edge) cancelDownstream(out *sip.Request) {
	c := sip.NewRequest(sip.CANCEL, out.Recipient)
	c.SipVersion = out.SipVersion
	c.AppendHeader(sip.HeaderClone(out.Via()))
	sip.CopyHeaders("Route", out, c)
	c.AppendHeader(sip.HeaderClone(out.From()))
	c.AppendHeader(sip.HeaderClone(out.To()))
	c.AppendHeader(sip.HeaderClone(out.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: out.CSeq().SeqNo, MethodName: sip.CANCEL})
	m := sip.MaxForwardsHeader(70)
	c.AppendHeader(&m)
	c.SetBody(nil)
	c.SetTransport(out.Transport())
	c.SetDestination(out.Destination())
	c.Laddr = out.Laddr
	clTx, err := e.cli.TransactionRequest(context.Background(), c, sendAsIs)
	if err != nil {
		e.log.Debug("sending CANCEL failed", "call_id", callID(out), "err", err)
		return
	}
	e.drainTx(clTx)
}
