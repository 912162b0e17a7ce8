package credential

import (
	"crypto/md5" //nolint:gosec // MD5 is what RFC 2617 digest uses; SHA-256 is kept beside it (RFC 8760).
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MinPasswordLength is the shortest password a device may have.
const MinPasswordLength = 8

// MaxPasswordLength bounds the password so that a request cannot make us
// hash megabytes.
const MaxPasswordLength = 128

// ErrWeakPassword is returned by CheckPassword for a password that breaks policy.
var ErrWeakPassword = errors.New("credential: password does not meet policy")

// HA1 holds a device's digest HA1 values for one realm.
type HA1 struct {
	MD5    []byte // 16 bytes
	SHA256 []byte // 32 bytes
}

// CheckPassword reports whether password meets policy.
func CheckPassword(password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: must be valid UTF-8", ErrWeakPassword)
	case n < MinPasswordLength:
		return fmt.Errorf("%w: must be at least %d characters", ErrWeakPassword, MinPasswordLength)
	case n > MaxPasswordLength:
		return fmt.Errorf("%w: must be at most %d characters", ErrWeakPassword, MaxPasswordLength)
	}
	return nil
}

// Derive computes the HA1 values of username in realm.
func Derive(username, realm, password string) HA1 {
	in := []byte(username + ":" + realm + ":" + password)
	m := md5.Sum(in) //nolint:gosec // see import
	s := sha256.Sum256(in)
	return HA1{MD5: m[:], SHA256: s[:]}
}
