package sipauth

import (
	"fmt"
	"slices"
	"strings"
)

// Settings are what decides the one algorithm a device is challenged with:
// its own setting and its account's (each "", MD5 or SHA256), and whether
// it has answered a SHA-256 challenge before. For a device nobody knows
// (an unknown username), only Account is set.
type Settings struct {
	Device         string
	Account        string
	AnsweredSHA256 bool
}

// Offer returns the one algorithm to challenge a device with, which is also
// the only one whose answer is accepted from it:
//
//  1. the device's own setting, when it has one;
//  2. SHA256 once it has answered a SHA-256 challenge: a device is never
//     downgraded, so an MD5 answer from it is refused (ErrAlgorithm);
//  3. the account's setting;
//  4. MD5, which every SIP phone answers. Offering SHA-256 beside it is
//     not enough: some phones (baresip 1.0 on libre) fail on the
//     challenge they cannot answer instead of using the other one.
//
// accepted are the algorithms this node accepts at all. An MD5 it does not
// accept becomes SHA256 (an upgrade); a SHA256 it does not accept gives
// ok false: the device cannot be challenged without a downgrade.
func Offer(s Settings, accepted []string) (alg string, ok bool) {
	switch {
	case s.Device != "":
		alg = s.Device
	case s.AnsweredSHA256:
		alg = SHA256
	case s.Account != "":
		alg = s.Account
	default:
		alg = MD5
	}
	if slices.Contains(accepted, alg) {
		return alg, true
	}
	if alg == MD5 && slices.Contains(accepted, SHA256) {
		return SHA256, true
	}
	return "", false
}

// ParseAlgorithm returns the canonical name (MD5 or SHA256) of a digest
// algorithm setting, compared without case; "" stays "" (the default).
func ParseAlgorithm(name string) (string, error) {
	switch {
	case name == "":
		return "", nil
	case strings.EqualFold(name, MD5):
		return MD5, nil
	case strings.EqualFold(name, SHA256):
		return SHA256, nil
	}
	return "", fmt.Errorf("%q is not a digest algorithm: use %q or %q", name, MD5, SHA256)
}
