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

// observe records a call of op that started at start and returned *err;
// calls defer it.
func (in *instrumented) observe(op opKind, start time.Time, err *error) {
	res := resultOK
	switch {
	case *err == nil:
	case errors.Is(*err, ErrNotFound):
		res = resultNotFound
	case errors.Is(*err, ErrConflict):
		res = resultConflict
	default:
		res = resultError
	}
	in.obs[op][res].Observe(time.Since(start).Seconds())
}

func (in *instrumented) Get(ctx context.Context, key string) (_ Item, err error) {
	defer in.observe(opGet, time.Now(), &err)
	return in.s.Get(ctx, key)
}

func (in *instrumented) Put(ctx context.Context, key string, value []byte, expect uint64) (_ uint64, err error) {
	defer in.observe(opPut, time.Now(), &err)
	return in.s.Put(ctx, key, value, expect)
}

func (in *instrumented) Delete(ctx context.Context, key string, expect uint64) (err error) {
	defer in.observe(opDelete, time.Now(), &err)
	return in.s.Delete(ctx, key, expect)
}

func (in *instrumented) Scan(ctx context.Context, prefix, after string, limit int) (_ []Item, err error) {
	defer in.observe(opScan, time.Now(), &err)
	return in.s.Scan(ctx, prefix, after, limit)
}

func (in *instrumented) Batch(ctx context.Context, writes []Write) (_ []WriteResult, err error) {
	defer in.observe(opBatch, time.Now(), &err)
	return in.s.Batch(ctx, writes)
}

func (in *instrumented) Close() error { return in.s.Close() }
