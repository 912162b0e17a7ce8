package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Instrument wraps s so that every call is observed in the histogram
// switchboard_store_op_seconds{engine,op,result} registered on reg:
// op is get, put, delete, scan or batch (whose result is error only when
// the whole batch failed); result is ok, not_found, conflict or
// error. Closing the wrapper closes s.
//
// Stores instrumented on the same registry share the histogram (told apart
// by engine). A nil reg observes without registering. Instrument panics,
// like prometheus.MustRegister, if reg holds a different metric of that
// name.
func Instrument(s Store, engine string, reg prometheus.Registerer) Store {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "switchboard_store_op_seconds",
		Help: "Latency of persistence Store calls, by engine, operation and result.",
		// 100µs (memory, a cached badger read) to 2.5s (a struggling database).
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"engine", "op", "result"})
	if reg != nil {
		if err := reg.Register(hist); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(fmt.Sprintf("persistence: register store metrics: %v", err))
			}
			existing, ok := are.ExistingCollector.(*prometheus.HistogramVec)
			if !ok {
				panic(fmt.Sprintf("persistence: register store metrics: %v is not a histogram", are.ExistingCollector))
			}
			hist = existing
		}
	}
	in := &instrumented{s: s}
	for op, opName := range opNames {
		for res, resName := range resultNames {
			in.obs[op][res] = hist.WithLabelValues(engine, opName, resName)
		}
	}
	return in
}

type (
	opKind     int
	resultKind int
)

const (
	opGet opKind = iota
	opPut
	opDelete
	opScan
	opBatch
	numOps
)

const (
	resultOK resultKind = iota
	resultNotFound
	resultConflict
	resultError
	numResults
)

var (
	opNames     = [numOps]string{"get", "put", "delete", "scan", "batch"}
	resultNames = [numResults]string{"ok", "not_found", "conflict", "error"}
)

type instrumented struct {
	s   Store
	obs [numOps][numResults]prometheus.Observer
}

func (in *instrumented) observe(op opKind, start time.Time, err error) {
	res := resultOK
	switch {
	case err == nil:
	case errors.Is(err, ErrNotFound):
		res = resultNotFound
	case errors.Is(err, ErrConflict):
		res = resultConflict
	default:
		res = resultError
	}
	in.obs[op][res].Observe(time.Since(start).Seconds())
}

func (in *instrumented) Get(ctx context.Context, key string) (Item, error) {
	start := time.Now()
	it, err := in.s.Get(ctx, key)
	in.observe(opGet, start, err)
	return it, err
}

func (in *instrumented) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	start := time.Now()
	v, err := in.s.Put(ctx, key, value, expect)
	in.observe(opPut, start, err)
	return v, err
}

func (in *instrumented) Delete(ctx context.Context, key string, expect uint64) error {
	start := time.Now()
	err := in.s.Delete(ctx, key, expect)
	in.observe(opDelete, start, err)
	return err
}

func (in *instrumented) Scan(ctx context.Context, prefix, after string, limit int) ([]Item, error) {
	start := time.Now()
	page, err := in.s.Scan(ctx, prefix, after, limit)
	in.observe(opScan, start, err)
	return page, err
}

func (in *instrumented) Batch(ctx context.Context, writes []Write) ([]WriteResult, error) {
	start := time.Now()
	res, err := in.s.Batch(ctx, writes)
	in.observe(opBatch, start, err)
	return res, err
}

func (in *instrumented) Close() error { return in.s.Close() }
