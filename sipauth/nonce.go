package sipauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// A nonce is base64url (no padding, strict) of
//
//	issued (8 bytes, big-endian Unix nanoseconds) | epoch (8 bytes) | random (12 bytes) | mac (16 bytes)
//
// where epoch names the Authenticator that issued it (random, drawn once
// when the Authenticator is made, so a node's every boot has its own) and
// mac is HMAC-SHA-256(secret, nonceDomain | issued | epoch | random | realm)
// cut to 16 bytes. The nonce-count window lives only with the issuer, so
// only the issuer accepts the nonce: another node, or the issuer after a
// restart, answers stale and the client is challenged afresh. The realm goes last, after fixed-length fields, so no two
// (payload, realm) pairs hash the same input. Strict decoding gives each
// nonce exactly one spelling.
const (
	nonceTimeLen   = 8
	nonceEpochLen  = 8
	nonceRandLen   = 12
	nonceMACLen    = 16
	noncePayload   = nonceTimeLen + nonceEpochLen + nonceRandLen
	nonceRawLen    = noncePayload + nonceMACLen
	nonceDomain    = "switchboard sipauth nonce v2\x00"
	nonceEncodedSz = (nonceRawLen*8 + 5) / 6 // base64 without padding: 59
)

// nonceKey identifies a nonce in the replay table: its MAC, unique to
// 2^-128 among nonces that verified.
type nonceKey [nonceMACLen]byte

func nonceEncoding() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// mac computes the nonce MAC of payload for realm.
func (a *Authenticator) mac(payload []byte, realm string) nonceKey {
	h := hmac.New(sha256.New, a.cfg.Secret)
	h.Write([]byte(nonceDomain))
	h.Write(payload)
	h.Write([]byte(realm))
	var k nonceKey
	copy(k[:], h.Sum(nil))
	return k
}

// encodeNonce builds the nonce issued at issued, with random part rnd, for
// realm.
func (a *Authenticator) encodeNonce(issued time.Time, rnd [nonceRandLen]byte, realm string) string {
	var raw [nonceRawLen]byte
	binary.BigEndian.PutUint64(raw[:nonceTimeLen], uint64(issued.UnixNano()))
	copy(raw[nonceTimeLen:nonceTimeLen+nonceEpochLen], a.epoch[:])
	copy(raw[nonceTimeLen+nonceEpochLen:noncePayload], rnd[:])
	k := a.mac(raw[:noncePayload], realm)
	copy(raw[noncePayload:], k[:])
	return nonceEncoding().EncodeToString(raw[:])
}

// decodeNonce reports whether s is a nonce this secret issued for realm,
// and if so when, whether this Authenticator (this boot of this node)
// issued it, and its replay key. It never panics on any input.
func (a *Authenticator) decodeNonce(s, realm string) (issued time.Time, mine bool, key nonceKey, ok bool) {
	if len(s) != nonceEncodedSz {
		return time.Time{}, false, nonceKey{}, false
	}
	var raw [nonceRawLen]byte
	n, err := nonceEncoding().Decode(raw[:], []byte(s))
	if err != nil || n != nonceRawLen {
		return time.Time{}, false, nonceKey{}, false
	}
	want := a.mac(raw[:noncePayload], realm)
	if !hmac.Equal(want[:], raw[noncePayload:]) {
		return time.Time{}, false, nonceKey{}, false
	}
	ns := int64(binary.BigEndian.Uint64(raw[:nonceTimeLen]))
	mine = hmac.Equal(raw[nonceTimeLen:nonceTimeLen+nonceEpochLen], a.epoch[:])
	return time.Unix(0, ns), mine, want, true
}
