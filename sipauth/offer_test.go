package sipauth_test

import (
	"testing"

	"github.com/icholy/digest"

	"github.com/switchboard-pbx/switchboard/sipauth"
)

// TestOffer_OneAlgorithmPerDevice: MD5 alone by default, SHA-256 alone
// when the device or its account is set to it or once the device has
// answered it, and never a downgrade the node cannot honour.
func TestOffer_OneAlgorithmPerDevice(t *testing.T) {
	both := []string{sipauth.MD5, sipauth.SHA256}
	for _, tc := range []struct {
		name     string
		s        sipauth.Settings
		accepted []string
		want     string // "" for no offer
	}{
		{"default is MD5", sipauth.Settings{}, both, sipauth.MD5},
		{"account SHA-256", sipauth.Settings{Account: sipauth.SHA256}, both, sipauth.SHA256},
		{"account MD5", sipauth.Settings{Account: sipauth.MD5}, both, sipauth.MD5},
		{"device SHA-256", sipauth.Settings{Device: sipauth.SHA256}, both, sipauth.SHA256},
		{"device SHA-256 beats account MD5", sipauth.Settings{Device: sipauth.SHA256, Account: sipauth.MD5}, both, sipauth.SHA256},
		{"device MD5 beats account SHA-256", sipauth.Settings{Device: sipauth.MD5, Account: sipauth.SHA256}, both, sipauth.MD5},
		{"answered SHA-256 sticks", sipauth.Settings{AnsweredSHA256: true}, both, sipauth.SHA256},
		{"answered SHA-256 beats account MD5", sipauth.Settings{AnsweredSHA256: true, Account: sipauth.MD5}, both, sipauth.SHA256},
		{"node accepting only SHA-256 upgrades MD5", sipauth.Settings{}, []string{sipauth.SHA256}, sipauth.SHA256},
		{"node accepting only MD5 never downgrades", sipauth.Settings{Device: sipauth.SHA256}, []string{sipauth.MD5}, ""},
		{"node accepting only MD5 never downgrades an answered device", sipauth.Settings{AnsweredSHA256: true}, []string{sipauth.MD5}, ""},
		{"node accepting nothing", sipauth.Settings{}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := sipauth.Offer(tc.s, tc.accepted)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("Offer(%+v, %q) = %q, %v; want %q", tc.s, tc.accepted, got, ok, tc.want)
			}
		})
	}
}

// TestOffer_ChallengeCarriesOnlyTheOffer: a challenge for the offer holds
// that one algorithm, which is what baresip 1.0 needs (it fails on a
// SHA-256 field beside the MD5 one).
func TestOffer_ChallengeCarriesOnlyTheOffer(t *testing.T) {
	f := newFixture(t)
	alg, _ := sipauth.Offer(sipauth.Settings{}, []string{sipauth.MD5, sipauth.SHA256})
	values, err := f.a.Challenge(testRealm, false, alg)
	if err != nil {
		t.Fatal(err)
	}
	if len(values) != 1 {
		t.Fatalf("got %d challenge fields, want 1: %q", len(values), values)
	}
	c, err := digest.ParseChallenge(values[0])
	if err != nil || c.Algorithm != sipauth.MD5 {
		t.Fatalf("challenge %q (%v), want algorithm MD5", values[0], err)
	}
}

func TestParseAlgorithm(t *testing.T) {
	for in, want := range map[string]string{"": "", "MD5": sipauth.MD5, "md5": sipauth.MD5, "SHA-256": sipauth.SHA256, "sha-256": sipauth.SHA256} {
		if got, err := sipauth.ParseAlgorithm(in); err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"SHA256", "SHA-512", "MD5-sess", " MD5"} {
		if got, err := sipauth.ParseAlgorithm(in); err == nil {
			t.Errorf("ParseAlgorithm(%q) = %q, want an error", in, got)
		}
	}
}
