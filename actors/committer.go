package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// committer writes call records and their index entries off the call's
// turn, so that the SIP edge, which waits for StartCall, AnswerCall and
// EndCall before it relays, never waits for a disk sync (group commit).
//
// A write is queued and the caller goes on. The committer flushes the
// queue at most interval after its first write (sooner when it holds
// recordBatchMax keys, or a reader syncs): everything queued goes in one
// persistence.Store Batch, one atomic commit and one sync. So a record is
// durable within interval plus the commit in flight when it was queued
// plus its own; a crash of the process loses what was queued or in flight
// (at most that window), never what was committed before. Close flushes
// what is queued.
//
// Order: a key holds at most one queued write (a later write replaces it:
// the later state wins) and one in flight; batches commit one after the
// other, and a batch holds every write queued before it was taken, so a
// write never becomes durable after a write queued after it, and a key's
// states are stored in the order they were written.
//
// Compare-and-set: each key carries the version its next write expects:
// the caller's for the first write (a call record: the version it loaded,
// or MustNotExist), then the version its previous commit wrote. A call
// record's only writer is its activation, which does not stop while its
// writes are pending (call.receive) and, when a new activation of the
// call loads while a stopped one's writes are still pending here, takes
// them over (lookup): so a lost compare-and-set means that another
// process wrote the record; the write is dropped and logged, and the
// activation reloads (failed).
//
// A store failure keeps the batch queued (merged under what was queued
// since; the later state still wins) and is logged and retried, with a
// pause doubling from interval to a second; nothing is dropped while the
// process lives.
//
// Reads see pending writes: pending (ReadCall, a call's load) and sync
// (a scan of the recent-calls index) read one's own writes.
//
// With interval < 0 the committer writes through: put commits its write
// before it returns (one Batch of one write), as call records were
// written before (the benchmark's baseline).
type committer struct {
	store    persistence.Store
	log      *slog.Logger
	interval time.Duration
	timeout  time.Duration // bounds one commit
	durable  prometheus.Observer
	// onDurable, when set (tests, benchmarks), is told each write's time
	// from queued to durable.
	onDurable func(time.Duration)

	mu      sync.Mutex
	keys    map[string]*commitKey // keys queued or in flight
	queue   []*commitKey          // keys with a queued write, in the order first queued
	firstAt time.Time             // when the queue's first write came
	gen     uint64                // the queue's batch number; the one in flight is gen-1
	done    uint64                // the last batch number committed
	settled chan struct{}         // closed and replaced when a batch commits
	closed  bool

	kick, urgent chan struct{} // the queue got its first write; flush now
	stop         chan struct{}
	stopped      chan struct{}
}

// commitKey is one key's writes in the committer. Its fields are guarded
// by committer.mu; its owner (a call activation) keeps the pointer to go on
// from the versions its writes got.
type commitKey struct {
	key      string
	queued   *persistence.Write
	queuedAt time.Time
	inflight *persistence.Write
	flightAt time.Time
	// expect is the version the next commit of the key expects.
	expect uint64
	// err is set when a write lost its compare-and-set: the owner reloads.
	err error
	// wake, when set, is called once the key has nothing pending.
	wake func()
}

const (
	// defaultRecordFlush is Config.RecordFlushInterval's default: at 800
	// calls a second, a flush carries some twenty records.
	defaultRecordFlush = 10 * time.Millisecond
	// recordBatchMax is how many queued keys make the committer flush at
	// once rather than wait out the interval.
	recordBatchMax = 256
	// maxRetryPause bounds the pause between retries of a failed commit.
	maxRetryPause = time.Second
	// closeFlushTimeout bounds how long Close keeps retrying to flush.
	closeFlushTimeout = 30 * time.Second
)

func newCommitter(store persistence.Store, log *slog.Logger, interval, timeout time.Duration, reg prometheus.Registerer) (*committer, error) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "switchboard_actor_record_durable_seconds",
		Help:    "Time from a call record's write to its durable commit (group commit).",
		Buckets: []float64{.001, .0025, .005, .01, .015, .02, .03, .05, .1, .25, .5, 1, 5},
	})
	if err := register(reg, h); err != nil {
		return nil, err
	}
	w := &committer{store: store, log: log.With("subcomponent", "committer"), interval: interval, timeout: timeout, durable: h,
		keys: map[string]*commitKey{}, gen: 1, settled: make(chan struct{}),
		kick: make(chan struct{}, 1), urgent: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	if interval < 0 {
		close(w.stopped)
		return w, nil
	}
	go w.run()
	return w, nil
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// put queues wr (its Expect counts only for the key's first write here)
// and returns the key's handle, which the caller passes again with its
// next write of the key (nil: none yet). Only when writing through does
// it wait, and return the store's error.
func (w *committer) put(ctx context.Context, ck *commitKey, wr persistence.Write) (*commitKey, error) {
	if w.interval < 0 {
		return w.writeThrough(ctx, ck, wr)
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.writeThrough(ctx, ck, wr)
	}
	if cur := w.keys[wr.Key]; cur != nil {
		ck = cur
	} else if ck == nil || ck.err != nil {
		ck = &commitKey{key: wr.Key, expect: wr.Expect}
	}
	w.keys[wr.Key] = ck
	now := time.Now()
	if ck.queued == nil {
		ck.queuedAt = now
		if len(w.queue) == 0 {
			w.firstAt = now
			signal(w.kick)
		}
		w.queue = append(w.queue, ck)
		if len(w.queue) >= recordBatchMax {
			signal(w.urgent)
		}
	}
	ck.queued = &wr
	w.mu.Unlock()
	return ck, nil
}

// writeThrough commits wr alone before returning.
func (w *committer) writeThrough(ctx context.Context, ck *commitKey, wr persistence.Write) (*commitKey, error) {
	if ck == nil || ck.err != nil {
		ck = &commitKey{key: wr.Key, expect: wr.Expect}
	}
	wr.Expect = ck.expect
	res, err := w.store.Batch(ctx, []persistence.Write{wr})
	if err == nil {
		err = res[0].Err
	}
	switch {
	case err == nil:
		ck.expect = nextExpect(ck.expect, wr, res[0].Version)
	case errors.Is(err, persistence.ErrNotFound) && wr.Delete:
		err = nil
	}
	return ck, err
}

// nextExpect is what a key's next write expects after wr committed at
// version v.
func nextExpect(expect uint64, wr persistence.Write, v uint64) uint64 {
	switch {
	case expect == persistence.AnyVersion:
		return expect
	case wr.Delete:
		return persistence.MustNotExist
	}
	return v
}

// lookup returns the handle of key's pending writes, or nil.
func (w *committer) lookup(key string) *commitKey {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.keys[key]
}

// pending returns key's latest pending write: ok false when there is none.
func (w *committer) pending(key string) (wr persistence.Write, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ck := w.keys[key]
	switch {
	case ck == nil:
		return wr, false
	case ck.queued != nil:
		return *ck.queued, true
	case ck.inflight != nil:
		return *ck.inflight, true
	}
	return wr, false
}

// busy tells whether ck has writes pending; if so, wake is called once
// it has none.
func (w *committer) busy(ck *commitKey, wake func()) bool {
	if ck == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ck.queued == nil && ck.inflight == nil {
		return false
	}
	ck.wake = wake
	return true
}

// failed returns the error that made ck's writes be dropped (a lost
// compare-and-set), or nil.
func (w *committer) failed(ck *commitKey) error {
	if ck == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return ck.err
}

// sync returns once every write queued before it is durable, or ctx ends;
// it asks for a flush now rather than at the interval.
func (w *committer) sync(ctx context.Context) error {
	w.mu.Lock()
	target := w.gen
	if len(w.queue) == 0 {
		target-- // only the batch in flight, if any
	}
	for w.done < target {
		ch := w.settled
		w.mu.Unlock()
		signal(w.urgent)
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-w.stopped:
			return nil
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

// run flushes until close, then flushes what is left.
func (w *committer) run() {
	defer close(w.stopped)
	pause := w.interval
	for {
		select {
		case <-w.kick:
		case <-w.urgent:
		case <-w.stop:
			w.final()
			return
		}
		w.mu.Lock()
		wait := w.interval - time.Since(w.firstAt)
		w.mu.Unlock()
		if wait > 0 {
			sleep(wait, w.stop, w.urgent)
		}
		if err := w.flush(); err != nil {
			w.log.Warn("committing call records failed; they stay queued and are retried", "err", err, "retry_in", pause)
			sleep(pause, w.stop, nil)
			pause = min(2*max(pause, time.Millisecond), maxRetryPause)
			signal(w.kick)
			continue
		}
		pause = w.interval
	}
}

// final flushes what is queued at close, retrying a failing store for up
// to closeFlushTimeout; what is still not written then is logged as lost.
func (w *committer) final() {
	deadline := time.Now().Add(closeFlushTimeout)
	for pause := max(w.interval, time.Millisecond); ; pause = min(2*pause, maxRetryPause) {
		err := w.flush()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			w.mu.Lock()
			n := len(w.queue)
			w.mu.Unlock()
			w.log.Error("call records not written at shutdown: the store kept failing", "records", n, "err", err)
			return
		}
		time.Sleep(pause) // shutting down: nothing else to wait for
	}
}

// flush commits everything queued in one batch. On a store failure the
// batch goes back to the queue and the error is returned.
func (w *committer) flush() error {
	w.mu.Lock()
	batch := w.queue
	w.queue = nil
	gen := w.gen
	w.gen++
	writes := make([]persistence.Write, len(batch))
	for i, ck := range batch {
		ck.inflight, ck.flightAt, ck.queued = ck.queued, ck.queuedAt, nil
		writes[i] = *ck.inflight
		writes[i].Expect = ck.expect
	}
	w.mu.Unlock()
	if len(batch) == 0 {
		w.settle(gen, nil, nil, nil)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	res, err := w.store.Batch(ctx, writes)
	cancel()
	if err != nil {
		w.requeue(batch)
		return fmt.Errorf("batch of %d writes: %w", len(writes), err)
	}
	w.settle(gen, batch, writes, res)
	return nil
}

// requeue puts a failed batch back in front of the queue: a key written
// again since keeps its newer write, which then expects what the failed
// one did.
func (w *committer) requeue(batch []*commitKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	inBatch := make(map[*commitKey]bool, len(batch))
	for _, ck := range batch {
		if ck.queued == nil {
			ck.queued = ck.inflight
		}
		ck.queuedAt, ck.inflight = ck.flightAt, nil
		inBatch[ck] = true
	}
	rest := slices.DeleteFunc(w.queue, func(ck *commitKey) bool { return inBatch[ck] })
	w.queue = append(slices.Clip(batch), rest...)
}

// settle records a committed batch: each key's next expected version, a
// lost compare-and-set, the keys with nothing pending left.
func (w *committer) settle(gen uint64, batch []*commitKey, writes []persistence.Write, res []persistence.WriteResult) {
	now := time.Now()
	var wakes []func()
	w.mu.Lock()
	for i, ck := range batch {
		r, wr := res[i], writes[i]
		switch {
		case r.Err == nil:
			ck.expect = nextExpect(ck.expect, wr, r.Version)
		case wr.Delete && errors.Is(r.Err, persistence.ErrNotFound):
			ck.expect = nextExpect(ck.expect, wr, 0)
		default:
			ck.err = r.Err
			w.log.Error("a call record lost its compare-and-set: another process wrote it; dropped, and its call reloads", "key", ck.key, "err", r.Err)
			if ck.queued != nil {
				ck.queued = nil
				w.queue = slices.DeleteFunc(w.queue, func(c *commitKey) bool { return c == ck })
			}
		}
		d := now.Sub(ck.flightAt)
		w.durable.Observe(d.Seconds())
		if w.onDurable != nil {
			w.onDurable(d)
		}
		ck.inflight = nil
		if ck.queued == nil {
			if w.keys[ck.key] == ck {
				delete(w.keys, ck.key)
			}
			if ck.wake != nil && !w.closed {
				wakes = append(wakes, ck.wake)
			}
			ck.wake = nil
		}
	}
	w.done = gen
	close(w.settled)
	w.settled = make(chan struct{})
	w.mu.Unlock()
	for _, f := range wakes {
		f()
	}
}

// close flushes what is queued (retrying a failing store for a while)
// and stops; later writes are written through.
func (w *committer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	if w.interval >= 0 {
		close(w.stop)
	}
	<-w.stopped
}
