package sipauth_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icholy/digest"

	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/credential"
	"github.com/switchboard-pbx/switchboard/sipauth"
)

const (
	testRealm    = "acme.sip.example.com"
	testURI      = "sip:acme.sip.example.com"
	testUser     = "alice"
	testPassword = "correct horse battery"
	testCnonce   = "0a4f113b"
)

func testStart() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

// fixture is an Authenticator on a fake clock with one user, alice, whose
// HA1s come from package credential as the store would hold them.
type fixture struct {
	a     *sipauth.Authenticator
	clock *clock.Fake
	ha1   map[string]credential.HA1 // by username
}

func newFixture(t *testing.T, mutate ...func(*sipauth.Config)) *fixture {
	t.Helper()
	f := &fixture{
		clock: clock.NewFake(testStart()),
		ha1:   map[string]credential.HA1{testUser: credential.Derive(testUser, testRealm, testPassword)},
	}
	cfg := sipauth.DefaultConfig()
	cfg.Secret = []byte("cluster secret, 32 bytes long!!!")
	cfg.Clock = f.clock
	cfg.Rand = rand.NewChaCha8([32]byte{1})
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := sipauth.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.a = a
	return f
}

func (f *fixture) lookup(username, algorithm string) ([]byte, error) {
	h, ok := f.ha1[username]
	if !ok {
		return nil, fmt.Errorf("%w: %q", sipauth.ErrUnknownUser, username)
	}
	switch algorithm {
	case sipauth.MD5:
		return h.MD5, nil
	case sipauth.SHA256:
		return h.SHA256, nil
	}
	return nil, fmt.Errorf("%w: no %s HA1", sipauth.ErrUnknownUser, algorithm)
}

func (f *fixture) verify(header string) (sipauth.Result, error) {
	return f.a.Verify(header, "REGISTER", testRealm, f.lookup)
}

// challenge asks for a challenge and returns the one of algorithm alg,
// parsed as a client would.
func (f *fixture) challenge(t *testing.T, alg string) *digest.Challenge {
	t.Helper()
	values, err := f.a.Challenge(testRealm, false, sipauth.SHA256, sipauth.MD5)
	if err != nil {
		t.Fatalf("Challenge: %v", err)
	}
	for _, v := range values {
		c, err := digest.ParseChallenge(v)
		if err != nil {
			t.Fatalf("ParseChallenge(%q): %v", v, err)
		}
		if c.Algorithm == alg {
			return c
		}
	}
	t.Fatalf("no %s challenge in %q", alg, values)
	return nil
}

// answer computes the client's Authorization value with icholy/digest from
// the password, independently of the server's HA1 code.
func answer(t *testing.T, ch *digest.Challenge, user, password string, nc int) string {
	t.Helper()
	cred, err := digest.Digest(ch, digest.Options{
		Method: "REGISTER", URI: testURI, Username: user, Password: password,
		Count: nc, Cnonce: testCnonce,
	})
	if err != nil {
		t.Fatalf("digest.Digest: %v", err)
	}
	return cred.String()
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// TestChallenge_RFC8760_2_4_OneFieldPerAlgorithmWithQopAuth: one field per
// algorithm asked for, in the order asked (RFC 8760 section 2.4: the
// preferred first), sharing one nonce, each with qop="auth".
func TestChallenge_RFC8760_2_4_OneFieldPerAlgorithmWithQopAuth(t *testing.T) {
	for _, stale := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale=%v", stale), func(t *testing.T) {
			f := newFixture(t)
			values, err := f.a.Challenge(testRealm, stale, sipauth.SHA256, sipauth.MD5)
			if err != nil {
				t.Fatal(err)
			}
			if len(values) != 2 {
				t.Fatalf("got %d challenges, want 2: %q", len(values), values)
			}
			var nonces []string
			for i, alg := range []string{sipauth.SHA256, sipauth.MD5} {
				c, err := digest.ParseChallenge(values[i])
				if err != nil {
					t.Fatalf("ParseChallenge(%q): %v", values[i], err)
				}
				if c.Algorithm != alg || c.Realm != testRealm || !c.SupportsQOP("auth") || len(c.QOP) != 1 || c.Stale != stale || c.Nonce == "" {
					t.Errorf("challenge %d = %+v, want algorithm %s, realm %s, qop auth, stale %v", i, c, alg, testRealm, stale)
				}
				nonces = append(nonces, c.Nonce)
			}
			if nonces[0] != nonces[1] {
				t.Errorf("the two challenges carry nonces %q and %q, want one", nonces[0], nonces[1])
			}
		})
	}
}

func TestChallenge_FreshNonceEachTime(t *testing.T) {
	f := newFixture(t)
	seen := map[string]bool{}
	for range 100 {
		n := f.challenge(t, sipauth.SHA256).Nonce
		if seen[n] {
			t.Fatalf("nonce %q issued twice at the same instant", n)
		}
		seen[n] = true
	}
}

func TestChallenge_Errors(t *testing.T) {
	f := newFixture(t)
	for _, realm := range []string{"", "bad\x00realm", "bad\nrealm", "\xff"} {
		if _, err := f.a.Challenge(realm, false, sipauth.MD5); err == nil {
			t.Errorf("Challenge(%q) succeeded, want an error", realm)
		}
	}
	for _, algs := range [][]string{nil, {"SHA-512"}, {sipauth.MD5, "md5"}} {
		if values, err := f.a.Challenge(testRealm, false, algs...); err == nil {
			t.Errorf("Challenge with algorithms %q = %q, want an error", algs, values)
		}
	}
	// "short" fills no boot epoch: New itself fails.
	if _, err := sipauth.New(sipauth.Config{Secret: []byte(strings.Repeat("s", 16)), Rand: strings.NewReader("short")}); err == nil {
		t.Error("New with a failing Rand succeeded, want an error")
	}
	// Enough for the epoch, not for a nonce: Challenge fails.
	broken := newFixture(t, func(c *sipauth.Config) { c.Rand = strings.NewReader("8 bytes!short") })
	if _, err := broken.a.Challenge(testRealm, false, sipauth.SHA256, sipauth.MD5); err == nil {
		t.Error("Challenge with a failing Rand succeeded, want an error")
	}
}

func TestVerify_RFC8760_RFC2617_ValidCredentials(t *testing.T) {
	for _, alg := range []string{sipauth.SHA256, sipauth.MD5} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t)
			res, err := f.verify(answer(t, f.challenge(t, alg), testUser, testPassword, 1))
			wantErr(t, err, nil)
			want := sipauth.Result{Username: testUser, Algorithm: alg, URI: testURI}
			if res != want {
				t.Errorf("Result = %+v, want %+v", res, want)
			}
		})
	}
}

// RFC 2617 section 3.2.1: an absent algorithm means MD5; RFC 3261 section
// 7.3.1: tokens compare case-insensitively.
func TestVerify_RFC2617_3_2_1_AlgorithmAbsentOrOtherCase(t *testing.T) {
	tests := []struct{ sent, want string }{
		{"", sipauth.MD5},
		{"md5", sipauth.MD5},
		{"sha-256", sipauth.SHA256},
	}
	for _, tt := range tests {
		t.Run(tt.sent, func(t *testing.T) {
			f := newFixture(t)
			ch := f.challenge(t, sipauth.MD5)
			ch.Algorithm = tt.sent
			res, err := f.verify(answer(t, ch, testUser, testPassword, 1))
			wantErr(t, err, nil)
			if res.Algorithm != tt.want {
				t.Errorf("Algorithm = %q, want %q", res.Algorithm, tt.want)
			}
		})
	}
}

func TestVerify_RFC7616_3_4_1_WrongPassword(t *testing.T) {
	for _, alg := range []string{sipauth.SHA256, sipauth.MD5} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t)
			res, err := f.verify(answer(t, f.challenge(t, alg), testUser, "wrong horse battery", 1))
			wantErr(t, err, sipauth.ErrBadResponse)
			if res.Username != testUser {
				t.Errorf("Result.Username = %q, want %q for failure counting", res.Username, testUser)
			}
		})
	}
}

// The response covers method and digest-uri (A2): changing either breaks it.
func TestVerify_RFC2617_3_2_2_3_ResponseCoversMethodAndURI(t *testing.T) {
	f := newFixture(t)
	h := answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1)
	_, err := f.a.Verify(h, "INVITE", testRealm, f.lookup)
	wantErr(t, err, sipauth.ErrBadResponse)
	_, err = f.verify(strings.Replace(h, testURI, "sip:evil.example.com", 1))
	wantErr(t, err, sipauth.ErrBadResponse)
}

func TestVerify_UnknownUser(t *testing.T) {
	f := newFixture(t)
	res, err := f.verify(answer(t, f.challenge(t, sipauth.SHA256), "mallory", testPassword, 1))
	wantErr(t, err, sipauth.ErrUnknownUser)
	if res.Username != "mallory" {
		t.Errorf("Result.Username = %q, want mallory", res.Username)
	}
}

// A store that fails is not an authentication failure: its error comes
// back, and no sentinel of this package matches it.
func TestVerify_LookupFailurePassesThrough(t *testing.T) {
	f := newFixture(t)
	storeDown := errors.New("store unavailable")
	_, err := f.a.Verify(answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1), "REGISTER", testRealm,
		func(string, string) ([]byte, error) { return nil, storeDown })
	wantErr(t, err, storeDown)
	for _, s := range []error{sipauth.ErrUnknownUser, sipauth.ErrBadResponse, sipauth.ErrMalformed, sipauth.ErrStale} {
		if errors.Is(err, s) {
			t.Errorf("store failure %v matches %v", err, s)
		}
	}
}

func TestVerify_StoredHA1OfWrongLengthIsAnError(t *testing.T) {
	f := newFixture(t)
	_, err := f.a.Verify(answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1), "REGISTER", testRealm,
		func(string, string) ([]byte, error) { return make([]byte, 16), nil })
	if err == nil || errors.Is(err, sipauth.ErrBadResponse) {
		t.Errorf("err = %v, want a store error, not a credential failure", err)
	}
}

// RFC 3261 section 22.1: the realm defines the protection space; a
// credential for one realm is no good in another.
func TestVerify_RFC3261_22_1_WrongRealm(t *testing.T) {
	f := newFixture(t)
	h := answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1)
	_, err := f.a.Verify(h, "REGISTER", "other.sip.example.com", f.lookup)
	wantErr(t, err, sipauth.ErrRealm)
}

// A nonce is bound to the realm it was issued for: answering it under
// another realm (with that realm's right HA1) is not accepted.
func TestVerify_NonceBoundToRealm(t *testing.T) {
	f := newFixture(t)
	const other = "other.sip.example.com"
	f.ha1[testUser] = credential.Derive(testUser, other, testPassword)
	ch := f.challenge(t, sipauth.SHA256) // issued for testRealm
	ch.Realm = other
	_, err := f.a.Verify(answer(t, ch, testUser, testPassword, 1), "REGISTER", other, f.lookup)
	wantErr(t, err, sipauth.ErrStale)
}

// RFC 7616 section 3.3: stale=true only when the nonce is no good but the
// digest for it is right; a wrong digest on an old nonce is a failure.
func TestVerify_RFC7616_3_3_StaleAfterTTL(t *testing.T) {
	const ttl = 5 * time.Minute
	tests := []struct {
		name     string
		advance  time.Duration
		password string
		want     error
	}{
		{"at TTL", ttl, testPassword, nil},
		{"past TTL", ttl + time.Nanosecond, testPassword, sipauth.ErrStale},
		{"past TTL wrong password", ttl + time.Nanosecond, "wrong horse battery", sipauth.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *sipauth.Config) { c.NonceTTL = ttl })
			h := answer(t, f.challenge(t, sipauth.SHA256), testUser, tt.password, 1)
			f.clock.Advance(tt.advance)
			_, err := f.verify(h)
			wantErr(t, err, tt.want)
		})
	}
}

// A node whose clock runs ahead issues nonces "from the future"; within
// one TTL of skew they are accepted, beyond it they are stale.
func TestVerify_ClockSkewBetweenNodes(t *testing.T) {
	for _, tt := range []struct {
		skew time.Duration
		want error
	}{
		{time.Minute, nil},
		{5*time.Minute + time.Second, sipauth.ErrStale},
	} {
		t.Run(tt.skew.String(), func(t *testing.T) {
			f := newFixture(t)
			ahead := newFixture(t)
			ahead.clock.Advance(tt.skew)
			_, err := f.verify(answer(t, ahead.challenge(t, sipauth.SHA256), testUser, testPassword, 1))
			wantErr(t, err, tt.want)
		})
	}
}

// Nodes sharing the secret accept each other's nonces (stateless nonces).
func TestVerify_NonceFromAnotherNodeWithSameSecret(t *testing.T) {
	issuer, verifier := newFixture(t), newFixture(t)
	_, err := verifier.verify(answer(t, issuer.challenge(t, sipauth.MD5), testUser, testPassword, 1))
	wantErr(t, err, nil)
}

func TestVerify_NonceFromAnotherSecretRefused(t *testing.T) {
	f := newFixture(t)
	stranger := newFixture(t, func(c *sipauth.Config) { c.Secret = []byte("another cluster's secret, 32 b!!") })
	ch := stranger.challenge(t, sipauth.SHA256)
	_, err := f.verify(answer(t, ch, testUser, testPassword, 1))
	wantErr(t, err, sipauth.ErrStale)
	_, err = f.verify(answer(t, ch, testUser, "wrong horse battery", 1))
	wantErr(t, err, sipauth.ErrBadResponse)
}

func TestVerify_TamperedNonceRefused(t *testing.T) {
	f := newFixture(t)
	ch := f.challenge(t, sipauth.SHA256)
	for i := range len(ch.Nonce) {
		tampered := *ch
		b := []byte(ch.Nonce)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		tampered.Nonce = string(b)
		_, err := f.verify(answer(t, &tampered, testUser, testPassword, 1))
		if !errors.Is(err, sipauth.ErrStale) {
			t.Fatalf("nonce altered at %d: err = %v, want ErrStale", i, err)
		}
	}
	for _, n := range []string{"x", ch.Nonce + "A", ch.Nonce[1:], strings.Repeat("A", len(ch.Nonce)), "!" + ch.Nonce[1:]} {
		tampered := *ch
		tampered.Nonce = n
		_, err := f.verify(answer(t, &tampered, testUser, testPassword, 1))
		wantErr(t, err, sipauth.ErrStale)
	}
}

func TestVerify_RFC7616_3_4_NonceCountReplayRefused(t *testing.T) {
	f := newFixture(t)
	ch := f.challenge(t, sipauth.SHA256)
	steps := []struct {
		nc   int
		want error
	}{
		{1, nil},
		{1, sipauth.ErrReplay},
		{2, nil},
		{2, sipauth.ErrReplay},
		{1, sipauth.ErrReplay},
		{7, nil},
		{3, sipauth.ErrReplay},
		{8, nil},
	}
	for i, s := range steps {
		_, err := f.verify(answer(t, ch, testUser, testPassword, s.nc))
		if s.want == nil && err != nil || s.want != nil && !errors.Is(err, s.want) {
			t.Fatalf("step %d nc=%d: err = %v, want %v", i, s.nc, err, s.want)
		}
	}
}

// Only a request with the right response moves a nonce's nc: someone
// without the password cannot burn a client's nonce by sending a high nc.
func TestVerify_RFC7616_3_4_BadResponseDoesNotAdvanceNonceCount(t *testing.T) {
	f := newFixture(t)
	ch := f.challenge(t, sipauth.SHA256)
	_, err := f.verify(answer(t, ch, testUser, "wrong horse battery", 0x7fffffff))
	wantErr(t, err, sipauth.ErrBadResponse)
	_, err = f.verify(answer(t, ch, testUser, testPassword, 1))
	wantErr(t, err, nil)
}

// With a full replay table, a nonce whose state was evicted is stale, never
// accepted again at an nc it may already have used.
func TestVerify_ReplayWindowEvictionAnswersStale(t *testing.T) {
	f := newFixture(t, func(c *sipauth.Config) { c.ReplayWindow = 1 })
	first := f.challenge(t, sipauth.SHA256)
	f.clock.Advance(time.Second)
	second := f.challenge(t, sipauth.SHA256)
	wantErr(t, errOf(f.verify(answer(t, first, testUser, testPassword, 1))), nil)
	wantErr(t, errOf(f.verify(answer(t, second, testUser, testPassword, 1))), nil) // evicts first
	wantErr(t, errOf(f.verify(answer(t, first, testUser, testPassword, 1))), sipauth.ErrStale)
	wantErr(t, errOf(f.verify(answer(t, second, testUser, testPassword, 1))), sipauth.ErrReplay)
}

// errOf drops the Result of Verify.
func errOf(_ sipauth.Result, err error) error { return err }

// Of many copies of one request verified at once, exactly one is accepted.
func TestVerify_ConcurrentReplaysAcceptedOnce(t *testing.T) {
	f := newFixture(t)
	h := answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1)
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = f.verify(h) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, sipauth.ErrReplay):
			t.Errorf("err = %v, want nil or ErrReplay", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d copies accepted, want 1", ok, n)
	}
}

func TestVerify_ConcurrentChallengesAndVerifies(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		wg.Go(func() {
			for nc := 1; nc <= 8; nc++ {
				values, err := f.a.Challenge(testRealm, false, sipauth.SHA256, sipauth.MD5)
				if err != nil {
					errs <- err
					return
				}
				ch, _ := digest.ParseChallenge(values[nc%2])
				cred, _ := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: testURI, Username: testUser, Password: testPassword, Count: nc, Cnonce: testCnonce})
				if _, err := f.verify(cred.String()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Every credential Verify cannot check is ErrMalformed, never a panic.
func TestVerify_RFC3261_22_4_MalformedCredentials(t *testing.T) {
	f := newFixture(t)
	valid := answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1)
	base, err := digest.ParseCredentials(valid)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(e func(c *digest.Credentials)) string {
		c := *base
		e(&c)
		return c.String()
	}
	tests := []struct{ name, header string }{
		{"empty", ""},
		{"basic scheme", "Basic YWxpY2U6cGFzc3dvcmQ="},
		{"scheme only", "Digest"},
		{"scheme and space", "Digest "},
		{"unterminated quote", `Digest username="alice`},
		{"unquoted uri", `Digest username="alice", uri=sip:acme.sip.example.com`},
		{"no equals", `Digest username`},
		{"missing comma", `Digest username="alice" realm="x"`},
		{"nc not hex", strings.Replace(valid, "nc=00000001", "nc=zz", 1)},
		{"nc over 31 bits", strings.Replace(valid, "nc=00000001", "nc=ffffffff", 1)},
		{"truncated", valid[:len(valid)/2]},
		{"oversized", valid + ", x=\"" + strings.Repeat("a", sipauth.MaxHeaderLen) + `"`},
		{"no username", edit(func(c *digest.Credentials) { c.Username = "" })},
		{"no realm", edit(func(c *digest.Credentials) { c.Realm = "" })},
		{"no nonce", edit(func(c *digest.Credentials) { c.Nonce = "" })},
		{"empty uri", edit(func(c *digest.Credentials) { c.URI = "" })},
		{"no response", edit(func(c *digest.Credentials) { c.Response = "" })},
		{"no cnonce", edit(func(c *digest.Credentials) { c.Cnonce = "" })},
		{"nc zero", edit(func(c *digest.Credentials) { c.Nc = 0 })},
		{"nc negative", edit(func(c *digest.Credentials) { c.Nc = -1 })},
		{"no qop (RFC 2069 form)", edit(func(c *digest.Credentials) { c.QOP = "" })},
		{"qop auth-int not offered", edit(func(c *digest.Credentials) { c.QOP = "auth-int" })},
		{"userhash not offered", edit(func(c *digest.Credentials) { c.Userhash = true })},
		{"response not hex", edit(func(c *digest.Credentials) { c.Response = strings.Repeat("zz", 32) })},
		{"response of MD5 length for SHA-256", edit(func(c *digest.Credentials) { c.Response = c.Response[:32] })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.verify(tt.header)
			wantErr(t, err, sipauth.ErrMalformed)
		})
	}
}

func TestVerify_RFC8760_2_UnofferedAlgorithm(t *testing.T) {
	f := newFixture(t)
	valid := answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1)
	for _, alg := range []string{"MD5-sess", "SHA-256-sess", "SHA-512-256", "SHA-512", "AKAv1-MD5"} {
		t.Run(alg, func(t *testing.T) {
			_, err := f.verify(strings.Replace(valid, "algorithm=SHA-256", "algorithm="+alg, 1))
			wantErr(t, err, sipauth.ErrAlgorithm)
		})
	}
}

// RFC 3261 section 22.3: a request may carry credentials for several
// realms; ForRealm picks ours.
func TestForRealm_RFC3261_22_3_OneHeaderPerRealm(t *testing.T) {
	f := newFixture(t)
	ours := answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1)
	theirs := strings.Replace(ours, testRealm, "carrier.example.net", 1)
	values := []string{"Basic YWxpY2U6cGFzc3dvcmQ=", `Digest username="broken`, theirs, ours}
	got, ok := sipauth.ForRealm(values, testRealm)
	if !ok || got != ours {
		t.Errorf("ForRealm = %q, %v; want %q, true", got, ok, ours)
	}
	if _, ok := sipauth.ForRealm(values[:3], testRealm); ok {
		t.Error("ForRealm found credentials for our realm where there are none")
	}
	if _, ok := sipauth.ForRealm(nil, testRealm); ok {
		t.Error("ForRealm(nil) found credentials")
	}
}

func TestConfig_Validate(t *testing.T) {
	good := sipauth.DefaultConfig()
	good.Secret = make([]byte, sipauth.MinSecretLength)
	tests := []struct {
		name   string
		mutate func(*sipauth.Config)
		ok     bool
	}{
		{"defaults with secret", func(*sipauth.Config) {}, true},
		{"zero fields take defaults", func(c *sipauth.Config) { *c = sipauth.Config{Secret: c.Secret} }, true},
		{"no secret", func(c *sipauth.Config) { c.Secret = nil }, false},
		{"short secret", func(c *sipauth.Config) { c.Secret = c.Secret[:sipauth.MinSecretLength-1] }, false},
		{"negative TTL", func(c *sipauth.Config) { c.NonceTTL = -time.Second }, false},
		{"negative window", func(c *sipauth.Config) { c.ReplayWindow = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.Secret = append([]byte(nil), good.Secret...)
			tt.mutate(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if _, err := sipauth.New(cfg); (err == nil) != tt.ok {
				t.Errorf("New() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	d := sipauth.DefaultConfig()
	if d.NonceTTL != 5*time.Minute || d.ReplayWindow != 65536 || d.Clock == nil || d.Rand == nil || d.Secret != nil {
		t.Errorf("DefaultConfig() = %+v", d)
	}
}

// New copies the secret: changing the caller's slice afterwards changes
// nothing.
func TestNew_CopiesSecret(t *testing.T) {
	secret := []byte("cluster secret, 32 bytes long!!!")
	f := newFixture(t, func(c *sipauth.Config) { c.Secret = secret })
	h := answer(t, f.challenge(t, sipauth.SHA256), testUser, testPassword, 1)
	secret[0] ^= 0xff
	_, err := f.verify(h)
	wantErr(t, err, nil)
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{sipauth.SHA256, sipauth.MD5} {
		b.Run(alg, func(b *testing.B) {
			clk := clock.NewFake(testStart())
			cfg := sipauth.Config{Secret: []byte("cluster secret, 32 bytes long!!!"), Clock: clk, Rand: rand.NewChaCha8([32]byte{2})}
			issuer, err := sipauth.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ha1 := credential.Derive(testUser, testRealm, testPassword)
			lookup := func(_, a string) ([]byte, error) {
				if a == sipauth.MD5 {
					return ha1.MD5, nil
				}
				return ha1.SHA256, nil
			}
			// A batch of answers to one nonce (nc 1..n), made again from a
			// fresh challenge, outside the timer, every n iterations: the
			// nc are spent, and a nonce is stale at any other
			// Authenticator (another node, a restart).
			const n = 1024
			idx := 0
			if alg == sipauth.MD5 {
				idx = 1
			}
			headers := make([]string, n)
			batch := func() {
				values, err := issuer.Challenge(testRealm, false, sipauth.SHA256, sipauth.MD5)
				if err != nil {
					b.Fatal(err)
				}
				ch, err := digest.ParseChallenge(values[idx])
				if err != nil {
					b.Fatal(err)
				}
				for i := range headers {
					cred, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: testURI, Username: testUser, Password: testPassword, Count: i + 1, Cnonce: testCnonce})
					if err != nil {
						b.Fatal(err)
					}
					headers[i] = cred.String()
				}
			}
			batch()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				if i == n {
					b.StopTimer()
					batch()
					i = 0
					b.StartTimer()
				}
				if _, err := issuer.Verify(headers[i], "REGISTER", testRealm, lookup); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func parseChallenge(t *testing.T, value string) *digest.Challenge {
	t.Helper()
	c, err := digest.ParseChallenge(value)
	if err != nil {
		t.Fatalf("ParseChallenge(%q): %v", value, err)
	}
	return c
}

// Issue 9, hole 3: an Authorization captured at one node and replayed
// verbatim at another node of the cluster (same secret), or at the same
// node after a restart (a new Authenticator), must not authenticate: it
// is stale there, so the client gets a fresh challenge. At the issuer the
// replay is caught by the nc window (RFC 7616 section 3.4).
func TestVerify_ReplayAtAnotherNodeOrAfterRestartIsStale(t *testing.T) {
	issuer := newFixture(t)
	creds := answer(t, issuer.challenge(t, sipauth.MD5), testUser, testPassword, 1)
	if _, err := issuer.verify(creds); err != nil {
		t.Fatalf("the issuer refused fresh credentials: %v", err)
	}
	for _, tc := range []struct {
		name  string
		other *fixture
	}{
		// Another node: same secret and clock, its own draw of randomness.
		{"another node", newFixture(t, func(c *sipauth.Config) { c.Rand = rand.NewChaCha8([32]byte{2}) })},
		// The same node restarted: same secret, a new boot's randomness
		// (crypto/rand in production).
		{"after restart", newFixture(t, func(c *sipauth.Config) { c.Rand = rand.NewChaCha8([32]byte{3}) })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.other.verify(creds)
			wantErr(t, err, sipauth.ErrStale)
		})
	}
	_, err := issuer.verify(creds)
	wantErr(t, err, sipauth.ErrReplay)
}
