package sipedge

import (
	"errors"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/sipauth"
)

// Authentication is decided here and carried out in authenticate: the
// decisions read the request and the node's snapshots, and return what to
// do (authDecision); they send nothing, count nothing and log nothing.

// authRequest is what the decisions read of a request for account.
type authRequest struct {
	method   sip.RequestMethod
	account  string
	zone     string
	source   netip.Addr // invalid when the source is not an address
	from     sip.Uri
	ruri     sip.Uri
	creds    string // the credentials for the account's realm, "" for none
	accepted []string
}

// authDecision is what authenticate does with a request.
type authDecision struct {
	// caller is set when the request is authenticated.
	caller *caller
	// needDevice: a device must prove who it is; read it and decide again
	// with decideDigest.
	needDevice bool
	// challenge: answer with a digest challenge offering alg (stale: the
	// nonce ran out, RFC 7616 section 3.3).
	challenge  bool
	stale      bool
	alg        string
	code       int    // otherwise, answer with code and reason
	reason     string //
	failure    string // the authFailures label to count, "" for none
	warn, info string // what to log, "" for nothing
	// noteSHA256: the device answered SHA-256 for the first time.
	noteSHA256 bool
}

func refuse(code int, reason, failure string) authDecision {
	return authDecision{code: code, reason: reason, failure: failure}
}

// decideCaller is the first decision: a trusted trunk by source address
// (never for REGISTER), a From in another account's domain refused
// outright, or else a device that must prove who it is.
func decideCaller(r authRequest, acct *accountview.Account) authDecision {
	c := &caller{acct: acct, user: r.from.User}
	if r.method != sip.REGISTER && r.source.IsValid() {
		if t := acct.TrunkFor(r.source); t != nil {
			c.trunk = t
			return authDecision{caller: c}
		}
	}
	// Tenancy before credentials, whatever the device could answer.
	if a := AccountOf(r.from.Host, r.zone); a != "" && a != r.account {
		return refuse(403, "Cross-Account Request Refused", "tenancy")
	}
	return authDecision{needDevice: true}
}

// verifyFunc checks digest credentials (Authenticator.Verify).
type verifyFunc func(creds, method, realm string, ha1 sipauth.HA1Func) (sipauth.Result, error)

// decideDigest is the second decision, for a device: dev is the device
// the credentials (or the From) name, nil when the account has none (it is
// challenged alike, so that a scan learns nothing).
func decideDigest(r authRequest, acct *accountview.Account, dev *actorpb.Device, verify verifyFunc) authDecision {
	alg, ok := sipauth.Offer(digestSettings(acct, dev), r.accepted)
	if !ok {
		d := refuse(403, "Digest Algorithm Not Accepted Here", "")
		d.warn = "device is set to a digest algorithm this node does not accept (--sip-digest)"
		return d
	}
	if r.creds == "" {
		return authDecision{challenge: true, alg: alg}
	}
	res, err := verify(r.creds, string(r.method), r.account+"."+r.zone, func(user, answered string) ([]byte, error) {
		if dev == nil || dev.Id != user {
			return nil, sipauth.ErrUnknownUser
		}
		// Only the offer is accepted: no downgrade of a SHA-256 device.
		if answered != alg {
			return nil, sipauth.ErrAlgorithm
		}
		if answered == sipauth.SHA256 && len(dev.Ha1Sha256) > 0 {
			return dev.Ha1Sha256, nil
		}
		if answered == sipauth.MD5 && len(dev.Ha1Md5) > 0 {
			return dev.Ha1Md5, nil
		}
		return nil, sipauth.ErrAlgorithm
	})
	if err != nil {
		reason := authReason(err)
		switch {
		case errors.Is(err, sipauth.ErrMalformed):
			return refuse(400, "Malformed Credentials", reason)
		case errors.Is(err, sipauth.ErrStale):
			return authDecision{challenge: true, stale: true, alg: alg, failure: reason}
		}
		return authDecision{challenge: true, alg: alg, failure: reason, info: "digest authentication failed: " + reason}
	}
	if !sameURIHost(res.URI, r.ruri) {
		return refuse(400, "Digest URI Does Not Match The Request-URI", "uri")
	}
	// Tenancy: the device speaks for itself, in its own account.
	if AccountOf(r.from.Host, r.zone) != r.account {
		return refuse(403, "From Domain Is Not The Account Of The Credentials", "tenancy")
	}
	if r.from.User != res.Username {
		return refuse(403, "From User Does Not Match The Credentials", "identity")
	}
	return authDecision{
		caller:     &caller{acct: acct, user: r.from.User, device: dev},
		noteSHA256: res.Algorithm == sipauth.SHA256 && !dev.Sha256Answered,
	}
}
