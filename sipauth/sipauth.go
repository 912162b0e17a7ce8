package sipauth

import (
	"bytes"
	"crypto/md5" //nolint:gosec // MD5 is what RFC 2617 digest uses and most phones answer; SHA-256 is offered where set (Offer).
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/icholy/digest"
)

// The algorithms offered, as spelled in challenges, in Result.Algorithm and
// in the algorithm argument of an HA1Func.
const (
	MD5    = "MD5"
	SHA256 = "SHA-256"
)

// MaxHeaderLen bounds the credentials value Verify will parse; a longer one
// is ErrMalformed.
const MaxHeaderLen = 4096

// qopAuth is the only quality of protection offered.
const qopAuth = "auth"

// HA1Func returns the stored HA1 of username for algorithm (MD5 or SHA256),
// as raw bytes: 16 for MD5, 32 for SHA-256 (what package credential
// derives). It returns an error wrapping ErrUnknownUser if there is no such
// user or no HA1 of that algorithm; any other error (a store that failed)
// is passed through Verify and is not an authentication failure. username
// is the client's, unchecked (up to MaxHeaderLen bytes of any UTF-8). Verify
// calls it at most once, on the calling goroutine.
type HA1Func func(username, algorithm string) (ha1 []byte, err error)

// Result identifies who authenticated.
type Result struct {
	// Username is the digest username as the client sent it.
	Username string
	// Algorithm is MD5 or SHA256 (an absent algorithm parameter means MD5).
	Algorithm string
	// URI is the digest-uri. The caller must check it designates the
	// Request-URI (RFC 2617 section 3.2.2.5) and answer 400 if not.
	URI string
}

// Authenticator issues challenges and verifies credentials. It is safe for
// concurrent use; its only mutable state is the replay table.
type Authenticator struct {
	cfg    Config              // with defaults; Secret is a copy
	epoch  [nonceEpochLen]byte // names this Authenticator in its nonces
	randMu sync.Mutex          // serialises reads of cfg.Rand
	replay *replayTable
}

// New returns an Authenticator for cfg, with zero fields taken from
// DefaultConfig.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Secret = bytes.Clone(cfg.Secret)
	a := &Authenticator{cfg: cfg, replay: newReplayTable(cfg.ReplayWindow)}
	if _, err := io.ReadFull(a.cfg.Rand, a.epoch[:]); err != nil {
		return nil, fmt.Errorf("sipauth: reading the boot epoch: %w", err)
	}
	return a, nil
}

// Challenge returns the values of the WWW-Authenticate (401) or
// Proxy-Authenticate (407) header fields to send for realm: one field per
// algorithm of algs (MD5, SHA256), in that order, all with qop="auth"
// (RFC 3261 section 22.4) and the same fresh nonce. stale=true goes in
// when stale is set, that is, after Verify answered ErrStale. No opaque is
// sent: the nonce carries all the state.
//
// Offer one algorithm, the one Offer picks: some user agents fail on a
// challenge they cannot answer even when another they can answer is
// beside it (libre's, in baresip 1.0, with SHA-256 beside MD5).
//
// realm must be non-empty printable UTF-8; it is the account DNS name.
// Challenge fails on a bad realm, on no or unknown algorithms, or if
// Config.Rand fails.
func (a *Authenticator) Challenge(realm string, stale bool, algs ...string) ([]string, error) {
	if err := checkRealm(realm); err != nil {
		return nil, err
	}
	if len(algs) == 0 {
		return nil, errors.New("sipauth: no algorithm to challenge with; name MD5 and/or SHA-256")
	}
	for _, alg := range algs {
		if alg != MD5 && alg != SHA256 {
			return nil, fmt.Errorf("sipauth: cannot challenge with algorithm %q; use MD5 or SHA-256", alg)
		}
	}
	var rnd [nonceRandLen]byte
	a.randMu.Lock()
	_, err := io.ReadFull(a.cfg.Rand, rnd[:])
	a.randMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("sipauth: reading nonce randomness: %w", err)
	}
	nonce := a.encodeNonce(a.cfg.Clock.Now(), rnd, realm)
	out := make([]string, 0, len(algs))
	for _, alg := range algs {
		c := digest.Challenge{
			Realm:     realm,
			Nonce:     nonce,
			Stale:     stale,
			Algorithm: alg,
			QOP:       []string{qopAuth},
		}
		out = append(out, c.String())
	}
	return out, nil
}

// checkRealm rejects realms that would not survive quoting unchanged.
func checkRealm(realm string) error {
	if realm == "" {
		return errors.New("sipauth: empty realm; use the account DNS name")
	}
	for _, r := range realm {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return fmt.Errorf("sipauth: realm %q is not printable UTF-8; use the account DNS name", realm)
		}
	}
	return nil
}

// ForRealm returns the first of values (the Authorization or
// Proxy-Authorization field values of one request; RFC 3261 section 22.3
// lets a UAC send one per realm) that is digest credentials for realm.
// If none is, the caller should challenge.
func ForRealm(values []string, realm string) (string, bool) {
	for _, v := range values {
		if len(v) > MaxHeaderLen {
			continue
		}
		c, err := digest.ParseCredentials(v)
		if err == nil && c.Realm == realm {
			return v, true
		}
	}
	return "", false
}

// Verify checks header, the value of one Authorization or
// Proxy-Authorization field, for a request of method in realm. It looks up
// the user's HA1 with ha1 and returns who authenticated.
//
// On error, Result holds what could be read of the credentials (for logging
// and failure counting); it authenticates nobody. Errors wrap the sentinels
// of this package, except those of ha1 other than ErrUnknownUser, which are
// returned wrapped as they are.
//
// Only qop=auth is accepted; credentials without qop (the RFC 2069 form) are
// ErrMalformed, since every challenge carries qop and RFC 3261 section 22.4
// then requires it in the answer.
func (a *Authenticator) Verify(header, method, realm string, ha1 HA1Func) (Result, error) {
	if len(header) > MaxHeaderLen {
		return Result{}, fmt.Errorf("%w: value is %d bytes, over the %d-byte limit", ErrMalformed, len(header), MaxHeaderLen)
	}
	c, err := digest.ParseCredentials(header)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	res := Result{Username: c.Username, URI: c.URI}
	if err := checkCredentials(c); err != nil {
		return res, err
	}
	if c.Realm != realm {
		return res, fmt.Errorf("%w: realm %q, want %q", ErrRealm, c.Realm, realm)
	}
	alg, newHash, err := algorithm(c.Algorithm)
	if err != nil {
		return res, err
	}
	res.Algorithm = alg
	size := newHash().Size()
	got, err := hex.DecodeString(c.Response)
	if err != nil || len(got) != size {
		return res, fmt.Errorf("%w: response must be %d hex digits for %s", ErrMalformed, 2*size, alg)
	}

	key, err := ha1(c.Username, alg)
	if err != nil {
		if errors.Is(err, ErrUnknownUser) {
			return res, err
		}
		return res, fmt.Errorf("sipauth: looking up the %s HA1 of %q: %w", alg, c.Username, err)
	}
	if len(key) != size {
		return res, fmt.Errorf("sipauth: stored %s HA1 of %q is %d bytes, want %d; re-derive it with package credential", alg, c.Username, len(key), size)
	}
	want := response(newHash(), key, c, method)
	if subtle.ConstantTimeCompare(want, got) != 1 {
		return res, fmt.Errorf("%w: for user %q", ErrBadResponse, c.Username)
	}

	// The response is right for this nonce, so the client knows the
	// password: any fault left is the nonce's, and RFC 7616 section 3.3
	// has the server answer it with stale=true.
	issued, mine, nkey, ok := a.decodeNonce(c.Nonce, realm)
	if !ok {
		return res, fmt.Errorf("%w: nonce was not issued for realm %q by a node with this secret", ErrStale, realm)
	}
	if !mine {
		// Only the issuer holds the nonce's nc window: another node, or
		// this one before a restart, issued it. A fresh nonce from here
		// costs the client one round trip; accepting it would let a
		// captured Authorization be replayed where its nc is unknown.
		return res, fmt.Errorf("%w: nonce issued by another node or an earlier boot of this one", ErrStale)
	}
	age := a.cfg.Clock.Now().Sub(issued)
	if age > a.cfg.NonceTTL || age < -a.cfg.NonceTTL {
		return res, fmt.Errorf("%w: nonce issued %v ago, lifetime %v", ErrStale, age, a.cfg.NonceTTL)
	}
	switch a.replay.observe(nkey, issued.UnixNano(), uint32(c.Nc)) {
	case replayed:
		return res, fmt.Errorf("%w: nc %08x already used or passed for this nonce", ErrReplay, c.Nc)
	case forgotten:
		return res, fmt.Errorf("%w: nonce state evicted from the replay table", ErrStale)
	}
	return res, nil
}

// checkCredentials checks the parameters Verify needs are there and are
// what was offered.
func checkCredentials(c *digest.Credentials) error {
	for _, p := range [...]struct{ name, value string }{
		{"username", c.Username},
		{"realm", c.Realm},
		{"nonce", c.Nonce},
		{"uri", c.URI},
		{"response", c.Response},
	} {
		if p.value == "" {
			return fmt.Errorf("%w: %s is missing or empty", ErrMalformed, p.name)
		}
	}
	switch {
	case c.QOP == "":
		return fmt.Errorf("%w: qop is missing; the challenge offered qop=auth (RFC 3261 section 22.4)", ErrMalformed)
	case !strings.EqualFold(c.QOP, qopAuth):
		return fmt.Errorf("%w: qop %q was not offered; use auth", ErrMalformed, c.QOP)
	case c.Cnonce == "":
		return fmt.Errorf("%w: cnonce is missing; qop=auth requires it", ErrMalformed)
	case c.Nc < 1:
		return fmt.Errorf("%w: nc is missing or not positive; qop=auth requires it", ErrMalformed)
	case c.Userhash:
		return fmt.Errorf("%w: userhash was not offered", ErrMalformed)
	}
	return nil
}

// algorithm maps the algorithm parameter to its canonical name and hash.
func algorithm(name string) (string, func() hash.Hash, error) {
	switch {
	case name == "" || strings.EqualFold(name, MD5):
		return MD5, md5.New, nil
	case strings.EqualFold(name, SHA256):
		return SHA256, sha256.New, nil
	}
	return "", nil, fmt.Errorf("%w: %q; use SHA-256 or MD5", ErrAlgorithm, name)
}

// response computes, for qop=auth (RFC 2617 section 3.2.2.1, RFC 7616
// section 3.4.1),
//
//	H( hex(HA1) ":" nonce ":" nc ":" cnonce ":" qop ":" hex(H(method ":" uri)) )
//
// with nc as eight lower-case hex digits, the only form RFC 7616 allows.
func response(h hash.Hash, ha1 []byte, c *digest.Credentials, method string) []byte {
	h.Reset()
	fmt.Fprintf(h, "%s:%s", method, c.URI)
	ha2 := h.Sum(nil)
	h.Reset()
	fmt.Fprintf(h, "%x:%s:%08x:%s:%s:%x", ha1, c.Nonce, c.Nc, c.Cnonce, c.QOP, ha2)
	return h.Sum(nil)
}
