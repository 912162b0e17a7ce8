package fraud

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sampleHistory() *History {
	h := NewHistory(28)
	for d := range 21 {
		for hr := 8; hr < 18; hr++ {
			h.Observe(t0.Add(time.Duration(-d*24+hr-9)*time.Hour), float64(1+hr%3))
		}
		h.AddPeaks(t0.Add(time.Duration(-d*24)*time.Hour), Peaks{PerMinute: 3, PerSecond: 1, Distinct: 2, SameBody: 1})
	}
	h.LearnSource("192.0.2.0/24", "phone/1", t0.Add(-time.Hour))
	h.LearnSource("2001:db8::/48", "phone/2", t0.Add(-2*time.Hour))
	for i := range 40 {
		h.LearnDestination(num(i), t0.Add(-time.Duration(i)*time.Hour))
	}
	return h
}

// TestHistory_RoundTrip: what MarshalBinary writes, UnmarshalBinary reads
// back to the same baselines, peaks, sources and destinations.
func TestHistory_RoundTrip(t *testing.T) {
	h := sampleHistory()
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back History
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	e1, ok1 := h.Expected(t0, 3)
	e2, ok2 := back.Expected(t0, 3)
	if e1 != e2 || ok1 != ok2 || !ok1 || h.Peak(t0) != back.Peak(t0) || back.Retention() != 28 {
		t.Fatalf("baseline %v/%v vs %v/%v, peaks %+v vs %+v", e1, ok1, e2, ok2, h.Peak(t0), back.Peak(t0))
	}
	if !back.KnowsDestination(num(7)) || back.KnowsDestination("+15559999999") {
		t.Fatal("destinations did not survive")
	}
	if kn, ka := back.KnowsSource("2001:db8::/48", "phone/2"); !kn || !ka {
		t.Fatal("sources did not survive")
	}
	b2, _ := back.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("re-encoding differs")
	}
	t.Logf("21 days of office-hours history: %d bytes", len(b))
}

// TestHistory_DecoderRefusesBadInput: truncations, bad magic, counts above
// the retention and trailing bytes are errors wrapping ErrBadHistory.
func TestHistory_DecoderRefusesBadInput(t *testing.T) {
	good, _ := sampleHistory().MarshalBinary()
	cases := map[string][]byte{
		"empty":         nil,
		"magic":         []byte("XXXX"),
		"truncated":     good[:len(good)/2],
		"trailing":      append(append([]byte{}, good...), 0),
		"retention 0":   []byte("SBH1\x00"),
		"retention big": []byte("SBH1\xff\x01"),
	}
	for name, in := range cases {
		var h History
		if err := h.UnmarshalBinary(in); !errors.Is(err, ErrBadHistory) {
			t.Errorf("%s: %v, want ErrBadHistory", name, err)
		}
	}
}

// TestHistory_WriteFuzzCorpus rewrites the committed seed corpus of
// FuzzHistoryDecode from the current encoder (FRAUD_WRITE_CORPUS=1).
func TestHistory_WriteFuzzCorpus(t *testing.T) {
	if os.Getenv("FRAUD_WRITE_CORPUS") == "" {
		t.Skip("set FRAUD_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzHistoryDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHistoryDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	empty, _ := NewHistory(1).MarshalBinary()
	full, _ := sampleHistory().MarshalBinary()
	for name, b := range map[string][]byte{"empty": empty, "sample": full, "truncated": full[:20]} {
		body := "go test fuzz v1\n[]byte(" + quoteGo(b) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func quoteGo(b []byte) string {
	var sb bytes.Buffer
	sb.WriteByte('"')
	for _, c := range b {
		sb.WriteString(`\x`)
		sb.WriteByte("0123456789abcdef"[c>>4])
		sb.WriteByte("0123456789abcdef"[c&15])
	}
	sb.WriteByte('"')
	return sb.String()
}

// FuzzHistoryDecode: a history read from the store is untrusted input. The
// decoder never panics, and what it accepts re-encodes to bytes it decodes
// to the same encoding again.
func FuzzHistoryDecode(f *testing.F) {
	good, _ := sampleHistory().MarshalBinary()
	f.Add(good)
	f.Add([]byte("SBH1\x01\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h History
		if err := h.UnmarshalBinary(data); err != nil {
			return
		}
		b, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var h2 History
		if err := h2.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		b2, _ := h2.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatal("encoding is not stable")
		}
		h.Expected(t0, 3)
		h.Peak(t0)
		h.Observe(t0, 1)
		h.KnowsDestination("+447700900123")
	})
}
