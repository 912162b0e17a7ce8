package sipedge

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

var _ actors.CallHangup = (*Edge)(nil)

// sessionExpires is the session interval of a call or refresh (RFC 4028):
// the 2xx's Session-Expires, else 0 (the UAS did not agree to a session
// timer; the call's maximum length still applies).
func sessionExpires(res *sip.Response) time.Duration {
	for _, name := range []string{"Session-Expires", "x"} {
		h := res.GetHeader(name)
		if h == nil {
			continue
		}
		v, _, _ := strings.Cut(h.Value(), ";")
		s, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	return 0
}

// dialogOf is the dialog a 2xx to the INVITE req established, as this
// edge saw them.
func dialogOf(req *sip.Request, res *sip.Response) *actorpb.CallDialog {
	d := &actorpb.CallDialog{CallId: callID(req), CallerFrom: req.From().Value(), CalleeTo: res.To().Value()}
	if cs := req.CSeq(); cs != nil {
		d.InviteCseq = cs.SeqNo
	}
	if c := req.Contact(); c != nil {
		d.CallerContact = c.Address.String()
	}
	if c := res.Contact(); c != nil {
		d.CalleeContact = c.Address.String()
	}
	for _, h := range res.GetHeaders("Record-Route") {
		for _, v := range strings.Split(h.Value(), ",") {
			if v = strings.TrimSpace(v); v != "" {
				d.RecordRoute = append(d.RecordRoute, v)
			}
		}
	}
	return d
}

// hangupCSeq is how far past the INVITE's CSeq the edge's BYE to the
// callee goes: above any request the caller sent in the dialog meanwhile
// (RFC 3261 section 12.2.2 only asks that it be higher).
const hangupCSeq = 1000

// HangUp implements actors.CallHangup: it ends both legs of a call that
// ended without them (its session or maximum length ran out, or its node
// shut down) with a BYE to each, built from the dialog in its record and
// sent along each party's route set, so that it passes the edges that
// hold the parties' flows. Both are sent even if one fails.
func (e *Edge) HangUp(ctx context.Context, rec *actorpb.CallRecord) {
	d := rec.GetDialog()
	if d == nil || d.CallId == "" {
		return
	}
	// To the callee, as if from the caller: the caller's route set is the
	// Record-Route reversed.
	toCallee := slices.Clone(d.RecordRoute)
	slices.Reverse(toCallee)
	bye := func(from, to, contact string, routes []string, cseq uint32, toCallee bool) {
		if err := e.sendBye(ctx, d.CallId, from, to, contact, routes, cseq, toCallee); err != nil {
			e.log.Info("hanging up a leg of an ended call failed", "call_id", d.CallId, "contact", contact, "err", err)
		}
	}
	bye(d.CallerFrom, d.CalleeTo, d.CalleeContact, toCallee, d.InviteCseq+hangupCSeq, true)
	bye(d.CalleeTo, d.CallerFrom, d.CallerContact, d.RecordRoute, hangupCSeq, false)
}

// sendBye sends one BYE in dialog callID, from and to as given, to the
// contact along routes (this edge's own entries at their head consumed
// here, as it would consume them on receipt), and waits for its final
// answer. toCallee says which party's flow an entry of this edge names.
func (e *Edge) sendBye(ctx context.Context, callID, from, to, contact string, routes []string, cseq uint32, toCallee bool) error {
	var ruri sip.Uri
	if err := sip.ParseUri(strings.Trim(contact, "<>"), &ruri); err != nil {
		return err
	}
	t := target{uri: ruri, transport: "udp", dest: ruri.HostPort()}
	toPeer := false // the next hop is another node of this cluster
	for len(routes) > 0 {
		var first sip.Uri
		if err := sip.ParseUri(strings.Trim(routes[0], "<>"), &first); err != nil {
			return err
		}
		if !e.isSelf(first) {
			t.dest, t.transport = first.HostPort(), "udp"
			if v, ok := first.UriParams.Get("transport"); ok && v != "" {
				t.transport = strings.ToLower(v)
			}
			if toPeer = e.cfg.Members.IsPeer(t.dest); toPeer {
				t.transport = "tcp" // as any hop between nodes
			}
			break
		}
		routes = routes[1:]
		param := upParam
		if toCallee {
			param = downParam
		}
		if v, ok := first.UriParams.Get(param); ok && len(routes) == 0 {
			if f := decodeFlow(v); f != "" {
				tp, remote, _ := strings.Cut(f, ":")
				t.transport, t.dest = tp, remote
			}
		}
	}
	req := e.originate(sip.BYE, t, from, to, callID)
	req.CSeq().SeqNo = cseq
	req.SetBody(nil) // Content-Length: 0, which a stream needs
	for _, r := range routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	if toPeer {
		// Our other nodes on the route set take it as a hop from a peer:
		// none of them ends the record again. A party never sees it.
		req.AppendHeader(sip.NewHeader(hopHeader, e.hopValue(req, "")))
	}
	_, err := e.send1(ctx, req, e.cfg.FailoverTimeout*4)
	return err
}
