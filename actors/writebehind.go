package actors

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// writeBehind stores records that no client waits for (the records of
// messages that have already had their final answer) off the actors'
// mailboxes: a busy account's messaging supervisor would otherwise wait
// for one store write per message, and that caps the account's message
// rate at the store's write rate. A worker writes what has queued up in
// one store batch, so that the store syncs once for many records. Each key's writes keep their order (a
// key always goes to the same worker). A full queue makes the caller
// write itself (backpressure, never loss). Writes still queued when the
// process dies are lost: only such records go through here.
type writeBehind struct {
	store  persistence.Store
	log    *slog.Logger
	seed   maphash.Seed
	shards []chan wbItem

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

type wbItem struct {
	key     string
	val     []byte
	barrier chan struct{} // flush: closed when reached
}

const (
	writeBehindShards  = 4
	writeBehindQueue   = 4096
	writeBehindBatch   = 256
	writeBehindTimeout = 5 * time.Second
)

func newWriteBehind(store persistence.Store, log *slog.Logger) *writeBehind {
	w := &writeBehind{store: store, log: log, seed: maphash.MakeSeed()}
	for range writeBehindShards {
		ch := make(chan wbItem, writeBehindQueue)
		w.shards = append(w.shards, ch)
		w.wg.Go(func() { w.run(ch) })
	}
	return w
}

// run writes what comes on ch: each record with those queued behind it,
// up to writeBehindBatch, in one store batch (one commit and sync for
// all), in queue order. A barrier is closed once what came before it is
// written.
func (w *writeBehind) run(ch chan wbItem) {
	batch := make([]wbItem, 0, writeBehindBatch)
	for it := range ch {
		batch = append(batch[:0], it)
	more:
		for len(batch) < writeBehindBatch {
			select {
			case next, ok := <-ch:
				if !ok {
					break more
				}
				batch = append(batch, next)
			default:
				break more
			}
		}
		w.writeBatch(batch)
	}
}

// writeBatch writes the records of items in one store batch, then closes
// their barriers.
func (w *writeBehind) writeBatch(items []wbItem) {
	writes := make([]persistence.Write, 0, len(items))
	for _, it := range items {
		if it.barrier == nil {
			writes = append(writes, persistence.Write{Key: it.key, Value: it.val, Expect: persistence.AnyVersion})
		}
	}
	if len(writes) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), writeBehindTimeout)
		res, err := w.store.Batch(ctx, writes)
		cancel()
		if err != nil {
			w.log.Warn("written-behind records were not stored", "records", len(writes), "first", writes[0].Key, "err", err)
		}
		for i, r := range res {
			if r.Err != nil {
				w.log.Warn("a written-behind record was not stored", "key", writes[i].Key, "err", r.Err)
			}
		}
	}
	for _, it := range items {
		if it.barrier != nil {
			close(it.barrier)
		}
	}
}

// put queues rec under key, or writes it at once when the queue is full
// or closed.
func (w *writeBehind) put(key string, rec proto.Message) error {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return err
	}
	it := wbItem{key: key, val: b}
	w.mu.RLock()
	if !w.closed {
		select {
		case w.shards[maphash.String(w.seed, key)%uint64(len(w.shards))] <- it:
			w.mu.RUnlock()
			return nil
		default:
		}
	}
	w.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), writeBehindTimeout)
	defer cancel()
	if _, err := w.store.Put(ctx, key, b, persistence.AnyVersion); err != nil {
		w.log.Warn("a written-behind record was not stored", "key", key, "err", err)
	}
	return nil
}

// flush returns once every record queued before it is written.
func (w *writeBehind) flush() {
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return
	}
	var barriers []chan struct{}
	for _, ch := range w.shards {
		b := make(chan struct{})
		barriers = append(barriers, b)
		ch <- wbItem{barrier: b}
	}
	w.mu.RUnlock()
	for _, b := range barriers {
		<-b
	}
}

// close writes what is queued and stops the workers.
func (w *writeBehind) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	for _, ch := range w.shards {
		close(ch)
	}
	w.mu.Unlock()
	w.wg.Wait()
}
