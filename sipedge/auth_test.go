package sipedge_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/sipauth"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

const (
	authDevice   = "alice"
	authPassword = "alice-password-1"
	authDomain   = testAccount + "." + testZone
)

// registrarActors stands in for the account actor (edge view, digest
// answers) and alice's devicegroup actor (bindings), as the real ones
// answer them.
type registrarActors struct {
	fakeActors
	clock clock.Clock

	mu        sync.Mutex
	account   *actorpb.Account
	device    *actorpb.Device
	registers []*actorpb.Register
}

func newRegistrarActors() *registrarActors {
	h := credential.Derive(authDevice, authDomain, authPassword)
	return &registrarActors{
		account: &actorpb.Account{Id: testAccount, DnsName: authDomain},
		device:  &actorpb.Device{Id: authDevice, Group: "hq", Ha1Md5: h.MD5, Ha1Sha256: h.SHA256},
	}
}

func (f *registrarActors) Request(ctx context.Context, kind, identity string, msg proto.Message) (proto.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m := msg.(type) {
	case *actorpb.GetSecretEdgeView:
		v := &actorpb.SecretEdgeView{Account: proto.Clone(f.account).(*actorpb.Account)}
		if m.DeviceOnly {
			v = &actorpb.SecretEdgeView{}
		}
		if m.Device == f.device.Id {
			v.Device, v.Found = proto.Clone(f.device).(*actorpb.Device), true
		}
		return v, nil
	case *actorpb.DigestAnswered:
		if m.Device == f.device.Id && m.Algorithm == sipauth.SHA256 {
			f.device.Sha256Answered = true
		}
		return &actorpb.DeviceReply{Device: f.device}, nil
	case *actorpb.Register:
		f.registers = append(f.registers, m)
		out := &actorpb.RegisterReply{}
		for _, c := range m.Contacts {
			if c.Expires > 0 {
				out.Bindings = append(out.Bindings, &actorpb.Binding{Device: m.Device, Contact: c.Uri,
					ExpiresAt: timestamppb.New(f.clock.Now().Add(time.Duration(c.Expires) * time.Second))})
			}
		}
		return out, nil
	}
	return f.fakeActors.Request(ctx, kind, identity, msg)
}

func (f *registrarActors) Tell(kind, identity string, msg proto.Message) error {
	_, err := f.Request(context.Background(), kind, identity, msg)
	return err
}

func (f *registrarActors) RequestWithHint(ctx context.Context, kind, identity string, _ actors.Hint, msg proto.Message) (proto.Message, error) {
	return f.Request(ctx, kind, identity, msg)
}

// set changes the stored account and device under the lock.
func (f *registrarActors) set(change func(a *actorpb.Account, d *actorpb.Device)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.account, f.device)
}

func (f *registrarActors) registered() []*actorpb.Register {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*actorpb.Register(nil), f.registers...)
}

// registrar is an edge in front of registrarActors and alice's phone.
type registrar struct {
	t      *testing.T
	te     *testEdge
	actors *registrarActors
	phone  *udpPeer
	cseq   int
}

func startRegistrar(t *testing.T) *registrar {
	t.Helper()
	fa := newRegistrarActors()
	te := startEdge(t, func(c *sipedge.Config) {
		fa.clock = c.Clock
		c.Actors = fa
	})
	return &registrar{t: t, te: te, actors: fa, phone: newUDPPeer(t, te, "127.0.0.1")}
}

// register sends alice's REGISTER (Expires as given, Authorization when
// not "") on callID and returns the final response.
func (r *registrar) register(callID, expires, authorization string) *sip.Response {
	r.t.Helper()
	r.cseq++
	extra := ""
	if authorization != "" {
		extra = "Authorization: " + authorization + "\n"
	}
	r.phone.send(aliceRegister(r.phone.addr(), unique("b"), callID, r.cseq, expires, extra))
	res := r.phone.final(callID, replyWait)
	if res == nil {
		r.t.Fatalf("no final response to REGISTER %s", callID)
	}
	return res
}

// aliceRegister is alice's REGISTER from addr, with the given Via branch
// (after the magic cookie), Call-ID, CSeq, Expires and extra header lines.
func aliceRegister(addr, branch, callID string, cseq int, expires, extra string) []byte {
	return crlf(fmt.Sprintf("REGISTER sip:%[1]s SIP/2.0\nVia: SIP/2.0/UDP %[2]s;branch=z9hG4bK%[3]s\nMax-Forwards: 70\n"+
		"From: <sip:%[4]s@%[1]s>;tag=t1\nTo: <sip:%[4]s@%[1]s>\nCall-ID: %[5]s\nCSeq: %[6]d REGISTER\n"+
		"Contact: <sip:%[4]s@%[2]s>\nExpires: %[7]s\n%[8]sContent-Length: 0\n\n",
		authDomain, addr, branch, authDevice, callID, cseq, expires, extra))
}

// challenges returns the parsed WWW-Authenticate fields of a 401.
func challenges(t *testing.T, res *sip.Response) []*digest.Challenge {
	t.Helper()
	if res.StatusCode != 401 {
		t.Fatalf("got %d %s, want 401 with a challenge", res.StatusCode, res.Reason)
	}
	var out []*digest.Challenge
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatalf("parsing %q: %v", h.Value(), err)
		}
		out = append(out, c)
	}
	return out
}

// onlyChallenge returns the one challenge of a 401 and checks it is for alg.
func onlyChallenge(t *testing.T, res *sip.Response, alg string) *digest.Challenge {
	t.Helper()
	cs := challenges(t, res)
	if len(cs) != 1 || cs[0].Algorithm != alg {
		var got []string
		for _, c := range cs {
			got = append(got, c.Algorithm)
		}
		t.Fatalf("challenged with %q, want %s alone", got, alg)
	}
	return cs[0]
}

// answer is alice's Authorization for ch computed with algorithm alg
// (which may differ from the challenge's, as a downgrading client would).
func answer(t *testing.T, ch *digest.Challenge, alg string) string {
	t.Helper()
	c := *ch
	c.Algorithm = alg
	cred, err := digest.Digest(&c, digest.Options{Method: "REGISTER", URI: "sip:" + authDomain,
		Username: authDevice, Password: authPassword, Count: 1, Cnonce: "0a4f113b"})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

// login registers alice: a challenge that must offer alg alone, then the
// answer, which must be 200.
func (r *registrar) login(alg string) {
	r.t.Helper()
	callID := unique("login")
	ch := onlyChallenge(r.t, r.register(callID, "600", ""), alg)
	if res := r.register(callID, "600", answer(r.t, ch, alg)); res.StatusCode != 200 {
		r.t.Fatalf("answering the %s challenge got %d %s, want 200", alg, res.StatusCode, res.Reason)
	}
}

// TestAuth_RFC8760_MD5AloneByDefault: with nothing set, the challenge
// offers MD5 alone (baresip 1.0 fails with "Function not implemented"
// on a SHA-256 field beside it), and the MD5 answer registers.
func TestAuth_RFC8760_MD5AloneByDefault(t *testing.T) {
	r := startRegistrar(t)
	r.login(sipauth.MD5)
	if n := len(r.actors.registered()); n != 1 {
		t.Fatalf("%d Registers reached the registrar, want 1", n)
	}
	// An INVITE's 407 follows the same rule.
	callID := unique("inv")
	r.phone.send(crlf(inviteTo(r.phone.addr(), "sip:bob@"+authDomain, callID, 70)))
	res := r.phone.final(callID, replyWait)
	if res == nil || res.StatusCode != 407 {
		t.Fatalf("INVITE without credentials got %v, want 407", res)
	}
	hs := res.GetHeaders("Proxy-Authenticate")
	if len(hs) != 1 || !strings.Contains(hs[0].Value(), "algorithm=MD5") {
		t.Fatalf("Proxy-Authenticate = %v, want MD5 alone", hs)
	}
}

// TestAuth_RFC8760_SHA256AloneWhenSet: a device, or an account, set to
// SHA-256 is challenged with SHA-256 alone.
func TestAuth_RFC8760_SHA256AloneWhenSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(a *actorpb.Account, d *actorpb.Device)
	}{
		{"device", func(_ *actorpb.Account, d *actorpb.Device) { d.DigestAlgorithm = sipauth.SHA256 }},
		{"account", func(a *actorpb.Account, _ *actorpb.Device) { a.DigestAlgorithm = sipauth.SHA256 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRegistrar(t)
			r.actors.set(tc.set)
			r.login(sipauth.SHA256)
		})
	}
	t.Run("device MD5 beats account SHA-256", func(t *testing.T) {
		r := startRegistrar(t)
		r.actors.set(func(a *actorpb.Account, d *actorpb.Device) {
			a.DigestAlgorithm, d.DigestAlgorithm = sipauth.SHA256, sipauth.MD5
		})
		r.login(sipauth.MD5)
	})
}

// TestAuth_SHA256StickyOnceAnswered: once a device has answered SHA-256,
// the edge has the account actor remember it, and the device is offered
// SHA-256 alone even after the setting that led to it is gone.
func TestAuth_SHA256StickyOnceAnswered(t *testing.T) {
	r := startRegistrar(t)
	r.actors.set(func(a *actorpb.Account, _ *actorpb.Device) { a.DigestAlgorithm = sipauth.SHA256 })
	r.login(sipauth.SHA256)
	r.actors.set(func(a *actorpb.Account, d *actorpb.Device) {
		if !d.Sha256Answered {
			t.Fatal("the SHA-256 answer was not recorded (DigestAnswered)")
		}
		a.DigestAlgorithm = ""
	})
	r.login(sipauth.SHA256)
}

// TestAuth_MD5AnswerRefusedFromSHA256Device: a device set to SHA-256, or
// that answered it before, is never downgraded: an MD5 answer to its
// nonce (right password) is refused with a new SHA-256 challenge, counted
// as an algorithm failure, and registers nothing.
func TestAuth_MD5AnswerRefusedFromSHA256Device(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(a *actorpb.Account, d *actorpb.Device)
	}{
		{"set", func(_ *actorpb.Account, d *actorpb.Device) { d.DigestAlgorithm = sipauth.SHA256 }},
		{"answered before", func(_ *actorpb.Account, d *actorpb.Device) { d.Sha256Answered = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRegistrar(t)
			r.actors.set(tc.set)
			callID := unique("down")
			ch := onlyChallenge(t, r.register(callID, "600", ""), sipauth.SHA256)
			onlyChallenge(t, r.register(callID, "600", answer(t, ch, sipauth.MD5)), sipauth.SHA256)
			if n := len(r.actors.registered()); n != 0 {
				t.Fatalf("%d Registers reached the registrar after an MD5 answer, want 0", n)
			}
			if got := r.te.counter(t, "switchboard_sip_auth_failures_total", map[string]string{"reason": "algorithm"}); got != 1 {
				t.Fatalf("algorithm failures = %v, want 1", got)
			}
		})
	}
	t.Run("SHA-256 answer to a default device's MD5 offer", func(t *testing.T) {
		r := startRegistrar(t)
		callID := unique("up")
		ch := onlyChallenge(t, r.register(callID, "600", ""), sipauth.MD5)
		onlyChallenge(t, r.register(callID, "600", answer(t, ch, sipauth.SHA256)), sipauth.MD5)
		if n := len(r.actors.registered()); n != 0 {
			t.Fatalf("%d Registers reached the registrar after an answer that was not offered, want 0", n)
		}
	})
}

// TestAuth_NodeAcceptingOnlyMD5RefusesSHA256Device: a node run with
// --sip-digest MD5 cannot challenge a SHA-256 device without a
// downgrade, so it answers 403 instead.
func TestAuth_NodeAcceptingOnlyMD5RefusesSHA256Device(t *testing.T) {
	fa := newRegistrarActors()
	te := startEdge(t, func(c *sipedge.Config) {
		fa.clock = c.Clock
		c.Actors = fa
		c.DigestAlgorithms = []string{sipauth.MD5}
	})
	r := &registrar{t: t, te: te, actors: fa, phone: newUDPPeer(t, te, "127.0.0.1")}
	r.actors.set(func(_ *actorpb.Account, d *actorpb.Device) { d.DigestAlgorithm = sipauth.SHA256 })
	if res := r.register(unique("md5only"), "600", ""); res.StatusCode != 403 {
		t.Fatalf("got %d %s, want 403", res.StatusCode, res.Reason)
	}
}

// TestRegister_RFC3261_10_3_7_ShortExpiresRaisedOrStrict423: Expires 15
// (sipsak's -x 15) registers for MinExpires and the 200 says so in the
// contact's expires; an account with strict_min_expires answers 423 with
// Min-Expires and registers nothing.
func TestRegister_RFC3261_10_3_7_ShortExpiresRaisedOrStrict423(t *testing.T) {
	login := func(r *registrar) *sip.Response {
		callID := unique("short")
		ch := onlyChallenge(t, r.register(callID, "15", ""), sipauth.MD5)
		return r.register(callID, "15", answer(t, ch, sipauth.MD5))
	}
	t.Run("default raises", func(t *testing.T) {
		r := startRegistrar(t)
		res := login(r)
		if res.StatusCode != 200 {
			t.Fatalf("got %d %s, want 200", res.StatusCode, res.Reason)
		}
		c := res.Contact()
		if c == nil {
			t.Fatal("200 without a Contact")
		}
		if v, _ := c.Params.Get("expires"); v != fmt.Sprint(sipedge.MinExpires) {
			t.Fatalf("Contact %s: expires %q, want %d", c.Value(), v, sipedge.MinExpires)
		}
		regs := r.actors.registered()
		if len(regs) != 1 || len(regs[0].Contacts) != 1 || regs[0].Contacts[0].Expires != sipedge.MinExpires {
			t.Fatalf("Registers = %v, want one contact for %d s", regs, sipedge.MinExpires)
		}
	})
	t.Run("strict 423", func(t *testing.T) {
		r := startRegistrar(t)
		r.actors.set(func(a *actorpb.Account, _ *actorpb.Device) { a.StrictMinExpires = true })
		res := login(r)
		if res.StatusCode != 423 {
			t.Fatalf("got %d %s, want 423", res.StatusCode, res.Reason)
		}
		if h := res.GetHeader("Min-Expires"); h == nil || h.Value() != fmt.Sprint(sipedge.MinExpires) {
			t.Fatalf("Min-Expires = %v, want %d", h, sipedge.MinExpires)
		}
		if n := len(r.actors.registered()); n != 0 {
			t.Fatalf("%d Registers reached the registrar, want 0", n)
		}
	})
}
