package sipauth

import (
	"crypto/md5" //nolint:gosec // RFC 2617 test vector
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"testing"
	"time"

	"github.com/icholy/digest"

	"github.com/switchboard-pbx/switchboard/credential"
)

// The worked examples of RFC 2617 section 3.5 (MD5) and RFC 7616 section
// 3.9.1 (SHA-256), computed from HA1 as Verify does.
func TestResponse_RFC2617_3_5_RFC7616_3_9_1_Examples(t *testing.T) {
	tests := []struct {
		name    string
		newHash func() hash.Hash
		ha1     []byte
		cred    digest.Credentials
		want    string
	}{
		{
			name:    "RFC2617_3_5_MD5",
			newHash: md5.New,
			ha1:     credential.Derive("Mufasa", "testrealm@host.com", "Circle Of Life").MD5,
			cred: digest.Credentials{
				Nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", URI: "/dir/index.html",
				QOP: "auth", Nc: 1, Cnonce: "0a4f113b",
			},
			want: "6629fae49393a05397450978507c4ef1",
		},
		{
			name:    "RFC7616_3_9_1_SHA256",
			newHash: sha256.New,
			ha1:     credential.Derive("Mufasa", "http-auth@example.org", "Circle of Life").SHA256,
			cred: digest.Credentials{
				Nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", URI: "/dir/index.html",
				QOP: "auth", Nc: 1, Cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			},
			want: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(response(tt.newHash(), tt.ha1, &tt.cred, "GET"))
			if got != tt.want {
				t.Errorf("response = %s, want %s", got, tt.want)
			}
		})
	}
}

func testAuthenticator(t *testing.T) *Authenticator {
	t.Helper()
	a, err := New(Config{Secret: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNonce_RoundTripAndBinding(t *testing.T) {
	a := testAuthenticator(t)
	issued := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	n := a.encodeNonce(issued, [nonceRandLen]byte{1, 2, 3}, "acme.example")
	if len(n) != nonceEncodedSz {
		t.Fatalf("nonce %q has %d chars, want %d", n, len(n), nonceEncodedSz)
	}
	got, mine, _, ok := a.decodeNonce(n, "acme.example")
	if !ok || !mine || !got.Equal(issued) {
		t.Fatalf("decodeNonce = %v, mine %v, %v; want %v, mine, true", got, mine, ok, issued)
	}
	if _, _, _, ok := a.decodeNonce(n, "other.example"); ok {
		t.Error("nonce issued for acme.example accepted for other.example")
	}
	// A second spelling of the same bytes (non-zero trailing bits in the
	// last character) must not decode: one nonce, one replay-table key.
	last := n[len(n)-1]
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		if c == last {
			continue
		}
		alt := n[:len(n)-1] + string(c)
		if _, _, _, ok := a.decodeNonce(alt, "acme.example"); ok {
			t.Errorf("altered nonce %q accepted", alt)
		}
	}
}

func TestReplayTable_RFC7616_3_4_NonceCountMustIncrease(t *testing.T) {
	tab := newReplayTable(4)
	k := nonceKey{1}
	steps := []struct {
		nc   uint32
		want verdict
	}{
		{1, accepted}, {1, replayed}, {3, accepted}, {2, replayed}, {3, replayed}, {4, accepted},
	}
	for _, s := range steps {
		if got := tab.observe(k, 100, s.nc); got != s.want {
			t.Errorf("observe(nc=%d) = %v, want %v", s.nc, got, s.want)
		}
	}
}

func TestReplayTable_EvictionNeverLetsAReplayThrough(t *testing.T) {
	tab := newReplayTable(2)
	a, b, c, d := nonceKey{'a'}, nonceKey{'b'}, nonceKey{'c'}, nonceKey{'d'}
	tab.observe(a, 10, 1)
	tab.observe(b, 20, 1)
	tab.observe(c, 30, 1) // evicts a: watermark 10
	if len(tab.seen) != 2 || len(tab.ring) != 2 {
		t.Fatalf("table holds %d nonces in a ring of %d, want 2 and 2", len(tab.seen), len(tab.ring))
	}
	if got := tab.observe(a, 10, 1); got != forgotten {
		t.Errorf("replay of evicted nonce a = %v, want forgotten", got)
	}
	if got := tab.observe(b, 20, 1); got != replayed {
		t.Errorf("replay of kept nonce b = %v, want replayed", got)
	}
	// Issued before the watermark but never seen: cannot be told apart
	// from an evicted one, so forgotten too.
	if got := tab.observe(d, 5, 1); got != forgotten {
		t.Errorf("old unseen nonce d = %v, want forgotten", got)
	}
	// Issued after the watermark and never seen: accepted.
	if got := tab.observe(d, 40, 1); got != accepted {
		t.Errorf("new nonce d = %v, want accepted", got)
	}
}

// Moving the issue time forward to stretch a nonce's life breaks its MAC.
func TestNonce_TamperedIssueTimeRefused(t *testing.T) {
	a := testAuthenticator(t)
	issued := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := a.encodeNonce(issued, [nonceRandLen]byte{9}, "acme.example")
	raw, err := nonceEncoding().DecodeString(n)
	if err != nil {
		t.Fatal(err)
	}
	later := a.encodeNonce(issued.Add(time.Hour), [nonceRandLen]byte{9}, "acme.example")
	laterRaw, _ := nonceEncoding().DecodeString(later)
	copy(raw[:nonceTimeLen], laterRaw[:nonceTimeLen]) // new time, old MAC
	forged := nonceEncoding().EncodeToString(raw)
	if _, _, _, ok := a.decodeNonce(forged, "acme.example"); ok {
		t.Error("nonce with a moved issue time accepted")
	}
}

// A nonce names its issuer's boot: another Authenticator with the same
// secret (another node, or this node restarted) decodes it as genuine
// but not its own, and moving the epoch breaks the MAC.
func TestNonce_BoundToTheIssuingBoot(t *testing.T) {
	a, b := testAuthenticator(t), testAuthenticator(t)
	if a.epoch == b.epoch {
		t.Fatal("two Authenticators drew the same boot epoch")
	}
	issued := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := a.encodeNonce(issued, [nonceRandLen]byte{7}, "acme.example")
	if _, mine, _, ok := b.decodeNonce(n, "acme.example"); !ok || mine {
		t.Fatalf("another boot decodes a's nonce as ok=%v mine=%v, want ok and not mine", ok, mine)
	}
	raw, _ := nonceEncoding().DecodeString(n)
	copy(raw[nonceTimeLen:nonceTimeLen+nonceEpochLen], b.epoch[:]) // b's epoch, a's MAC
	if _, _, _, ok := b.decodeNonce(nonceEncoding().EncodeToString(raw), "acme.example"); ok {
		t.Error("nonce with a rewritten epoch accepted")
	}
}
