package node

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-pbx/switchboard/events"
)

// callEventQueue is the node's events.Stream as the actors see it: an
// actors.EventSink that also names the call an event is about
// (actors.CallEventSink), so that ?call= selects a call's events.
//
// Call events are appended off the call actors' turns: an append is two
// store writes serialized per account, and a call's signalling must not
// wait for them (a busy account would cap the node's call rate at its
// append rate). AppendCallEvent queues the event and returns; workers,
// one per shard of accounts, append in queue order, so an account's
// events keep their order, and append what has queued up for an account
// in one batch (events.Stream.AppendBatch). A full queue drops the event, counts it in
// switchboard_events_call_dropped_total and logs once a minute: call
// signalling is never slowed by the event stream. Fraud events
// (AppendEvent) are appended at once, as before.
type callEventQueue struct {
	*events.Stream
	log     *slog.Logger
	shards  []chan queuedCallEvent
	seed    maphash.Seed
	dropped prometheus.Counter

	mu       sync.Mutex
	lastWarn time.Time
}

type queuedCallEvent struct {
	account string
	ev      events.Event
}

const (
	callEventShards = 4
	// callEventQueueLen is each shard's queue: some seconds of a busy
	// node's call events.
	callEventQueueLen = 16384
)

func newCallEventQueue(s *events.Stream, log *slog.Logger, reg prometheus.Registerer) (*callEventQueue, error) {
	q := &callEventQueue{Stream: s, log: log, seed: maphash.MakeSeed(),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_events_call_dropped_total",
			Help: "Call events dropped because the node's call-event queue was full (call signalling never waits for the event stream).",
		})}
	if err := reg.Register(q.dropped); err != nil {
		return nil, err
	}
	for range callEventShards {
		q.shards = append(q.shards, make(chan queuedCallEvent, callEventQueueLen))
	}
	return q, nil
}

// AppendCallEvent implements actors.CallEventSink: it queues the event.
func (q *callEventQueue) AppendCallEvent(_ context.Context, account, typ, call, user string, data []byte) error {
	shard := q.shards[maphash.String(q.seed, account)%uint64(len(q.shards))]
	select {
	case shard <- queuedCallEvent{account: account, ev: events.Event{Type: typ, Call: call, User: user, Data: append([]byte(nil), data...)}}:
	default:
		q.dropped.Inc()
		q.mu.Lock()
		warn := time.Since(q.lastWarn) > time.Minute
		if warn {
			q.lastWarn = time.Now()
		}
		q.mu.Unlock()
		if warn {
			q.log.Warn("call-event queue full: call events dropped", "account", account, "type", typ)
		}
	}
	return nil
}

// run appends queued events until ctx ends, then what is still queued,
// each within a short deadline, and returns.
func (q *callEventQueue) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ch := range q.shards {
		wg.Go(func() {
			for {
				select {
				case e := <-ch:
					q.appendQueued(e, ch, ctx.Done())
				case <-ctx.Done():
					for {
						select {
						case e := <-ch:
							q.appendQueued(e, ch, nil)
						default:
							return
						}
					}
				}
			}
		})
	}
	wg.Wait()
}

// appendQueued appends first and what else comes on ch within
// callEventLinger, up to callEventBatch events: each account's events in
// one batch (events.Stream.AppendBatch: two store writes however many),
// in queue order. A worker thus makes at most 1/callEventLinger appends a
// second whatever the call rate, and an event reaches the stream at most
// callEventLinger late. It stops waiting when stop is closed.
func (q *callEventQueue) appendQueued(first queuedCallEvent, ch <-chan queuedCallEvent, stop <-chan struct{}) {
	byAccount := map[string][]events.Event{first.account: {first.ev}}
	order := []string{first.account}
	linger := time.NewTimer(callEventLinger)
	defer linger.Stop()
collect:
	for n := 1; n < callEventBatch; n++ {
		select {
		case e := <-ch:
			if _, ok := byAccount[e.account]; !ok {
				order = append(order, e.account)
			}
			byAccount[e.account] = append(byAccount[e.account], e.ev)
		case <-linger.C:
			break collect
		case <-stop:
			break collect
		}
	}
	for _, account := range order {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := q.AppendBatch(ctx, account, byAccount[account]); err != nil {
			q.log.Warn("appending call events failed", "account", account, "events", len(byAccount[account]), "err", err)
		}
		cancel()
	}
}

// callEventBatch is the most call events one worker takes from its queue
// at once, and callEventLinger how long it waits for more after the first.
const (
	callEventBatch  = 256
	callEventLinger = 10 * time.Millisecond
)
