package persistence_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/persistence/storetest"
)

func openMemory(t *testing.T) persistence.Store {
	s := persistence.NewMemory()
	t.Cleanup(func() { closeStore(t, s) })
	return s
}

func closeStore(tb testing.TB, s persistence.Store) {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Errorf("Close: %v", err)
	}
}

func TestMemory_Conformance(t *testing.T) {
	storetest.Run(t, openMemory, nil)
}

// The wrapper must be transparent: the whole contract still holds through it.
func TestInstrument_Conformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) persistence.Store {
		s := persistence.Instrument(openMemory(t), "memory", prometheus.NewRegistry())
		t.Cleanup(func() { closeStore(t, s) })
		return s
	}, nil)
}

func TestInstrument_ObservesEachCallByOpAndResult(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := persistence.Instrument(openMemory(t), "memory", reg)
	// A second store on the same registry shares the histogram.
	other := persistence.Instrument(openMemory(t), "other", reg)
	ctx := t.Context()

	v, err := s.Put(ctx, "k", []byte("v"), persistence.MustNotExist) // put ok
	if err != nil {
		t.Fatal(err)
	}
	s.Put(ctx, "k", []byte("v"), persistence.MustNotExist) // put conflict
	s.Get(ctx, "k")                                        // get ok
	s.Get(ctx, "nope")                                     // get not_found
	s.Get(ctx, "")                                         // get error (invalid key)
	s.Scan(ctx, "", "", 0)                                 // scan ok
	s.Delete(ctx, "k", v+1)                                // delete conflict
	s.Delete(ctx, "k", v)                                  // delete ok
	other.Get(ctx, "nope")                                 // other get not_found

	want := map[[3]string]uint64{
		{"memory", "put", "ok"}:          1,
		{"memory", "put", "conflict"}:    1,
		{"memory", "get", "ok"}:          1,
		{"memory", "get", "not_found"}:   1,
		{"memory", "get", "error"}:       1,
		{"memory", "scan", "ok"}:         1,
		{"memory", "delete", "conflict"}: 1,
		{"memory", "delete", "ok"}:       1,
		{"other", "get", "not_found"}:    1,
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var hist *dto.MetricFamily
	for _, f := range families {
		if f.GetName() == "switchboard_store_op_seconds" {
			hist = f
		}
	}
	if hist == nil {
		t.Fatal("switchboard_store_op_seconds not registered")
	}
	got := map[[3]string]uint64{}
	for _, m := range hist.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if n := m.GetHistogram().GetSampleCount(); n > 0 {
			got[[3]string{labels["engine"], labels["op"], labels["result"]}] = n
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%v observed %d times, want %d", k, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected observation %v ×%d", k, n)
		}
	}
}

func TestInstrument_PassesErrorsThrough(t *testing.T) {
	s := persistence.Instrument(openMemory(t), "memory", nil)
	if _, err := s.Get(t.Context(), "nope"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("Get through the wrapper = %v, want ErrNotFound", err)
	}
}
