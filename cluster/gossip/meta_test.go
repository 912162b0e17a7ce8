package gossip

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestMeta_EncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		meta Meta
	}{
		{"empty", Meta{}},
		{"actor only", Meta{Actor: "127.0.0.1:8090"}},
		{"full", Meta{Name: "edge-1", Pool: "default", Actor: "10.0.0.1:8090", SIP: "10.0.0.1:5060", HTTP: "10.0.0.1:8080", DNS: "10.0.0.1:5353"}},
		{"unicode and IPv6", Meta{Name: "nœud-é", Pool: "zürich", Actor: "[::1]:8090"}},
		{"exactly the limit", metaOfSize(t, MaxMetaSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.meta.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if len(b) > MaxMetaSize {
				t.Fatalf("Encode returned %d bytes, over %d", len(b), MaxMetaSize)
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatalf("DecodeMeta: %v", err)
			}
			if got != tt.meta {
				t.Fatalf("round trip: got %+v, want %+v", got, tt.meta)
			}
		})
	}
}

// metaOfSize returns a Meta whose encoding is exactly n bytes.
func metaOfSize(t *testing.T, n int) Meta {
	t.Helper()
	for l := n; l >= 0; l-- {
		m := Meta{Name: strings.Repeat("n", l), Actor: "127.0.0.1:8090"}
		if len(m.encodeUnchecked()) == n {
			return m
		}
	}
	t.Fatalf("no Meta encodes to %d bytes", n)
	return Meta{}
}

// encodeUnchecked is Encode without the size limit, for building test
// inputs at and past the limit.
func (m Meta) encodeUnchecked() []byte {
	b := []byte{metaVersion}
	for _, f := range m.fields() {
		if *f.value != "" {
			b = protowire.AppendTag(b, f.num, protowire.BytesType)
			b = protowire.AppendString(b, *f.value)
		}
	}
	return b
}

// memberlist panics on metadata over 512 bytes (MetaMaxSize); Encode and
// Validate must refuse first, with an error.
func TestMeta_Over512BytesRefusedNotPanicking(t *testing.T) {
	over := metaOfSize(t, MaxMetaSize)
	over.Name += "x"
	if n := len(over.encodeUnchecked()); n != MaxMetaSize+1 {
		t.Fatalf("test setup: %d bytes", n)
	}
	if b, err := over.Encode(); !errors.Is(err, ErrMetaTooLarge) || b != nil {
		t.Fatalf("Encode over limit: got %d bytes, err %v; want ErrMetaTooLarge", len(b), err)
	}
	if err := over.Validate(); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("Validate over limit: %v", err)
	}
	cfg := DefaultConfig()
	cfg.ID, cfg.LoadFunc, cfg.Meta = "x", func() Load { return Load{} }, over
	if err := cfg.Validate(); !errors.Is(err, ErrMetaTooLarge) || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Config.Validate: %v", err)
	}
	cfg.BindAddr = "127.0.0.1:0"
	if g, err := New(cfg); !errors.Is(err, ErrMetaTooLarge) {
		if g != nil {
			g.Shutdown()
		}
		t.Fatalf("New: %v", err)
	}
}

func TestMeta_ValidateAddresses(t *testing.T) {
	tests := []struct {
		name string
		meta Meta
		ok   bool
	}{
		{"empty addresses allowed", Meta{Name: "a"}, true},
		{"host:port", Meta{Actor: "node1.example:8090", SIP: "127.0.0.1:5060"}, true},
		{"actor without port", Meta{Actor: "127.0.0.1"}, false},
		{"http without port", Meta{HTTP: "localhost"}, false},
		{"invalid UTF-8 name", Meta{Name: "\xff"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.meta.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tt.meta, err, tt.ok)
			}
		})
	}
}

func TestDecodeMeta_RejectsMalformed(t *testing.T) {
	good, _ := Meta{Name: "a", Actor: "127.0.0.1:1"}.Encode()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"wrong version", append([]byte{2}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"bad tag", []byte{metaVersion, 0x00}},
		{"invalid UTF-8", []byte{metaVersion, 0x0a, 0x01, 0xff}},
		{"over the limit", append([]byte{metaVersion}, make([]byte, MaxMetaSize)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := DecodeMeta(tt.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeMeta(%x) = %+v, %v; want ErrMalformed", tt.in, m, err)
			}
		})
	}
}

// A newer node may add fields; an older one must skip them.
func TestDecodeMeta_SkipsUnknownFields(t *testing.T) {
	b, _ := Meta{Name: "a", Pool: "p"}.Encode()
	b = protowire.AppendTag(b, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 100, protowire.BytesType)
	b = protowire.AppendString(b, "future")
	b = protowire.AppendTag(b, 1, protowire.VarintType) // known number, unexpected type
	b = protowire.AppendVarint(b, 1)
	got, err := DecodeMeta(b)
	if err != nil {
		t.Fatalf("DecodeMeta: %v", err)
	}
	if want := (Meta{Name: "a", Pool: "p"}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// FuzzDecodeMeta: metadata comes from any node on the network. DecodeMeta
// must never panic, and whatever it accepts must re-encode within the limit
// and decode to the same value.
func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{{}, {Name: "edge-1", Pool: "default", Actor: "127.0.0.1:8090", SIP: "127.0.0.1:5060"}} {
		b, _ := m.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded %+v from %d bytes but cannot re-encode: %v", m, len(b), err)
		}
		back, err := DecodeMeta(enc)
		if err != nil || back != m {
			t.Fatalf("re-encode round trip: %+v, %v; want %+v", back, err, m)
		}
	})
}
