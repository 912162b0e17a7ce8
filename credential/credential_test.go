package credential

import (
	"encoding/hex"
	"errors"
	"testing"
)

// RFC 2617 section 3.5 and RFC 7616 section 3.9.1 use user "Mufasa", realm
// "testrealm@host.com" / "http-auth@example.org" and password "Circle Of Life";
// the HA1 values below are the H(A1) those examples imply.
func TestDerive_RFC2617_RFC8760_HA1(t *testing.T) {
	tests := []struct {
		name, user, realm, pass, md5, sha256 string
	}{
		{
			name: "rfc2617", user: "Mufasa", realm: "testrealm@host.com", pass: "Circle Of Life",
			md5:    "939e7578ed9e3c518a452acee763bce9",
			sha256: "",
		},
		{
			name: "rfc7616", user: "Mufasa", realm: "http-auth@example.org", pass: "Circle of Life",
			md5:    "",
			sha256: "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Derive(tt.user, tt.realm, tt.pass)
			if tt.md5 != "" && hex.EncodeToString(h.MD5) != tt.md5 {
				t.Errorf("MD5 HA1 = %x, want %s", h.MD5, tt.md5)
			}
			if tt.sha256 != "" && hex.EncodeToString(h.SHA256) != tt.sha256 {
				t.Errorf("SHA-256 HA1 = %x, want %s", h.SHA256, tt.sha256)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		pass string
		ok   bool
	}{
		{"", false},
		{"1234567", false},
		{"12345678", true},
		{"ünïcödé!", true},
		{string(make([]byte, MaxPasswordLength+1)), false},
		{"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", false},
	}
	for _, tt := range tests {
		err := CheckPassword(tt.pass)
		if (err == nil) != tt.ok {
			t.Errorf("CheckPassword(%q) = %v, want ok=%v", tt.pass, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrWeakPassword) {
			t.Errorf("CheckPassword(%q) error %v is not ErrWeakPassword", tt.pass, err)
		}
	}
}
