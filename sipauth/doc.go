// Package sipauth is the server side of SIP digest authentication
// (RFC 3261 section 22, RFC 2617, RFC 7616 where it applies to SIP, and
// RFC 8760 for SHA-256). It owns three things:
//
//   - the challenge: WWW-Authenticate / Proxy-Authenticate values for the
//     algorithms asked, always with qop="auth" (RFC 3261 section 22.4),
//     and the rule of which one algorithm a device is offered (Offer):
//     its own setting, else SHA-256 once it has answered SHA-256 (never a
//     downgrade), else its account's setting, else MD5. One algorithm,
//     because some phones fail on a challenge they cannot answer rather
//     than pick the one beside it they can (baresip 1.0 on libre answers
//     MD5 beside SHA-256 with "Function not implemented");
//   - the nonce: stateless, base64url(issue time | issuer epoch | random |
//     HMAC-SHA-256 of those and the realm). The epoch is drawn at random when
//     the Authenticator is made, so it names one boot of one node. Only the
//     issuer accepts its nonces: a nonce presented to another node of the
//     cluster, or to the issuer after a restart, is stale (the client gets
//     a fresh challenge), because only the issuer's replay table knows its
//     nonce counts. A nonce older than Config.NonceTTL is stale too;
//   - the check of one Authorization / Proxy-Authorization value against the
//     stored HA1 (never a password), in constant time, and the per-nonce
//     nonce-count (nc) replay table, which is the only mutable state.
//
// Verify answers with a sentinel error that tells the caller what to send:
//
//	ErrMalformed                       400 Bad Request
//	ErrStale                           401/407 with a new challenge, stale=true
//	ErrReplay, ErrRealm, ErrUnknownUser,
//	ErrBadResponse, ErrAlgorithm       401/407 with a new challenge; count an auth failure
//	any other error (HA1 lookup)       500/503; not an auth failure
//
// The caller must still compare Result.URI with the Request-URI
// (RFC 2617 section 3.2.2.5) using SIP URI comparison (RFC 3261 section
// 19.1.4); this package does not parse SIP URIs.
//
// The replay table is per Authenticator, so per node and per boot; binding
// each nonce to its issuer's epoch is what makes that enough: an
// Authorization captured at one node and replayed at another, or at the same
// node after a restart, is answered stale and never authenticates.
//
// This package does no I/O, starts no goroutines, logs nothing and registers
// no metrics: callers count outcomes by sentinel. It must not store, log or
// return a password or an HA1. github.com/icholy/digest does the header
// parsing and formatting, here and in sipedge's handler, which reads the
// challenge parameters of a request's credentials with it.
package sipauth
