// Package provisioning owns a device's provisioning secret and the
// sealing of its SIP password for its provisioning document (issue 10,
// action d: "restore the rightful user").
//
// A device has a provisioning secret, separate from its SIP password,
// shown once when it is made (NewSecret). The secret is never stored:
// an X25519 key pair is derived from it (HKDF-SHA-256), and only the
// public key is kept with the device. Whenever the device's SIP password
// is set or reset, it is sealed to that public key (an ephemeral X25519
// exchange, HKDF-SHA-256, AES-256-GCM: Seal), so the store holds a
// password that only the secret's holder can open. The provisioning
// document (GET /provision/{account}/{device}) is served to a client that
// presents the secret: Authenticate derives the key pair from it, compares
// the public key with the stored one in constant time, and Open unseals
// the password. After a fraud containment resets the password, the real
// phone, which holds the provisioning secret, fetches the new password;
// an attacker who had only the SIP password does not.
//
// The package is pure: randomness is passed in, no I/O, no state.
package provisioning
