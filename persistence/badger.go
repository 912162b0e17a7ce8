package persistence

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// BadgerConfig configures OpenBadger. Start from DefaultBadgerConfig.
type BadgerConfig struct {
	// GCInterval is how often the value-log garbage collector runs. Badger
	// keeps large values in append-only log files; GC rewrites a file once
	// enough of it is stale. Default 5m. Zero disables GC.
	GCInterval time.Duration
	// GCDiscardRatio is the fraction of a value-log file that must be stale
	// before GC rewrites it, in (0, 1). Lower reclaims disk sooner at the
	// cost of more rewriting. Default 0.5, badger's own recommendation.
	GCDiscardRatio float64
	// Logger receives badger's warnings and errors (its info and debug
	// chatter is dropped) and GC failures. Default nil: discard.
	Logger *slog.Logger
}

// DefaultBadgerConfig returns the defaults documented on BadgerConfig.
func DefaultBadgerConfig() BadgerConfig {
	return BadgerConfig{
		GCInterval:     5 * time.Minute,
		GCDiscardRatio: 0.5,
	}
}

// Validate reports the first setting that OpenBadger cannot use.
func (c BadgerConfig) Validate() error {
	if c.GCInterval < 0 {
		return fmt.Errorf("persistence: badger GCInterval %v is negative; use 0 to disable GC", c.GCInterval)
	}
	if c.GCInterval > 0 && (c.GCDiscardRatio <= 0 || c.GCDiscardRatio >= 1) {
		return fmt.Errorf("persistence: badger GCDiscardRatio %v must be between 0 and 1 (exclusive); 0.5 is a good start", c.GCDiscardRatio)
	}
	return nil
}

// Key layout inside badger. User keys live under dataPrefix so that the
// store's own bookkeeping (the version sequence) can never collide with them.
var (
	dataPrefix  = []byte("k/")
	versionSeq  = []byte("m/version")
	seqLease    = uint64(1000) // versions leased per sequence write; a crash skips at most this many
	maxTxnTries = 1000         // transaction conflicts tolerated before giving up on one call
)

// versionLen is the size of the big-endian version stored before each value.
const versionLen = 8

// Badger is the embedded Store: a badger database in one folder on local
// disk. Every write is fsynced before it is acknowledged. Only one process
// may open a folder at a time (badger locks it).
type Badger struct {
	gate gate
	db   *badger.DB
	seq  *badger.Sequence
	log  *slog.Logger
	dir  string

	stopGC chan struct{}
	gcDone sync.WaitGroup

	// Writes (Put, Delete, Batch) go through one committer that writes
	// whatever is queued in one transaction: badger syncs its log once per
	// transaction, so a batch of writes costs one sync instead of one each
	// (group commit).
	groups     chan *writeGroup
	stopPuts   chan struct{}
	committing sync.WaitGroup
}

// writeGroup is the writes of one call (Put and Delete: one; Batch: its
// own) waiting for the committer. A group is never split across
// transactions.
type writeGroup struct {
	ops  []writeOp
	err  error // the transaction failed: no op applied
	done chan struct{}
}

// writeOp is one write of a group and, once committed, what it did.
type writeOp struct {
	Write
	WriteResult
}

// maxPutBatch bounds the writes committed in one transaction (a larger
// Batch is committed alone).
const maxPutBatch = 256

var _ Store = (*Badger)(nil)

// OpenBadger opens (creating if needed) the badger store in dir. Close it to
// stop its background work and release the folder.
func OpenBadger(dir string, cfg BadgerConfig) (*Badger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)).
		With("component", "persistence", "engine", "badger", "dir", dir)

	opts := badger.DefaultOptions(dir).
		// An acknowledged Put must survive SIGKILL and power loss.
		WithSyncWrites(true).
		WithLogger(badgerLogger{log}).
		// Badger's metrics are process-global expvars; ours are per registry.
		WithMetricsEnabled(false)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("persistence: open badger store in %s: %w (is another switchboard using this --data folder?)", dir, err)
	}
	seq, err := db.GetSequence(versionSeq, seqLease)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("persistence: badger store in %s: read version sequence: %w", dir, err)
	}
	b := &Badger{db: db, seq: seq, log: log, dir: dir, stopGC: make(chan struct{}),
		groups: make(chan *writeGroup, maxPutBatch), stopPuts: make(chan struct{})}
	b.committing.Go(b.commitLoop)
	if cfg.GCInterval > 0 {
		b.gcDone.Go(func() { b.gcLoop(cfg.GCInterval, cfg.GCDiscardRatio) })
	}
	return b, nil
}

// Get implements Store.
func (b *Badger) Get(ctx context.Context, key string) (Item, error) {
	if err := b.gate.enterKey(ctx, key); err != nil {
		return Item{}, err
	}
	defer b.gate.exit()
	var it Item
	err := b.db.View(func(txn *badger.Txn) error {
		bi, err := txn.Get(dataKey(key))
		if err != nil {
			return err
		}
		it, err = decodeItem(key, bi)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Item{}, ErrNotFound
	}
	if err != nil {
		return Item{}, fmt.Errorf("persistence: badger get %q: %w", key, err)
	}
	return it, nil
}

// Put implements Store. It returns once the put is committed and synced,
// in a transaction it may share with other writes queued at the same time.
func (b *Badger) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	res, err := b.Batch(ctx, []Write{{Key: key, Value: value, Expect: expect}})
	if err != nil {
		return 0, err
	}
	return res[0].Version, res[0].Err
}

// Delete implements Store. Like Put, it shares its transaction (and its
// sync) with the writes queued at the same time.
func (b *Badger) Delete(ctx context.Context, key string, expect uint64) error {
	res, err := b.Batch(ctx, []Write{{Key: key, Expect: expect, Delete: true}})
	if err != nil {
		return err
	}
	return res[0].Err
}

// Batch implements Store: its writes are one group, committed in one
// transaction (with other writes queued at the same time) and one sync.
func (b *Badger) Batch(ctx context.Context, writes []Write) ([]WriteResult, error) {
	if err := checkWrites(writes); err != nil {
		return nil, err
	}
	if len(writes) == 0 {
		return nil, ctx.Err()
	}
	return b.submit(ctx, writes)
}

// submit hands writes to the committer as one group and waits for it.
func (b *Badger) submit(ctx context.Context, writes []Write) ([]WriteResult, error) {
	if err := b.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer b.gate.exit()
	g := &writeGroup{ops: make([]writeOp, len(writes)), done: make(chan struct{})}
	for i, w := range writes {
		g.ops[i].Write = w
	}
	select {
	case b.groups <- g:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-g.done:
	case <-ctx.Done():
		// Not acknowledged; it may still be committed.
		return nil, ctx.Err()
	}
	if g.err != nil {
		return nil, g.err
	}
	res := make([]WriteResult, len(g.ops))
	for i, op := range g.ops {
		res[i] = op.WriteResult
	}
	return res, nil
}

// commitLoop commits queued groups until Close: each turn takes every
// group waiting (up to maxPutBatch writes) into one transaction.
func (b *Badger) commitLoop() {
	batch := make([]*writeGroup, 0, maxPutBatch)
	for {
		select {
		case g := <-b.groups:
			batch = append(batch[:0], g)
		case <-b.stopPuts:
			return
		}
		n := len(batch[0].ops)
	more:
		for n < maxPutBatch {
			select {
			case g := <-b.groups:
				batch = append(batch, g)
				n += len(g.ops)
			default:
				break more
			}
		}
		b.commit(batch)
		for _, g := range batch {
			close(g.done)
		}
		clear(batch)
	}
}

// commit writes the groups in one transaction, each write checked against
// the version it expects (a later write of the same key sees the earlier
// one). A write whose check fails gets ErrConflict or ErrNotFound and the
// others go on; groups too big for one transaction together are split
// (a group alone too big fails).
func (b *Badger) commit(groups []*writeGroup) {
	err := b.update(func(txn *badger.Txn) error {
		for _, g := range groups {
			for i := range g.ops {
				if err := b.apply(txn, &g.ops[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if errors.Is(err, badger.ErrTxnTooBig) && len(groups) > 1 {
		b.commit(groups[:len(groups)/2])
		b.commit(groups[len(groups)/2:])
		return
	}
	if err != nil {
		for _, g := range groups {
			g.err = fmt.Errorf("persistence: badger write %q: %w", g.ops[0].Key, err)
		}
	}
}

func (b *Badger) apply(txn *badger.Txn, op *writeOp) error {
	op.WriteResult = WriteResult{} // a rerun after a conflict starts over
	k := dataKey(op.Key)
	cur, exists, err := readVersion(txn, k)
	if err != nil {
		return err
	}
	if op.Err = checkVersion(op.Delete, exists, cur, op.Expect); op.Err != nil {
		return nil
	}
	if op.Delete {
		return txn.Delete(k)
	}
	// Drawn inside the transaction, after the read: if another writer
	// commits this key first, the commit conflicts and the rerun draws a
	// newer version, so a key's versions rise in commit order.
	v, err := b.nextVersion()
	if err != nil {
		return err
	}
	buf := make([]byte, versionLen+len(op.Value))
	binary.BigEndian.PutUint64(buf, v)
	copy(buf[versionLen:], op.Value)
	if err := txn.SetEntry(badger.NewEntry(k, buf)); err != nil {
		return err
	}
	op.Version = v
	return nil
}

// Scan implements Store.
func (b *Badger) Scan(ctx context.Context, prefix, after string, limit int) ([]Item, error) {
	limit, err := b.gate.enterScan(ctx, prefix, after, limit)
	if err != nil {
		return nil, err
	}
	defer b.gate.exit()
	var page []Item
	err = b.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = dataKey(prefix)
		opts.PrefetchSize = min(limit, opts.PrefetchSize)
		iter := txn.NewIterator(opts)
		defer iter.Close()
		afterKey := dataKey(after)
		for iter.Seek(dataKey(max(prefix, after))); iter.Valid() && len(page) < limit; iter.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			bi := iter.Item()
			if bytes.Equal(bi.Key(), afterKey) {
				continue
			}
			it, err := decodeItem(string(bi.Key()[len(dataPrefix):]), bi)
			if err != nil {
				return err
			}
			page = append(page, it)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: badger scan %q after %q: %w", prefix, after, err)
	}
	return page, nil
}

// Close stops value-log GC, waits for calls in flight, and closes the
// database. Later calls return ErrClosed; Close again returns nil.
func (b *Badger) Close() error {
	return b.gate.close(func() error {
		close(b.stopGC)
		b.gcDone.Wait()
		// No put is in flight (the gate waited for them): stop the committer.
		close(b.stopPuts)
		b.committing.Wait()
		// Hand back the unused part of the lease, so a clean restart does
		// not skip versions. Failing that only skips some; not worth
		// failing Close for.
		if err := b.seq.Release(); err != nil {
			b.log.Warn("release version lease", "err", err)
		}
		if err := b.db.Close(); err != nil {
			return fmt.Errorf("persistence: close badger store in %s: %w", b.dir, err)
		}
		return nil
	})
}

// update runs fn in a read-write transaction, rerunning it (with a fresh
// read) when badger reports that another transaction committed a key this
// one read. fn's own errors end the call.
func (b *Badger) update(fn func(*badger.Txn) error) error {
	var err error
	for range maxTxnTries {
		if err = b.db.Update(fn); !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("gave up after %d transaction conflicts: %w", maxTxnTries, err)
}

// nextVersion draws from the store-wide sequence. It never returns
// MustNotExist (0): the sequence starts at 0, versions at 1. The sequence
// is persisted a lease ahead of use, so versions rise across restarts and
// crashes alike and never repeat.
func (b *Badger) nextVersion() (uint64, error) {
	n, err := b.seq.Next()
	if err != nil {
		return 0, fmt.Errorf("next version: %w", err)
	}
	return n + 1, nil
}

func (b *Badger) gcLoop(interval time.Duration, discardRatio float64) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-b.stopGC:
			return
		case <-tick.C:
		}
		// One call rewrites at most one file; keep going while it finds work.
		for {
			select {
			case <-b.stopGC:
				return
			default:
			}
			err := b.db.RunValueLogGC(discardRatio)
			if err == nil {
				continue
			}
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				b.log.Warn("value-log GC failed; will retry at the next interval", "err", err)
			}
			break
		}
	}
}

func dataKey(key string) []byte {
	k := make([]byte, 0, len(dataPrefix)+len(key))
	return append(append(k, dataPrefix...), key...)
}

// readVersion reads key's version inside txn. Reading it also enrolls the
// key in badger's conflict detection, which is what makes CAS safe.
func readVersion(txn *badger.Txn, k []byte) (version uint64, exists bool, err error) {
	bi, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	err = bi.Value(func(v []byte) error {
		if len(v) < versionLen {
			return fmt.Errorf("corrupt entry %q: %d bytes, shorter than its version", k, len(v))
		}
		version = binary.BigEndian.Uint64(v)
		return nil
	})
	return version, err == nil, err
}

func decodeItem(key string, bi *badger.Item) (Item, error) {
	v, err := bi.ValueCopy(nil)
	if err != nil {
		return Item{}, err
	}
	if len(v) < versionLen {
		return Item{}, fmt.Errorf("corrupt entry %q: %d bytes, shorter than its version", key, len(v))
	}
	return Item{Key: key, Value: v[versionLen:], Version: binary.BigEndian.Uint64(v)}, nil
}

// badgerLogger routes badger's log to slog: errors and warnings are kept,
// info and debug (startup banners, compaction progress) are dropped.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(format string, args ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (b badgerLogger) Warningf(format string, args ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
