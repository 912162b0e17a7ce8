package gossip

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestLoadReport_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		r    loadReport
	}{
		{"idle", loadReport{ID: "n1", Epoch: 1, Seq: 1}},
		{"busy", loadReport{ID: "n2", Epoch: 1700000000000000000, Seq: 42, Load: Load{
			Activations: map[string]int{"call": 12, "account": 3, "callcontext": 0},
			ActiveCalls: 12, CPU: 0.75, Draining: true,
		}}},
		{"leaving", loadReport{ID: "n4", Epoch: 2, Seq: 3, Leaving: true}},
		{"with gossip address", loadReport{ID: "n5", Addr: "127.0.0.1:7946", Epoch: 2, Seq: 3}},
		{"negative figures survive", loadReport{ID: "n3", Seq: 1, Load: Load{ActiveCalls: -1, Activations: map[string]int{"x": -2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, known, err := decodeMessage(encodeLoadReport(tt.r))
			if err != nil || !known || len(got) != 1 {
				t.Fatalf("decode: %v known=%v n=%d", err, known, len(got))
			}
			if !reflect.DeepEqual(got[0], tt.r) {
				t.Fatalf("got %+v, want %+v", got[0], tt.r)
			}
		})
	}
}

func TestLoadTable_RoundTrip(t *testing.T) {
	in := []loadReport{
		{ID: "a", Epoch: 5, Seq: 9, Load: Load{ActiveCalls: 1}},
		{ID: "b", Epoch: 6, Seq: 1, Load: Load{Activations: map[string]int{"call": 2}, CPU: 0.1}},
	}
	got, known, err := decodeMessage(encodeLoadTable(in))
	if err != nil || !known {
		t.Fatalf("decode: %v known=%v", err, known)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("got %+v, want %+v", got, in)
	}
	if got, known, err := decodeMessage(encodeLoadTable(nil)); err != nil || !known || len(got) != 0 {
		t.Fatalf("empty table: %v %v %v", got, known, err)
	}
}

// A newer node may send message types and fields this one does not know.
func TestDecodeMessage_SkipsUnknownTypesAndFields(t *testing.T) {
	if rs, known, err := decodeMessage([]byte{200, 1, 2, 3}); err != nil || known || rs != nil {
		t.Fatalf("unknown type: %v %v %v", rs, known, err)
	}
	b := encodeLoadReport(loadReport{ID: "a", Seq: 3})
	b = protowire.AppendTag(b, 50, protowire.BytesType)
	b = protowire.AppendString(b, "future")
	rs, _, err := decodeMessage(b)
	if err != nil || len(rs) != 1 || rs[0].ID != "a" || rs[0].Seq != 3 {
		t.Fatalf("unknown field: %+v %v", rs, err)
	}
}

func TestDecodeMessage_RejectsMalformed(t *testing.T) {
	good := encodeLoadReport(loadReport{ID: "a", Seq: 1, Load: Load{CPU: 0.5}})
	nan := appendReport([]byte{msgLoadReport}, loadReport{ID: "a", Seq: 1, Load: Load{CPU: math.NaN()}})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated report", good[:len(good)-3]},
		{"no sender", []byte{msgLoadReport}},
		{"NaN CPU", nan},
		{"table with truncated entry", append([]byte{msgLoadTable, 0x0a, 0x05}, good[1:3]...)},
		{"invalid UTF-8 id", []byte{msgLoadReport, 0x0a, 0x01, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rs, _, err := decodeMessage(tt.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decodeMessage(%x) = %+v, %v; want ErrMalformed", tt.in, rs, err)
			}
		})
	}
}

// FuzzDecodeMessage: gossip messages and push-pull state come from the
// network. decodeMessage must never panic, and what it accepts must survive
// a re-encode.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeLoadReport(loadReport{ID: "n1", Epoch: 1, Seq: 2, Load: Load{Activations: map[string]int{"call": 3}, ActiveCalls: 3, CPU: 0.5, Draining: true}}))
	f.Add(encodeLoadTable([]loadReport{{ID: "a", Seq: 1}, {ID: "b", Seq: 2}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, known, err := decodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !known {
			return
		}
		back, _, err := decodeMessage(encodeLoadTable(rs))
		if err != nil {
			t.Fatalf("re-encode of %+v: %v", rs, err)
		}
		if len(rs) == 0 && len(back) == 0 {
			return
		}
		if !reflect.DeepEqual(back, rs) {
			t.Fatalf("re-encode round trip: got %+v, want %+v", back, rs)
		}
	})
}
