package sipedge

import (
	"cmp"
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// timerB is how long a client INVITE transaction may wait for its final
// response (RFC 3261 section 17.1.1.2: 64*T1); a cancelled branch is given
// up after it.
const timerB = 64 * 500 * time.Millisecond

// forks says whether an INVITE to targets is forked (RFC 3261 section
// 16.7): several targets, each a registered contact of the callee (not a
// feature server, whose targets are failed over in turn, nor the hop to
// the call's node).
func forks(req *sip.Request, targets []target) bool {
	return req.IsInvite() && len(targets) >= 2 && !slices.ContainsFunc(targets, func(t target) bool { return t.feature || t.hop })
}

// qGroups splits targets into groups of equal q, highest q first, each
// group in the order given (RFC 3261 section 16.6: contacts of the
// highest q are tried first, those of equal q in parallel).
func qGroups(targets []target) [][]target {
	sorted := slices.Clone(targets)
	slices.SortStableFunc(sorted, func(a, b target) int { return cmp.Compare(b.q, a.q) })
	var out [][]target
	for i, t := range sorted {
		if i == 0 || t.q != sorted[i-1].q {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], t)
	}
	return out
}

// finalRank orders the final responses of a fork's branches for RFC 3261
// section 16.7 step 6, lower first: a 6xx, else the lowest class; within
// a class a response about the callee goes before 408, 430 and 503, which
// only say a branch failed.
func finalRank(code int) int {
	switch {
	case code >= 600:
		return 0
	case code == 408 || code == 430 || code == 503:
		return 1000 + code
	}
	return code / 100 * 100
}

// branch is one client transaction of a fork.
type branch struct {
	t   target
	out *sip.Request
	tx  sip.ClientTransaction
	// cancel is closed when the fork no longer wants the branch.
	cancel chan struct{}
	// won: its 2xx went upstream, and so do the 2xx's retransmissions.
	won atomic.Bool
	// ack is the ACK that ended a 2xx that lost, sent again when the 2xx
	// is.
	ack atomic.Pointer[sip.Request]
}

// branchEvent is what a branch tells its fork: a response, or nil when
// its transaction ended without a final response (silence, transport
// error).
type branchEvent struct {
	b   *branch
	res *sip.Response
}

// fork sends an INVITE to every contact of the callee in parallel, one q
// group after the other (RFC 3261 section 16.7). Provisional responses
// of every branch go upstream (100 Trying excepted: the edge sent its
// own). The first 2xx wins: it goes upstream and every other branch is
// cancelled. A group whose branches all ended without a 2xx starts the
// next; a 6xx ends the fork. When no branch answered 2xx the caller gets
// the best final response (section 16.7 step 6). RingTimeout, from the
// first provisional response of any branch, bounds the whole fork.
func (e *Edge) fork(req *sip.Request, tx sip.ServerTransaction, targets []target, cs *callState, canceled <-chan struct{}) {
	events := make(chan branchEvent)
	over := make(chan struct{})
	defer close(over)
	var started []*branch
	// leave lets go of every branch but won (before over closes, so that
	// a branch whose report finds the fork over is already told).
	leave := func(won *branch) {
		for _, b := range started {
			if b != won {
				close(b.cancel)
			}
		}
	}
	var ringC <-chan time.Time // from the first provisional response on
	var best *sip.Response
	var bestT target
groups:
	for _, group := range qGroups(targets) {
		select {
		case <-canceled:
			break groups
		default:
		}
		pending := 0
		for _, t := range group {
			if b := e.startBranch(req, t, cs, events, over); b != nil {
				started = append(started, b)
				pending++
			}
		}
		for pending > 0 {
			select {
			case ev := <-events:
				res := ev.res
				if res != nil && res.IsProvisional() {
					if ringC == nil {
						ring := time.NewTimer(e.cfg.RingTimeout)
						defer ring.Stop()
						ringC = ring.C
					}
					if res.StatusCode > 100 {
						e.relay(req, tx, res)
					}
					continue
				}
				pending--
				if res == nil {
					continue
				}
				if res.IsSuccess() {
					ev.b.won.Store(true)
					leave(ev.b)
					e.relay(req, tx, res)
					e.finish(req, res, cs, ev.b.t, res.StatusCode)
					return
				}
				if best == nil || finalRank(res.StatusCode) < finalRank(best.StatusCode) {
					best, bestT = res, ev.b.t
				}
				if res.StatusCode >= 600 {
					// Section 16.7 step 5: a 6xx cancels what is pending.
					break groups
				}
			case <-ringC:
				// Rang too long (fr_inv_timer): every branch is
				// cancelled, 408 up.
				leave(nil)
				e.respond(req, tx, 408, "Request Timeout")
				e.endOwnCall(cs, 408, "timeout", "")
				return
			case <-canceled:
				break groups
			case <-e.done:
				return
			}
		}
	}
	// The branches left are cancelled (section 16.10), the caller's
	// CANCEL answered by sipgo.
	leave(nil)
	if !e.callerCanceled(canceled, cs) {
		e.forkFailed(req, tx, cs, best, bestT)
	}
}

// forkFailed answers an INVITE none of whose branches answered 2xx with
// the best final response (RFC 3261 section 16.7 step 6): a 503 becomes
// 500, as it would tell the caller that this proxy is out of service;
// none at all, or 408, is 408.
func (e *Edge) forkFailed(req *sip.Request, tx sip.ServerTransaction, cs *callState, best *sip.Response, t target) {
	code, reason := 500, "Every Target Failed"
	switch {
	case best == nil || best.StatusCode == 408:
		code, reason = 408, "No Target Answered"
	case best.StatusCode != 503 && best.StatusCode != 430:
		e.relay(req, tx, best)
		e.finish(req, best, cs, t, best.StatusCode)
		return
	}
	e.endOwnCall(cs, code, "failure", "")
	e.respond(req, tx, code, reason)
}

// startBranch sends req to t in a client transaction of its own, followed
// by runBranch; nil when it could not be sent.
func (e *Edge) startBranch(req *sip.Request, t target, cs *callState, events chan<- branchEvent, over <-chan struct{}) *branch {
	out := e.prepare(req, t, cs)
	clTx, err := e.cli.TransactionRequest(context.Background(), out, sendAsIs)
	if err != nil {
		e.log.Debug("sending a branch of a fork failed", "call_id", callID(req), "target", t.dest, "err", err)
		return nil
	}
	b := &branch{t: t, out: out, tx: clTx, cancel: make(chan struct{})}
	clTx.OnRetransmission(func(res *sip.Response) {
		if !res.IsSuccess() {
			return
		}
		// 2xx retransmissions of the winner go upstream too (RFC 6026);
		// a loser's get its ACK again.
		if b.won.Load() {
			e.relayStateless(req, res)
		} else if ack := b.ack.Load(); ack != nil {
			e.write(ack)
		}
	})
	e.wg.Go(func() { e.runBranch(b, events, over) })
	return b
}

// runBranch follows a branch's client transaction: it reports responses
// to the fork until the final one. A branch the fork lets go is
// cancelled once it has had a provisional response (RFC 3261 section
// 16.10: a CANCEL before one is not sent; a branch silent for
// FailoverTimeout is ended without one), and a 2xx it answers anyway is
// ended by the edge itself (hangUp): the caller keeps one dialog.
func (e *Edge) runBranch(b *branch, events chan<- branchEvent, over <-chan struct{}) {
	report := func(res *sip.Response) bool {
		select {
		case events <- branchEvent{b: b, res: res}:
			return true
		case <-over:
			return false
		case <-e.done:
			return false
		}
	}
	deadline := time.NewTimer(e.cfg.FailoverTimeout)
	defer deadline.Stop()
	provisional, leaving := false, false
	cancel := b.cancel
	leave := func() {
		leaving, cancel = true, nil
		if provisional {
			e.cancelDownstream(b.out)
			deadline.Reset(timerB)
		}
	}
	for {
		select {
		case res, ok := <-b.tx.Responses():
			if !ok {
				if !leaving {
					report(nil)
				}
				return
			}
			if res.IsProvisional() {
				first := !provisional
				provisional = true
				switch {
				case leaving && first:
					e.cancelDownstream(b.out)
					deadline.Reset(timerB)
				case leaving:
				case !report(res):
					leave()
				case first:
					deadline.Stop()
				}
				continue
			}
			if !leaving && report(res) {
				return
			}
			if res.IsSuccess() {
				e.hangUp(b, res)
			}
			return
		case <-cancel:
			leave()
		case <-b.tx.Done():
			if !leaving {
				report(nil)
			}
			return
		case <-deadline.C:
			b.tx.Terminate()
			if !leaving {
				report(nil)
			}
			return
		case <-e.done:
			b.tx.Terminate()
			return
		}
	}
}

// hangUp ends the dialog a 2xx opened on a branch that lost: ACK, then
// BYE (RFC 3261 section 16.7 step 5 would relay it upstream for the
// caller to end; this edge ends it itself, so that the caller, and the
// call's record, know one dialog).
func (e *Edge) hangUp(b *branch, res *sip.Response) {
	seq := b.out.CSeq().SeqNo
	ack := e.branchRequest(b, res, sip.ACK, seq)
	b.ack.Store(ack)
	e.write(ack)
	bye := e.branchRequest(b, res, sip.BYE, seq+1)
	clTx, err := e.cli.TransactionRequest(context.Background(), bye, sendAsIs)
	if err != nil {
		e.log.Debug("ending a branch's dialog failed", "call_id", callID(b.out), "err", err)
		return
	}
	e.drainTx(clTx)
}

// branchRequest is a request in the dialog res opened on b (RFC 3261
// section 12.2.1.1): to the 2xx's Contact, along the Record-Route entries
// above this edge's own (reversed), sent where the branch went.
func (e *Edge) branchRequest(b *branch, res *sip.Response, method sip.RequestMethod, seq uint32) *sip.Request {
	uri := b.out.Recipient
	if c := res.Contact(); c != nil {
		uri = c.Address
	}
	r := sip.NewRequest(method, *uri.Clone())
	r.SipVersion = b.out.SipVersion
	var route []sip.Uri
	for _, h := range res.GetHeaders("Record-Route") {
		rr, ok := h.(*sip.RecordRouteHeader)
		if !ok {
			continue
		}
		if e.isSelf(rr.Address) {
			break
		}
		route = append(route, *rr.Address.Clone())
	}
	for i := len(route) - 1; i >= 0; i-- {
		r.AppendHeader(&sip.RouteHeader{Address: route[i]})
	}
	m := sip.MaxForwardsHeader(70)
	r.AppendHeader(&m)
	r.AppendHeader(sip.HeaderClone(b.out.From()))
	r.AppendHeader(sip.HeaderClone(res.To()))
	r.AppendHeader(sip.HeaderClone(b.out.CallID()))
	r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	if b.t.deliver != "" {
		// The node that holds the flow relays it, and, told by the hop
		// header that it comes from a peer, leaves the call's record be.
		r.AppendHeader(sip.NewHeader(hopHeader, e.hopValue(r, "")))
	}
	r.SetBody(nil)
	r.SetTransport(b.out.Transport())
	r.SetDestination(b.out.Destination())
	r.PrependHeader(e.via(r))
	r.Laddr = b.out.Laddr
	return r
}

// write sends a request outside a transaction (an ACK).
func (e *Edge) write(req *sip.Request) {
	if err := e.cli.WriteRequest(req, sendAsIs); err != nil {
		e.log.Debug("sending a request failed", "call_id", callID(req), "method", req.Method, "err", err)
	}
}
