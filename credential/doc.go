// Package credential turns a device's SIP password into the digest HA1
// values that Switchboard stores instead of the password:
//
//	HA1 = H(username ":" realm ":" password)
//
// with H = MD5 (RFC 2617 section 3.2.2.2) and H = SHA-256 (RFC 8760 section 2),
// where the realm is the account DNS name. It also checks password policy.
// It must not store, log or return a password.
package credential
