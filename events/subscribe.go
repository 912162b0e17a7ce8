package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ResetError is what Next returns, once, when the subscription cannot
// continue right after After: the events between After and Next were
// pruned (older than the retention window), or After is beyond the end of
// the stream (the client's id is not from this stream). The subscription
// is not over: the following Next calls return events from Next on. An
// SSE layer shows it as "event: reset".
type ResetError struct {
	// After is the position the subscriber asked to resume after.
	After uint64 `json:"after"`
	// Next is the first sequence the stream goes on from.
	Next uint64 `json:"next"`
	// Reason is "expired" (events after After were pruned) or "ahead"
	// (After is past the stream's last event).
	Reason string `json:"reason"`
}

func (r *ResetError) Error() string {
	if r.Reason == ResetAhead {
		return fmt.Sprintf("events: resume point %d is past the end of the stream; continuing from %d", r.After, r.Next)
	}
	return fmt.Sprintf("events: events %d to %d are past the retention window and gone; continuing from %d", r.After+1, r.Next-1, r.Next)
}

// Reasons of a ResetError.
const (
	ResetExpired = "expired"
	ResetAhead   = "ahead"
)

// Subscription reads one account's events in sequence order: first the
// backlog from the store, then new ones as they are appended on any node.
// It starts no goroutine and holds no store resource between calls; one
// goroutine at a time may call Next. Close it when done.
type Subscription struct {
	s       *Stream
	a       *acct
	account string
	filter  Filter
	cursor  uint64 // the last sequence handed out or skipped
	buf     []Event
	reset   *ResetError
	done    bool
	fresh   bool // read the head from the store on every fill (webhooks)
}

// Subscribe returns a subscription to account's events with Seq > after
// that filter selects. It reads the head once, to detect an after past
// the end of the stream (reported by the first Next as a *ResetError).
//
// Latency: an append on this node wakes the subscription at once; one on
// another node is seen at the next poll of the head (Config.PollInterval,
// 25ms by default, plus a store read and a scan).
func (s *Stream) Subscribe(ctx context.Context, account string, after uint64, filter Filter) (*Subscription, error) {
	if err := checkAccount(account); err != nil {
		return nil, err
	}
	select {
	case <-s.closed:
		return nil, ErrClosed
	default:
	}
	a := s.account(account)
	h, earlier, _, err := s.readHead(ctx, account)
	if err != nil {
		return nil, err
	}
	s.saw(a, h, earlier, false)
	sub := &Subscription{s: s, a: a, account: account, filter: filter, cursor: after}
	if after > h.Seq {
		sub.reset = &ResetError{After: after, Next: h.Seq + 1, Reason: ResetAhead}
		sub.cursor = h.Seq
		s.met.resets.Inc()
	}
	s.met.subscribers.Inc()
	return sub, nil
}

// Cursor is the sequence of the last event the subscription has passed:
// handed out, or skipped by the filter. Resuming after it loses nothing.
func (sub *Subscription) Cursor() uint64 { return sub.cursor }

// Close ends the subscription. It is idempotent.
func (sub *Subscription) Close() {
	if !sub.done {
		sub.done = true
		sub.s.met.subscribers.Dec()
	}
}

// Next returns the next selected event, waiting for one until ctx ends.
// It returns a *ResetError once when events were lost to retention (then
// goes on), ctx's error when ctx ends, ErrClosed when the Stream closed,
// and a store error as it meets one (calling Next again retries).
func (sub *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		if sub.done {
			return Event{}, ErrClosed
		}
		if r := sub.reset; r != nil {
			sub.reset = nil
			return Event{}, r
		}
		if len(sub.buf) > 0 {
			e := sub.buf[0]
			sub.buf = sub.buf[1:]
			return e, nil
		}
		sub.a.mu.Lock()
		wake := sub.a.wake // before reading, so that no append is missed
		sub.a.mu.Unlock()
		moved, err := sub.fill(ctx)
		if err != nil {
			return Event{}, err
		}
		if moved {
			continue
		}
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-sub.s.closed:
			sub.Close()
			return Event{}, ErrClosed
		case <-wake:
		case <-time.After(sub.s.cfg.PollInterval):
		}
	}
}

// fill reads the events after the cursor into buf (those the filter
// selects) and reports whether the cursor moved or a reset is due.
//
// Why this is complete: an appender copies the head's batch into its log
// slots before it moves the head on, so when the head's batch starts at B
// every event before B is in the log unless pruned, and the batch itself
// is in the head. A sequence missing from the log below B was therefore
// pruned.
func (sub *Subscription) fill(ctx context.Context) (bool, error) {
	s := sub.s
	var h Event
	var earlier []Event
	var err error
	if sub.fresh {
		h, earlier, _, err = s.readHead(ctx, sub.account)
	} else {
		h, earlier, err = s.peekHead(ctx, sub.account, sub.a)
	}
	if err != nil {
		return false, err
	}
	if h.Seq <= sub.cursor {
		return false, nil
	}
	page, err := s.store.Scan(ctx, logAccount(sub.account), slotKey(sub.account, sub.cursor), s.cfg.PageSize)
	if err != nil {
		return false, fmt.Errorf("events: reading %s after %d: %w", sub.account, sub.cursor, err)
	}
	start := sub.cursor
	next := sub.cursor + 1
	for _, it := range page {
		seq, ok := slotSeq(sub.account, it.Key)
		if !ok {
			return false, fmt.Errorf("%w: key %s", ErrCorrupt, it.Key)
		}
		if seq != next {
			if next != start+1 {
				break // pruned under us mid-page: the next fill sees it
			}
			sub.lost(seq)
			next = seq
		}
		var e Event
		if err := json.Unmarshal(it.Value, &e); err != nil || e.Seq != seq {
			return false, fmt.Errorf("%w: %s: %v", ErrCorrupt, it.Key, err)
		}
		sub.take(e)
		next = seq + 1
	}
	// The head's batch may not be in its slots yet; the scan's end is the
	// log's end only when the page was not full.
	if len(page) < s.cfg.PageSize && h.Seq >= next {
		batch := append(earlier[:len(earlier):len(earlier)], h)
		if first := batch[0].Seq; first > next {
			if next != start+1 {
				return sub.cursor != start || sub.reset != nil, nil // pruned under us mid-page
			}
			sub.lost(first)
			next = first
		}
		for _, e := range batch {
			if e.Seq == next {
				sub.take(e)
				next++
			}
		}
	}
	return sub.cursor != start || sub.reset != nil, nil
}

// lost records that the events from the cursor up to (not including) seq
// were pruned.
func (sub *Subscription) lost(seq uint64) {
	sub.reset = &ResetError{After: sub.cursor, Next: seq, Reason: ResetExpired}
	sub.s.met.resets.Inc()
}

// take passes e to the reader if the filter selects it, and moves past it.
func (sub *Subscription) take(e Event) {
	if sub.filter.Match(e) {
		sub.buf = append(sub.buf, e)
	}
	sub.cursor = e.Seq
	sub.s.met.read.Inc()
}
