package sipedge

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/sipauth"
)

// onRequest is where every request enters the edge.
func (e *Edge) onRequest(req *sip.Request, tx sip.ServerTransaction) {
	e.metrics.requests.WithLabelValues(methodLabel(req.Method)).Inc()
	account, rej := CheckRequest(req, e.cfg.Zone)
	if rej != nil {
		if !req.IsAck() {
			e.rejectWith(req, tx, rej)
		}
		return
	}
	// A Route naming this proxy is consumed (RFC 3261 section 16.4).
	routed, ours := false, false
	var d dialogRoute
	if r := req.Route(); r != nil && e.isSelf(r.Address) {
		// Only dialogs this proxy record-routed go through it, proved by
		// the signature in its Route entry: a To tag and a Route naming
		// this node prove nothing (no open relay).
		d, ours = e.ownsDialog(r.Address, req)
		req.RemoveHeader("Route")
		routed = true
	}
	inDialog := req.To().Params.Has("tag")
	if ours {
		e.flows.touch(flowKey(req.Transport(), req.Source()), e.now())
	}
	switch {
	case req.IsAck():
		if ours {
			e.forwardAck(req, d)
		} else if routed {
			e.metrics.authFailures.WithLabelValues("dialog").Inc()
		}
		return
	case req.IsCancel():
		// A CANCEL that matched no transaction (sipgo answers the ones that do).
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	case inDialog && !routed:
		e.respond(req, tx, 403, "Not Routed Through This Proxy")
		return
	case inDialog && !ours:
		e.metrics.authFailures.WithLabelValues("dialog").Inc()
		e.respond(req, tx, 403, "Not A Dialog Of This Proxy")
		return
	case inDialog:
		e.inDialog(req, tx, d)
		return
	}
	// Out of dialog, this proxy picks the target itself: a route set the
	// sender preloaded goes no further (else any Route would be relayed).
	for req.RemoveHeader("Route") {
	}
	if req.Method == sip.OPTIONS && req.Recipient.User == "" {
		e.respondOptions(req, tx)
		return
	}
	if req.IsInvite() {
		// At once, so the caller stops retransmitting while the call is
		// authenticated and placed (RFC 3261 section 16.2).
		e.send(req, tx, sip.NewResponseFromRequest(req, 100, "Trying", nil))
	}
	var h hop
	if v := req.GetHeader(hopHeader); v != nil {
		// From a peer node, proved by its signature (the cluster's route
		// key): a call placed here, or a request for a flow held here
		// (its request-URI is the device's contact).
		var ok bool
		if h, ok = e.checkHop(req, v.Value()); !ok || h.deliver == "" && !req.IsInvite() {
			e.metrics.authFailures.WithLabelValues("hop").Inc()
			e.respond(req, tx, 403, "Hop Header From A Stranger")
			return
		}
		req.RemoveHeader(hopHeader)
		e.trustAddr(req.Source())
		if h.deliver != "" {
			e.deliver(req, tx, h.deliver)
			return
		}
	}
	if account == "" {
		e.respond(req, tx, 404, "Domain Not Served Here")
		return
	}
	if h.from != "" {
		e.hostInvite(req, tx, account)
		return
	}
	if req.IsInvite() && e.draining.Load() {
		// The node is going away: the caller tries another address of
		// the account's name, before any challenge.
		e.respond(req, tx, 503, "Node Draining", [2]string{"Retry-After", "5"})
		return
	}
	ctx, cancel := e.actorCtx(context.Background())
	defer cancel()
	c, ok := e.authenticate(ctx, req, tx, account)
	if !ok {
		return
	}
	if req.Method == sip.REGISTER {
		e.register(ctx, req, tx, account, c)
		return
	}
	e.routeInitial(ctx, req, tx, account, c)
}

// methods are the request methods the edge handles and counts by name.
var methods = []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.REGISTER, sip.OPTIONS, sip.MESSAGE,
	sip.INFO, sip.UPDATE, sip.PRACK, sip.REFER, sip.NOTIFY, sip.SUBSCRIBE, sip.PUBLISH}

func methodLabel(m sip.RequestMethod) string {
	if slices.Contains(methods, m) {
		return string(m)
	}
	return "other"
}

func (e *Edge) respondOptions(req *sip.Request, tx sip.ServerTransaction) {
	e.respond(req, tx, 200, "OK",
		[2]string{"Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, MESSAGE, INFO, UPDATE, PRACK, REFER, NOTIFY, SUBSCRIBE"},
		[2]string{"Accept", "application/sdp, text/plain"})
}

// caller is who sent an initial request: a device that passed digest, or
// a trusted trunk.
type caller struct {
	acct   *accountview.Account
	device *actorpb.Device // nil for a trunk
	trunk  *actorpb.Trunk  // nil for a device
	user   string          // the From user
}

// authenticate checks who sends req: a trusted trunk by source address
// (not for REGISTER), else a device by digest (401 for REGISTER, 407
// otherwise). Tenancy: a device speaks only for itself (From user) in its
// own account (From domain). It reads the node's snapshots, decides
// (decideCaller, decideDigest in authdecide.go), then carries the
// decision out.
func (e *Edge) authenticate(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, account string) (*caller, bool) {
	authHdr := "Proxy-Authorization"
	if req.Method == sip.REGISTER {
		authHdr = "Authorization"
	}
	r := authRequest{method: req.Method, account: account, zone: e.cfg.Zone, from: req.From().Address, ruri: req.Recipient, accepted: e.cfg.DigestAlgorithms}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		r.source = ap.Addr().Unmap()
	}
	// One request may carry credentials for several realms.
	var values []string
	for _, h := range req.GetHeaders(authHdr) {
		values = append(values, h.Value())
	}
	r.creds, _ = sipauth.ForRealm(values, account+"."+e.cfg.Zone)
	acct, ok := e.account(ctx, req, tx, account)
	if !ok {
		return nil, false
	}
	d := decideCaller(r, acct)
	if d.needDevice {
		// Whom the challenge is for: the credentials' user, else the From
		// user (who must match them), so that the challenge offers what
		// that device can answer.
		username := r.from.User
		if c, err := digest.ParseCredentials(r.creds); r.creds != "" && err == nil {
			username = c.Username
		}
		dev, err := e.cfg.Accounts.Device(ctx, account, username)
		if err != nil && !errors.Is(err, accountview.ErrNotFound) {
			e.log.Warn("account unavailable", "account", account, "err", err)
			e.respond(req, tx, 503, "Account Unavailable", [2]string{"Retry-After", "1"})
			return nil, false
		}
		d = decideDigest(r, acct, dev, e.cfg.Auth.Verify)
		if d.warn != "" {
			e.log.Warn(d.warn, "account", account, "user", username)
		}
		if d.info != "" {
			e.log.Info(d.info, "account", account, "user", username, "source", req.Source())
		}
	}
	if d.failure != "" {
		e.metrics.authFailures.WithLabelValues(d.failure).Inc()
	}
	switch {
	case d.caller != nil:
		if d.caller.trunk != nil {
			e.trustAddr(req.Source())
		}
		if d.noteSHA256 {
			e.noteSHA256(ctx, account, d.caller.device.Id)
		}
		return d.caller, true
	case d.challenge:
		e.challenge(req, tx, account, d.alg, d.stale)
	default:
		e.respond(req, tx, d.code, d.reason)
	}
	return nil, false
}

// challenge answers req with a digest challenge for the account's realm
// offering alg: 401 for REGISTER, 407 otherwise.
func (e *Edge) challenge(req *sip.Request, tx sip.ServerTransaction, account, alg string, stale bool) {
	chalHdr, chalCode, chalReason := "Proxy-Authenticate", 407, "Proxy Authentication Required"
	if req.Method == sip.REGISTER {
		chalHdr, chalCode, chalReason = "WWW-Authenticate", 401, "Unauthorized"
	}
	values, err := e.cfg.Auth.Challenge(account+"."+e.cfg.Zone, stale, alg)
	if err != nil {
		e.log.Error("making a digest challenge failed", "account", account, "err", err)
		e.respond(req, tx, 500, "Server Internal Error")
		return
	}
	res := sip.NewResponseFromRequest(req, chalCode, chalReason, nil)
	for _, v := range values {
		res.AppendHeader(sip.NewHeader(chalHdr, v))
	}
	e.send(req, tx, res)
}

// digestSettings is what sipauth.Offer needs of an account and a device
// (nil when unknown).
func digestSettings(acct *accountview.Account, d *actorpb.Device) sipauth.Settings {
	s := sipauth.Settings{Account: acct.Record.GetDigestAlgorithm()}
	if d != nil {
		s.Device, s.AnsweredSHA256 = d.DigestAlgorithm, d.Sha256Answered
	}
	return s
}

// noteSHA256 has the account actor remember that the device answered
// SHA-256, so that it is never offered MD5 again. A failure is logged
// and the request goes on: the device is challenged as before until a
// later answer is recorded.
func (e *Edge) noteSHA256(ctx context.Context, account, device string) {
	rep, err := e.cfg.Actors.Request(ctx, actors.KindAccount, account, &actorpb.DigestAnswered{Device: device, Algorithm: sipauth.SHA256})
	if r, ok := rep.(*actorpb.DeviceReply); err == nil && ok && r.Error != nil {
		err = errors.New(r.Error.Message)
	}
	if err != nil {
		e.log.Warn("recording a SHA-256 digest answer failed", "account", account, "device", device, "err", err)
	}
}

// sameURIHost compares the digest-uri with the request-URI (RFC 2617
// section 3.2.2.5) by scheme, user and host: proxies along the way may
// add parameters.
func sameURIHost(digestURI string, ruri sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Host, ruri.Host) && u.User == ruri.User
}

func authReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{sipauth.ErrMalformed, "malformed"}, {sipauth.ErrStale, "stale"}, {sipauth.ErrReplay, "replay"},
		{sipauth.ErrRealm, "realm"}, {sipauth.ErrUnknownUser, "unknown_user"}, {sipauth.ErrBadResponse, "bad_response"},
		{sipauth.ErrAlgorithm, "algorithm"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// account reads the account's snapshot; it answers the request itself
// when that fails.
func (e *Edge) account(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, account string) (*accountview.Account, bool) {
	acct, err := e.cfg.Accounts.Account(ctx, account)
	e.accountSeen(account, acct, err)
	switch {
	case errors.Is(err, accountview.ErrNotFound):
		e.respond(req, tx, 404, "Domain Not Served Here")
		return nil, false
	case err != nil:
		e.log.Warn("account unavailable", "account", account, "err", err)
		e.respond(req, tx, 503, "Account Unavailable", [2]string{"Retry-After", "1"})
		return nil, false
	}
	return acct, true
}

// register answers a REGISTER: the device's group actor keeps the
// bindings (RFC 3261 section 10.3).
func (e *Edge) register(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, account string, c *caller) {
	rule := RaiseToMinExpires
	if c.acct.Record.GetStrictMinExpires() {
		rule = StrictMinExpires
	}
	m, rej := RegisterRequest(req, c.device.Id, req.Source(), e.cfg.Node, rule)
	if rej != nil {
		e.rejectWith(req, tx, rej)
		return
	}
	rep, err := e.cfg.Actors.Request(ctx, actors.KindDeviceGroup, account+"/"+c.device.Group, m)
	if err != nil {
		e.log.Warn("registration failed", "account", account, "device", c.device.Id, "err", err)
		e.respond(req, tx, 503, "Registrar Unavailable", [2]string{"Retry-After", "1"})
		return
	}
	rr, ok := rep.(*actorpb.RegisterReply)
	if !ok {
		e.respond(req, tx, 500, "Unexpected Registrar Reply")
		return
	}
	if rr.Error != nil {
		switch rr.Error.Code {
		case actorpb.Code_CODE_CONFLICT:
			// Section 10.3 step 7: an old or repeated CSeq for this Call-ID.
			e.respond(req, tx, 500, "Out Of Order CSeq", [2]string{"Retry-After", "1"})
		case actorpb.Code_CODE_INVALID:
			e.respond(req, tx, 403, rr.Error.Message)
		case actorpb.Code_CODE_NOT_FOUND:
			e.respond(req, tx, 404, "Device Not In Its Group")
		default:
			e.respond(req, tx, 503, "Registrar Unavailable", [2]string{"Retry-After", "1"})
		}
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	now := e.now()
	var left time.Duration // the longest registration left
	for _, b := range rr.Bindings {
		left = max(left, b.ExpiresAt.AsTime().Sub(now))
		var uri sip.Uri
		if err := sip.ParseUri(b.Contact, &uri); err != nil {
			continue
		}
		left := int(b.ExpiresAt.AsTime().Sub(now).Seconds() + 0.5)
		res.AppendHeader(&sip.ContactHeader{Address: uri, Params: sip.HeaderParams{{K: "expires", V: strconv.Itoa(max(left, 0))}}})
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
	// Before the 200, so that a call right after it finds the device:
	// a registered device's flow is exempt from the flood limit, a stream
	// it came on may idle until its registration runs out, and the flow's
	// edge actor sends out here what any node has for the device.
	e.trustAddr(req.Source())
	e.flows.registered(flowKey(req.Transport(), req.Source()), account, c.device.Id, now, now.Add(left))
	if !strings.EqualFold(req.Transport(), "UDP") {
		e.streams.registered(req.Source(), left)
	}
	e.send(req, tx, res)
	if len(rr.Bindings) > 0 {
		// Messages stored while it was away (RFC 3428 store-and-forward).
		e.deliverQueued(account, c.device)
	}
}

// consumeCredentials removes from out the Authorization and
// Proxy-Authorization values for this edge's own realms (account DNS
// names in the zone); credentials for other realms are left for the hop
// they are meant for (RFC 3261 section 22.3).
func (e *Edge) consumeCredentials(out *sip.Request) {
	for _, name := range []string{"Proxy-Authorization", "Authorization"} {
		hs := out.GetHeaders(name)
		keep := slices.DeleteFunc(slices.Clone(hs), func(h sip.Header) bool {
			c, err := digest.ParseCredentials(h.Value())
			return err == nil && e.ownRealm(c.Realm)
		})
		if len(keep) == len(hs) {
			continue
		}
		for out.RemoveHeader(name) {
		}
		for _, h := range keep {
			out.AppendHeader(sip.NewHeader(name, h.Value()))
		}
	}
}

// ownRealm says whether realm is this edge's: the zone or a name in it.
func (e *Edge) ownRealm(realm string) bool {
	realm = strings.TrimSuffix(strings.ToLower(realm), ".")
	return realm == e.cfg.Zone || strings.HasSuffix(realm, "."+e.cfg.Zone)
}
