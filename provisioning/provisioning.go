package provisioning

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// Errors of this package.
var (
	// ErrBadSecret is a secret that is not one NewSecret makes, or not the
	// device's.
	ErrBadSecret = errors.New("provisioning: wrong provisioning secret")
	// ErrSealed is a sealed password that does not open with the secret.
	ErrSealed = errors.New("provisioning: sealed password does not open")
)

const (
	secretLen   = 32
	keyInfo     = "switchboard provisioning key v1"
	sealInfo    = "switchboard provisioning seal v1"
	passwordLen = 24
	// alphabet has no characters that phones' keypads or config files
	// mangle (no quotes, backslashes, spaces or look-alikes).
	alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
)

func encoding() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// NewSecret draws a provisioning secret: 32 random bytes as base64url (43
// characters), to be shown once.
func NewSecret(rand io.Reader) (string, error) {
	b := make([]byte, secretLen)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", fmt.Errorf("provisioning: drawing a secret: %w", err)
	}
	return encoding().EncodeToString(b), nil
}

// NewPassword draws a SIP password of 24 characters from a 56-letter
// alphabet (about 139 bits).
func NewPassword(rand io.Reader) (string, error) {
	out := make([]byte, 0, passwordLen)
	b := make([]byte, 1)
	for len(out) < passwordLen {
		if _, err := io.ReadFull(rand, b); err != nil {
			return "", fmt.Errorf("provisioning: drawing a password: %w", err)
		}
		if int(b[0]) >= 256-256%len(alphabet) {
			continue // rejection sampling: no bias
		}
		out = append(out, alphabet[int(b[0])%len(alphabet)])
	}
	return string(out), nil
}

// privateKey derives the device's X25519 private key from its secret.
func privateKey(secret string) (*ecdh.PrivateKey, error) {
	raw, err := encoding().DecodeString(secret)
	if err != nil || len(raw) != secretLen {
		return nil, ErrBadSecret
	}
	seed, err := hkdf.Key(sha256.New, raw, nil, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	return ecdh.X25519().NewPrivateKey(seed)
}

// PublicKey is the public key derived from secret: what is stored with
// the device.
func PublicKey(secret string) ([]byte, error) {
	k, err := privateKey(secret)
	if err != nil {
		return nil, err
	}
	return k.PublicKey().Bytes(), nil
}

// Authenticate reports whether secret is the one whose public key is
// stored, in constant time.
func Authenticate(secret string, stored []byte) bool {
	pub, err := PublicKey(secret)
	if err != nil || len(stored) != len(pub) {
		return false
	}
	return subtle.ConstantTimeCompare(pub, stored) == 1
}

// Seal encrypts password to the device's public key: ephemeral public key
// (32 bytes) | nonce (12) | AES-256-GCM ciphertext and tag.
func Seal(rand io.Reader, publicKey []byte, password string) ([]byte, error) {
	pub, err := ecdh.X25519().NewPublicKey(publicKey)
	if err != nil {
		return nil, fmt.Errorf("provisioning: device public key: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("provisioning: ephemeral key: %w", err)
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, err
	}
	aead, err := sealer(shared, eph.PublicKey().Bytes(), publicKey)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), eph.PublicKey().Bytes()...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("provisioning: nonce: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, []byte(password), nil), nil
}

// Open decrypts a sealed password with the device's secret.
func Open(secret string, sealed []byte) (string, error) {
	k, err := privateKey(secret)
	if err != nil {
		return "", err
	}
	if len(sealed) < 32+12+16 {
		return "", ErrSealed
	}
	ephPub, err := ecdh.X25519().NewPublicKey(sealed[:32])
	if err != nil {
		return "", ErrSealed
	}
	shared, err := k.ECDH(ephPub)
	if err != nil {
		return "", ErrSealed
	}
	aead, err := sealer(shared, sealed[:32], k.PublicKey().Bytes())
	if err != nil {
		return "", err
	}
	plain, err := aead.Open(nil, sealed[32:32+aead.NonceSize()], sealed[32+aead.NonceSize():], nil)
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}

// sealer is the AEAD keyed by the exchange, bound to both public keys.
func sealer(shared, ephPub, devPub []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, shared, append(append([]byte(nil), ephPub...), devPub...), sealInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
