package sipedge

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/sipauth"
)

// The authentication decisions, table-tested with no socket, no actor and
// no clock: a verifier stands in for the digest check.
func TestAuthDecisions(t *testing.T) {
	acct := &accountview.Account{ID: "acme", Record: &actorpb.Account{Id: "acme"},
		Trunks: []accountview.Trunk{{Trunk: &actorpb.Trunk{Id: "pbx"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}}
	alice := &actorpb.Device{Id: "alice", Ha1Md5: make([]byte, 16), Ha1Sha256: make([]byte, 32)}
	uri := func(s string) sip.Uri {
		var u sip.Uri
		if err := sip.ParseUri(s, &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	base := authRequest{method: sip.INVITE, account: "acme", zone: "sip.test", from: uri("sip:alice@acme.sip.test"),
		ruri: uri("sip:bob@acme.sip.test"), creds: "Digest ...", source: netip.MustParseAddr("198.51.100.7"),
		accepted: []string{sipauth.MD5, sipauth.SHA256}}
	// verified answers as sipauth does for alice's credentials, unless err.
	verified := func(alg string, err error) verifyFunc {
		return func(_, _, _ string, ha1 sipauth.HA1Func) (sipauth.Result, error) {
			if err != nil {
				return sipauth.Result{}, err
			}
			if _, err := ha1("alice", alg); err != nil {
				return sipauth.Result{}, err
			}
			return sipauth.Result{Username: "alice", URI: "sip:bob@acme.sip.test", Algorithm: alg}, nil
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*authRequest)
		dev    *actorpb.Device
		verify verifyFunc
		want   authDecision // compared on the fields below
	}{
		{"trunk by source", func(r *authRequest) { r.source = netip.MustParseAddr("192.0.2.9") }, nil, nil, authDecision{}},
		{"no trunk for REGISTER", func(r *authRequest) {
			r.source, r.method = netip.MustParseAddr("192.0.2.9"), sip.REGISTER
			r.creds = ""
		}, alice, nil,
			authDecision{challenge: true, alg: sipauth.MD5}},
		{"From in another account", func(r *authRequest) { r.from = uri("sip:alice@other.sip.test") }, alice, nil,
			authDecision{code: 403, failure: "tenancy"}},
		{"no credentials: challenge", func(r *authRequest) { r.creds = "" }, alice, nil, authDecision{challenge: true, alg: sipauth.MD5}},
		{"unknown user: challenged alike", nil, nil, verified(sipauth.MD5, nil), authDecision{challenge: true, alg: sipauth.MD5, failure: "unknown_user"}},
		{"stale nonce", nil, alice, verified("", sipauth.ErrStale), authDecision{challenge: true, stale: true, alg: sipauth.MD5, failure: "stale"}},
		{"malformed", nil, alice, verified("", sipauth.ErrMalformed), authDecision{code: 400, failure: "malformed"}},
		{"no downgrade of a SHA-256 device", nil, &actorpb.Device{Id: "alice", Sha256Answered: true, Ha1Md5: make([]byte, 16), Ha1Sha256: make([]byte, 32)},
			verified(sipauth.MD5, nil), authDecision{challenge: true, alg: sipauth.SHA256, failure: "algorithm"}},
		{"From user is not the credentials'", func(r *authRequest) { r.from = uri("sip:bob@acme.sip.test") }, alice, verified(sipauth.MD5, nil),
			authDecision{code: 403, failure: "identity"}},
		{"digest URI elsewhere", func(r *authRequest) { r.ruri = uri("sip:carol@acme.sip.test") }, alice, verified(sipauth.MD5, nil),
			authDecision{code: 400, failure: "uri"}},
		{"authenticated", nil, alice, verified(sipauth.MD5, nil), authDecision{caller: &caller{}}},
		{"first SHA-256 answer noted", func(r *authRequest) { r.accepted = []string{sipauth.SHA256} }, alice, verified(sipauth.SHA256, nil),
			authDecision{caller: &caller{}, noteSHA256: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			if tc.mutate != nil {
				tc.mutate(&r)
			}
			d := decideCaller(r, acct)
			if d.needDevice {
				d = decideDigest(r, acct, tc.dev, tc.verify)
			}
			got := [6]any{d.caller != nil, d.challenge, d.stale, d.alg, d.code, d.failure}
			want := [6]any{tc.want.caller != nil || tc.name == "trunk by source", tc.want.challenge, tc.want.stale, tc.want.alg, tc.want.code, tc.want.failure}
			if got != want {
				t.Fatalf("decision %+v, want (authenticated, challenge, stale, alg, code, failure) = %v", d, want)
			}
			if d.noteSHA256 != tc.want.noteSHA256 {
				t.Fatalf("noteSHA256 = %v, want %v", d.noteSHA256, tc.want.noteSHA256)
			}
			if tc.name == "trunk by source" && d.caller.trunk.GetId() != "pbx" {
				t.Fatalf("trunk caller = %+v", d.caller)
			}
		})
	}
}
