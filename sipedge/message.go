package sipedge

import (
	"cmp"
	"context"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/fraud"
)

// inFlight is a MESSAGE its account's supervisor knows as in flight.
type inFlight struct {
	account, id string
}

// MessageRules are what a MESSAGE must be to enter (RFC 3428).
type MessageRules struct {
	// MaxBody is the largest body accepted; a larger one gets 513
	// Message Too Large. Default 64 KiB (RFC 3428 section 7 keeps pages
	// sent over UDP under 1300 bytes; streams may carry more).
	MaxBody int
	// ContentTypes are the media types accepted; others get 415 with
	// Accept. Default text/plain, message/cpim, message/imdn+xml,
	// application/im-iscomposing+xml (RFC 3994).
	ContentTypes []string
	// QueueTTL is how long a MESSAGE for a device with no registered
	// contact waits for it to register. Default 24 h.
	QueueTTL time.Duration
}

// DefaultMessageRules returns the defaults named on MessageRules.
func DefaultMessageRules() MessageRules {
	return MessageRules{
		MaxBody:      64 << 10,
		ContentTypes: []string{"text/plain", "message/cpim", "message/imdn+xml", "application/im-iscomposing+xml"},
		QueueTTL:     24 * time.Hour,
	}
}

func (r *MessageRules) fill() {
	d := DefaultMessageRules()
	orDefault(&r.MaxBody, d.MaxBody)
	if len(r.ContentTypes) == 0 {
		r.ContentTypes = d.ContentTypes
	}
	orDefault(&r.QueueTTL, d.QueueTTL)
}

// CheckMessageRequest rejects a MESSAGE that is too large (513) or has no
// body or a media type not accepted (415, with Accept), per RFC 3428
// section 7 and RFC 3261 section 21.4.13.
func CheckMessageRequest(req *sip.Request, r MessageRules) *Reject {
	body := req.Body()
	if len(body) > r.MaxBody {
		return reject(513, "Message Too Large")
	}
	accept := [2]string{"Accept", strings.Join(r.ContentTypes, ", ")}
	ct := req.ContentType()
	if len(body) == 0 || ct == nil {
		return reject(415, "Unsupported Media Type", accept)
	}
	mt, _, _ := strings.Cut(ct.Value(), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if slices.Contains(r.ContentTypes, mt) {
		return nil
	}
	return reject(415, "Unsupported Media Type", accept)
}

// check asks the account's supervisor whether req may go on. A message
// whose supervisor cannot answer is refused with 503 (fraud checks are
// not skipped); a call goes on (availability of calls comes first; the
// failure is logged and counted).
func (e *Edge) check(ctx context.Context, req *sip.Request, account string, c *caller, kind string, body []byte, internal bool) *Reject {
	m := &actorpb.CheckMessage{
		Kind: kind, Destination: req.Recipient.User, Source: strings.ToLower(req.Transport()) + ":" + req.Source(),
		MessageId: callID(req), Node: e.cfg.Node, Size: uint32(len(body)), Internal: internal,
		Device: c.device.GetId(), Trunk: c.trunk.GetId(), Group: cmp.Or(c.trunk.GetGroup(), c.device.GetGroup()),
	}
	if ua := req.GetHeader("User-Agent"); ua != nil {
		m.UserAgent = truncate(ua.Value(), 128)
	}
	if body != nil {
		m.BodyHash = binary.BigEndian.AppendUint64(nil, fraud.BodyHash(body))
	}
	rep, err := e.cfg.Actors.Request(ctx, actors.KindMessaging, account, m)
	cr, ok := rep.(*actorpb.CheckReply)
	if err != nil || !ok || cr.Error != nil {
		e.metrics.fraudChecks.WithLabelValues(kind, "unavailable").Inc()
		e.log.Warn("fraud check unavailable", "account", account, "kind", kind, "call_id", callID(req), "err", err, "reply", cr.GetError().GetMessage())
		if kind == "call" {
			return nil
		}
		return reject(503, "Messaging Unavailable", [2]string{"Retry-After", "1"})
	}
	e.metrics.fraudChecks.WithLabelValues(kind, cr.Verdict).Inc()
	switch cr.Verdict {
	case "deliver", "":
		return nil
	case "throttle":
		return reject(503, "Rate Limited", [2]string{"Retry-After", strconv.Itoa(int(max(cr.RetryAfter, 1)))})
	}
	return reject(403, cmp.Or(cr.Reason, "Refused By Fraud Policy"))
}

// message handles an out-of-dialog MESSAGE from an authenticated caller
// (RFC 3428): checked by the account's supervisor, then relayed to the
// feature server a route names (an SMS gateway) with failover, or
// delivered to the callee device's registered contacts, or queued for it
// until it registers.
func (e *Edge) message(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, account string, c *caller, feature, callee string) {
	if rej := CheckMessageRequest(req, e.cfg.Messages); rej != nil {
		e.rejectWith(req, tx, rej)
		return
	}
	var dev *actorpb.Device
	if feature == "" {
		var rej *Reject
		if dev, rej = e.device(ctx, account, callee); rej != nil {
			e.rejectWith(req, tx, rej)
			return
		}
	}
	msg := &inFlight{account: account, id: callID(req)}
	if rej := e.check(ctx, req, account, c, "message", req.Body(), dev != nil); rej != nil {
		e.messageDone(msg, rej.Code, "")
		e.rejectWith(req, tx, rej)
		return
	}
	targets, rej := e.targets(ctx, account, feature, callee, req)
	if rej != nil && rej.Code == 480 && dev != nil {
		e.queue(ctx, req, tx, msg, c, dev)
		return
	}
	if rej != nil {
		e.messageDone(msg, rej.Code, "")
		e.rejectWith(req, tx, rej)
		return
	}
	e.proxy(req, tx, targets, &callState{message: msg})
}

// queue stores a MESSAGE for a device with no registered contact and
// answers 202 Accepted (RFC 3428 section 7: the message is accepted, not
// yet delivered). It is delivered when the device registers (deliverQueued).
func (e *Edge) queue(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, msg *inFlight, c *caller, dev *actorpb.Device) {
	q := &actorpb.QueueMessage{
		MessageId: msg.id, Sender: c.user, Destination: dev.Id,
		From: req.From().Value(), To: req.To().Value(), Body: req.Body(),
		ExpiresAt: timestamppb.New(e.now().Add(e.cfg.Messages.QueueTTL)),
	}
	if ct := req.ContentType(); ct != nil {
		q.ContentType = ct.Value()
	}
	rep, err := e.cfg.Actors.Request(ctx, actors.KindMessaging, msg.account, q)
	qr, ok := rep.(*actorpb.QueueReply)
	if err != nil || !ok || qr.Error != nil {
		e.log.Warn("queueing a message failed", "account", msg.account, "device", dev.Id, "err", err)
		e.messageDone(msg, 503, "")
		e.respond(req, tx, 503, "Message Store Unavailable", [2]string{"Retry-After", "5"})
		return
	}
	e.messageDoneAs(msg, 202, "", "queued")
	e.respond(req, tx, 202, "Accepted")
}

// messageDone tells the supervisor how a message in flight ended; false
// means it was terminated meanwhile (fraud containment) and must not be
// reported delivered.
func (e *Edge) messageDone(m *inFlight, status int, target string) bool {
	disposition := "failed"
	switch {
	case status >= 200 && status < 300:
		disposition = "delivered"
	case status == 403:
		disposition = "refused"
	}
	return e.messageDoneAs(m, status, target, disposition)
}

func (e *Edge) messageDoneAs(m *inFlight, status int, target, disposition string) bool {
	ctx, cancel := e.actorCtx(context.Background())
	defer cancel()
	rep, err := e.cfg.Actors.Request(ctx, actors.KindMessaging, m.account, &actorpb.MessageDone{
		MessageId: m.id, Status: uint32(status), Disposition: disposition, Target: target, Node: e.cfg.Node,
	})
	if err != nil {
		e.log.Warn("reporting a message's end failed", "account", m.account, "message", m.id, "err", err)
		return true
	}
	r, ok := rep.(*actorpb.MessageDoneReply)
	return !ok || r.Error == nil || r.Error.Code != actorpb.Code_CODE_CONFLICT
}

// deliverQueued hands a device that just registered the messages queued
// for it, oldest first, as new MESSAGE requests from this edge to its
// contacts; each leaves the queue only once the device accepted it (2xx)
// or refused it for good (4xx other than 408, 5xx other than 503, 6xx).
// It runs in the background; Close waits for it.
func (e *Edge) deliverQueued(account string, dev *actorpb.Device) {
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		go func() {
			select {
			case <-e.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		actx, acancel := e.actorCtx(ctx)
		rep, err := e.cfg.Actors.Request(actx, actors.KindMessaging, account, &actorpb.TakeQueued{Device: dev.Id, Limit: 100})
		acancel()
		qm, ok := rep.(*actorpb.QueuedMessages)
		if err != nil || !ok || qm.Error != nil || len(qm.Messages) == 0 {
			return
		}
		actx, acancel = e.actorCtx(ctx)
		targets, rej := e.targets(actx, account, "", dev.Id, nil)
		acancel()
		if rej != nil {
			return
		}
		for _, q := range qm.Messages {
			status := e.sendQueued(ctx, q, targets)
			final := status >= 200 && status != 408 && status != 503
			result := "failed"
			if status >= 200 && status < 300 {
				result = "delivered"
			}
			e.metrics.queued.WithLabelValues(result).Inc()
			if !final {
				return // the device is not answering: the rest wait for its next registration
			}
			actx, acancel = e.actorCtx(ctx)
			_, err := e.cfg.Actors.Request(actx, actors.KindMessaging, account, &actorpb.DeliveredQueued{MessageIds: []string{q.MessageId}, Status: uint32(status)})
			acancel()
			if err != nil {
				e.log.Warn("acknowledging a queued message failed; it will be delivered again", "account", account, "message", q.MessageId, "err", err)
				return
			}
		}
	})
}

// sendQueued sends one queued message to the first of targets that
// answers finally, and returns that answer's status (0: none answered).
func (e *Edge) sendQueued(ctx context.Context, q *actorpb.QueueMessage, targets []target) int {
	for _, t := range targets {
		req := e.originate(sip.MESSAGE, t, q.From, q.To, q.MessageId)
		if q.ContentType != "" {
			req.AppendHeader(sip.NewHeader("Content-Type", q.ContentType))
		}
		req.SetBody(q.Body)
		if res, err := e.send1(ctx, req, e.cfg.FailoverTimeout*4); err == nil {
			return res.StatusCode
		}
	}
	return 0
}

// CheckSync sends NOTIFY with Event: check-sync (the de-facto event that
// makes a phone re-fetch its provisioning document, used by Polycom,
// Yealink, Cisco and Grandstream alike) to each of contacts of a device of
// account, reached at its binding's source ("transport:ip:port") or else
// its contact URI. It returns how many answered 2xx. The NOTIFY is
// out of any subscription, as phones accept it (RFC 6665 section 4.1.3
// forbids nothing here; there is no dialog to refresh).
func (e *Edge) CheckSync(ctx context.Context, account string, bindings []*actorpb.Binding) int {
	ok := 0
	domain := account + "." + e.cfg.Zone
	for _, b := range bindings {
		t, found := e.bindingTarget(b)
		if !found {
			continue
		}
		req := e.originate(sip.NOTIFY, t, "<sip:provisioning@"+domain+">;tag="+sip.GenerateTagN(16),
			"<sip:"+b.Device+"@"+domain+">", sip.GenerateTagN(24))
		req.AppendHeader(sip.NewHeader("Event", "check-sync"))
		req.AppendHeader(sip.NewHeader("Subscription-State", "terminated"))
		req.SetBody(nil)
		res, err := e.send1(ctx, req, e.cfg.FailoverTimeout*2)
		if err != nil {
			e.log.Info("check-sync NOTIFY not answered", "account", account, "device", b.Device, "dest", t.dest, "err", err)
			continue
		}
		if res.IsSuccess() {
			ok++
		}
	}
	return ok
}

// originate builds a request this edge sends as a user agent (not a
// proxied one): method to t, with From, To and Call-ID given, CSeq 1, our
// Via, sent from the listening socket.
func (e *Edge) originate(method sip.RequestMethod, t target, from, to, callID string) *sip.Request {
	req := sip.NewRequest(method, t.uri)
	req.SetTransport(strings.ToUpper(t.transport))
	req.SetDestination(t.dest)
	req.AppendHeader(e.via(req))
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("From", from))
	req.AppendHeader(sip.NewHeader("To", to))
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	if t.deliver != "" {
		req.AppendHeader(sip.NewHeader(hopHeader, e.hopValue(req, t.deliver)))
	}
	e.fromListener(req)
	return req
}

// send1 sends req in a client transaction and returns its final response
// within d.
func (e *Edge) send1(ctx context.Context, req *sip.Request, d time.Duration) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return e.cli.Do(ctx, req, sendAsIs)
}
