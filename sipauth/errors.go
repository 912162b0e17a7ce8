package sipauth

import "errors"

// Sentinel errors of Verify, which wraps them with what exactly was wrong;
// test with errors.Is. The package documentation gives the response each
// calls for.
var (
	// ErrMalformed: the value is not digest credentials this server can
	// check (syntax, a missing parameter, no qop, a qop or userhash that was
	// not offered).
	ErrMalformed = errors.New("sipauth: malformed digest credentials")

	// ErrStale: the response is right for its nonce, but the nonce is
	// expired, was not issued by this Authenticator for this realm, or its
	// nc state was forgotten (RFC 7616 section 3.3).
	ErrStale = errors.New("sipauth: stale nonce")

	// ErrReplay: the nonce count is not higher than one already accepted
	// for this nonce (RFC 7616 section 3.4, RFC 2617 section 3.2.2).
	ErrReplay = errors.New("sipauth: replayed nonce count")

	// ErrRealm: the credentials are for another realm.
	ErrRealm = errors.New("sipauth: credentials are for another realm")

	// ErrUnknownUser: the HA1 lookup knows no such user (or no HA1 of
	// this algorithm for it).
	ErrUnknownUser = errors.New("sipauth: unknown user")

	// ErrBadResponse: the response does not match the stored HA1: wrong
	// password, or a request altered on the way.
	ErrBadResponse = errors.New("sipauth: wrong digest response")

	// ErrAlgorithm: an algorithm other than MD5 and SHA-256, or one the
	// device was not offered (no downgrade from SHA-256).
	ErrAlgorithm = errors.New("sipauth: unsupported digest algorithm")
)
