package provisioning

import (
	"crypto/rand"
	mrand "math/rand/v2"
	"strings"
	"testing"
)

func TestSealOpen_OnlyTheSecretsHolderReadsThePassword(t *testing.T) {
	secret, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSecret(rand.Reader)
	pub, err := PublicKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !Authenticate(secret, pub) || Authenticate(other, pub) || Authenticate("not a secret", pub) || Authenticate(secret, pub[:31]) {
		t.Fatal("Authenticate accepts the wrong secret or refuses the right one")
	}
	password, err := NewPassword(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(rand.Reader, pub, password)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), password) {
		t.Fatal("the sealed password holds it in clear")
	}
	got, err := Open(secret, sealed)
	if err != nil || got != password {
		t.Fatalf("Open = %q, %v; want %q", got, err, password)
	}
	if _, err := Open(other, sealed); err == nil {
		t.Fatal("another secret opened the password")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := Open(secret, sealed); err == nil {
		t.Fatal("a tampered seal opened")
	}
}

func TestNewPassword_LengthAlphabetAndNoRepeats(t *testing.T) {
	r := mrand.NewChaCha8([32]byte{7})
	seen := map[string]bool{}
	for range 100 {
		p, err := NewPassword(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != passwordLen || strings.Trim(p, alphabet) != "" || seen[p] {
			t.Fatalf("password %q: want %d characters of the alphabet, never repeated", p, passwordLen)
		}
		seen[p] = true
	}
}

// FuzzOpen: no input makes Open panic, and none opens without the seal.
func FuzzOpen(f *testing.F) {
	secret := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	pub, _ := PublicKey(secret)
	sealed, _ := Seal(mrand.NewChaCha8([32]byte{1}), pub, "p")
	f.Add(secret, sealed)
	f.Add("short", []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, s string, b []byte) {
		if p, err := Open(s, b); err == nil && p != "p" {
			t.Fatalf("Open opened something else: %q", p)
		}
	})
}
