package events

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrInvalid means an argument breaks a rule (account, type, ids,
	// data, URL); the message names it.
	ErrInvalid = errors.New("events: invalid")
	// ErrTooLarge means an event is over Config.MaxEventBytes.
	ErrTooLarge = errors.New("events: event too large")
	// ErrContention means Append lost Config.MaxAppendTries
	// compare-and-sets in a row to other nodes; nothing was appended.
	ErrContention = errors.New("events: too much contention on the account's stream; retry")
	// ErrClosed means the Stream was closed: subscriptions end with it.
	ErrClosed = errors.New("events: stream closed")
	// ErrNoWebhook means the account has no webhook.
	ErrNoWebhook = errors.New("events: no webhook")
	// ErrCorrupt means a stored record could not be decoded.
	ErrCorrupt = errors.New("events: corrupt record")
)

// Stream is this node's handle on every account's event stream. Streams
// of several nodes sharing one store make one stream per account. Append
// and Subscribe are safe for concurrent use and start no goroutine; Run
// delivers webhooks and prunes.
type Stream struct {
	cfg   Config
	store persistence.Store
	log   *slog.Logger
	met   *metrics
	self  string // Node plus a random suffix: this Stream in leases

	mu     sync.Mutex
	accts  map[string]*acct
	closed chan struct{}
	close  sync.Once

	// work tells Run which accounts this node appended to: their webhooks
	// to deliver, their old events to prune.
	workMu  sync.Mutex
	work    map[string]job
	workSig chan struct{} // 1-buffered: "work is not empty"
}

// acct is what this node knows of one account's stream.
type acct struct {
	// appendMu serializes this node's appends to the account, so that they
	// never conflict with each other in the store.
	appendMu sync.Mutex
	// Guarded by appendMu: the head as this node last wrote or read it.
	head         Event
	earlier      []Event // the head's batch before it, oldest first
	headVer      uint64  // persistence.MustNotExist: no head yet
	known        bool    // head and headVer are current as far as we know
	materialized bool    // the head's batch is also in its log slots
	lastPrune    time.Time

	// Guarded by mu: the shared view of the head for subscribers.
	mu       sync.Mutex
	wake     chan struct{} // closed when a newer head is seen here
	seen     Event         // the newest head seen (Seq 0: none)
	seenPrev []Event       // seen's batch before it, oldest first
	seenAt   time.Time     // when seen was read from the store
	seenRead bool          // seenAt is set
}

// New returns a Stream on cfg.Store.
func New(cfg Config) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	suffix, err := randomHex(cfg.Rand, 4, "the node's lease suffix")
	if err != nil {
		return nil, err
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Stream{
		cfg: cfg, store: cfg.Store, met: met,
		log:     cfg.Logger.With("component", "events"),
		self:    cfg.Node + "~" + suffix,
		accts:   make(map[string]*acct),
		closed:  make(chan struct{}),
		work:    make(map[string]job),
		workSig: make(chan struct{}, 1),
	}, nil
}

// Close ends every subscription (Next returns ErrClosed) and refuses new
// ones, so that a node's SSE responses finish before its HTTP server
// shuts down. Append keeps working; Run is stopped by its context. Close
// is idempotent.
func (s *Stream) Close() error {
	s.close.Do(func() { close(s.closed) })
	return nil
}

func (s *Stream) account(account string) *acct {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accts[account]
	if a == nil {
		a = &acct{wake: make(chan struct{})}
		s.accts[account] = a
	}
	return a
}

// Append adds e to the end of account's stream and returns it as stored,
// with its Seq, Account, Time and ID set. The event is durable before
// Append returns: it is never lost once acknowledged, and sequence numbers
// are gap-free and in order across every node that shares the store.
//
// Cost: two store writes (the head, by compare-and-set, then the event's
// log slot); a conflict with another node adds a read and a retry.
func (s *Stream) Append(ctx context.Context, account string, e Event) (Event, error) {
	out, err := s.AppendBatch(ctx, account, []Event{e})
	if err != nil {
		return Event{}, err
	}
	return out[0], nil
}

// AppendBatch adds evs, in order, to the end of account's stream, as
// Append does each, for the cost of one: the head record carries the
// whole batch (the last event, and the earlier ones under "earlier"),
// written by one compare-and-set, and then the batch's log slots are
// written in one store batch. Every event before the head's batch is in
// the log; the batch's events may be only in the head until the next
// append copies them to their slots.
func (s *Stream) AppendBatch(ctx context.Context, account string, evs []Event) ([]Event, error) {
	start := time.Now()
	if err := checkAccount(account); err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, nil
	}
	out := make([]Event, len(evs))
	for i, e := range evs {
		e.Account, e.Seq = account, 0
		if e.Time.IsZero() {
			e.Time = s.cfg.Clock.Now()
		}
		e.Time = e.Time.UTC()
		if e.ID == "" {
			id, err := randomHex(s.cfg.Rand, 16, "an event id")
			if err != nil {
				return nil, err
			}
			e.ID = "ev_" + id
		}
		if err := e.normalize(s.cfg.MaxEventBytes); err != nil {
			return nil, err
		}
		out[i] = e
	}
	a := s.account(account)
	a.appendMu.Lock()
	defer a.appendMu.Unlock()
	for try := 1; ; try++ {
		if err := s.loadHead(ctx, account, a); err != nil {
			return nil, err
		}
		// The head's batch may still be only in the head record (its
		// appender died, or failed, before writing its slots): copy it to
		// its slots before moving past it, so that every event before the
		// head's batch is in the log.
		if !a.materialized {
			if err := s.putSlots(ctx, a.batch()); err != nil {
				return nil, err
			}
			a.materialized = true
		}
		for i := range out {
			out[i].Seq = a.head.Seq + 1 + uint64(i)
		}
		last := len(out) - 1
		raw, err := json.Marshal(storedHead{Event: out[last], Earlier: out[:last]})
		if err != nil {
			return nil, err
		}
		ver, err := s.store.Put(ctx, headKey(account), raw, a.headVer)
		if errors.Is(err, persistence.ErrConflict) {
			a.known = false
			s.met.conflicts.Inc()
			if try >= s.cfg.MaxAppendTries {
				return nil, fmt.Errorf("%w (account %s, %d tries)", ErrContention, account, try)
			}
			continue
		}
		if err != nil {
			a.known = false // the write may have landed
			return nil, fmt.Errorf("events: appending to %s: %w", account, err)
		}
		a.head, a.earlier, a.headVer, a.materialized = out[last], out[:last], ver, false
		// Best effort: the events are durable in the head already, and the
		// next append (on any node) writes the slots if this fails.
		if err := s.putSlots(ctx, out); err == nil {
			a.materialized = true
		} else {
			s.log.Warn("writing events' log slots failed; the next append will", "account", account, "seq", out[last].Seq, "err", err)
		}
		s.met.appended.Add(float64(len(out)))
		s.met.appendSeconds.Observe(time.Since(start).Seconds())
		s.saw(a, out[last], out[:last], true)
		s.want(account, jobDeliver|jobPrune)
		return out, nil
	}
}

// storedHead is what an account's head key holds: its last event, and the
// events appended with it in one batch before it (oldest first).
type storedHead struct {
	Event
	Earlier []Event `json:"earlier,omitempty"`
}

// loadHead reads the account's head into a unless a knows it already.
func (s *Stream) loadHead(ctx context.Context, account string, a *acct) error {
	if a.known {
		return nil
	}
	h, earlier, ver, err := s.readHead(ctx, account)
	if err != nil {
		return err
	}
	a.head, a.earlier, a.headVer, a.known = h, earlier, ver, true
	// Whether the head's batch is in its slots is unknown: assume not.
	// Copying it again is a conditional insert that finds it there.
	a.materialized = h.Seq == 0
	s.saw(a, h, earlier, false)
	return nil
}

func (a *acct) batch() []Event { return append(a.earlier[:len(a.earlier):len(a.earlier)], a.head) }

// readHead returns the account's head, the events of the head's batch
// before it (oldest first) and its version (Seq 0 and MustNotExist when
// the stream is empty).
func (s *Stream) readHead(ctx context.Context, account string) (Event, []Event, uint64, error) {
	it, err := s.store.Get(ctx, headKey(account))
	if errors.Is(err, persistence.ErrNotFound) {
		return Event{}, nil, persistence.MustNotExist, nil
	}
	if err != nil {
		return Event{}, nil, 0, fmt.Errorf("events: reading the head of %s: %w", account, err)
	}
	var h storedHead
	if err := json.Unmarshal(it.Value, &h); err != nil || h.Seq == 0 {
		return Event{}, nil, 0, fmt.Errorf("%w: head of %s: %v", ErrCorrupt, account, err)
	}
	for i, e := range h.Earlier {
		if e.Seq != h.Seq-uint64(len(h.Earlier)-i) {
			return Event{}, nil, 0, fmt.Errorf("%w: head of %s: its batch is out of sequence", ErrCorrupt, account)
		}
	}
	return h.Event, h.Earlier, it.Version, nil
}

// putSlots writes evs to their log slots, in one store batch, each
// unless it is there already.
func (s *Stream) putSlots(ctx context.Context, evs []Event) error {
	writes := make([]persistence.Write, 0, len(evs))
	for _, e := range evs {
		raw, err := json.Marshal(e)
		if err != nil {
			return err
		}
		writes = append(writes, persistence.Write{Key: slotKey(e.Account, e.Seq), Value: raw, Expect: persistence.MustNotExist})
	}
	res, err := s.store.Batch(ctx, writes)
	if err != nil {
		return fmt.Errorf("events: writing events %d to %d of %s: %w", evs[0].Seq, evs[len(evs)-1].Seq, evs[0].Account, err)
	}
	for i, r := range res {
		if r.Err != nil && !errors.Is(r.Err, persistence.ErrConflict) {
			return fmt.Errorf("events: writing event %d of %s: %w", evs[i].Seq, evs[i].Account, r.Err)
		}
	}
	return nil
}

// saw records h as a head of a's account, and wakes the account's
// subscribers on this node if it is newer than what they knew. fresh says
// that h is the store's head now (this node wrote it, or peekHead polled
// it), so that peekHead may share it for the rest of its interval.
func (s *Stream) saw(a *acct, h Event, earlier []Event, fresh bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if fresh {
		a.seenAt, a.seenRead = time.Now(), true
	}
	if h.Seq > a.seen.Seq {
		a.seen, a.seenPrev = h, earlier
		close(a.wake)
		a.wake = make(chan struct{})
	}
}

// peekHead returns the account's head for subscribers: the newest one
// this node wrote or read, read again from the store when that read is
// older than half a poll interval, so that every subscriber of an account
// on this node shares one read per interval. earlier is the head's batch
// before it, oldest first.
func (s *Stream) peekHead(ctx context.Context, account string, a *acct) (h Event, earlier []Event, err error) {
	a.mu.Lock()
	fresh := a.seenRead && time.Since(a.seenAt) < s.cfg.PollInterval/2
	h, earlier = a.seen, a.seenPrev
	a.mu.Unlock()
	if fresh {
		return h, earlier, nil
	}
	h, earlier, _, err = s.readHead(ctx, account)
	if err != nil {
		return Event{}, nil, err
	}
	s.met.polls.Inc()
	s.saw(a, h, earlier, true)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen, a.seenPrev, nil
}

// Head returns the account's last event (Seq 0 when the stream is empty),
// read from the store.
func (s *Stream) Head(ctx context.Context, account string) (Event, error) {
	if err := checkAccount(account); err != nil {
		return Event{}, err
	}
	h, _, _, err := s.readHead(ctx, account)
	return h, err
}

// randomHex draws n bytes from r, in hex; what names them in the error.
func randomHex(r io.Reader, n int, what string) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("events: drawing %s: %w", what, err)
	}
	return hex.EncodeToString(b), nil
}

// job is what Run is asked to do for an account.
type job uint8

const (
	jobDeliver job = 1 << iota // deliver its webhook up to the head
	jobPrune                   // prune it, unless pruned lately
)

// want asks Run to do j for account.
func (s *Stream) want(account string, j job) {
	s.workMu.Lock()
	s.work[account] |= j
	s.workMu.Unlock()
	select {
	case s.workSig <- struct{}{}:
	default:
	}
}

func (s *Stream) takeWork() map[string]job {
	s.workMu.Lock()
	defer s.workMu.Unlock()
	if len(s.work) == 0 {
		return nil
	}
	out := s.work
	s.work = make(map[string]job)
	return out
}

// Prune deletes up to Config.PruneBatch of the account's events older than
// the retention window, oldest first, never the last event. It returns how
// many it deleted. Run calls it; it reads one page of the log.
func (s *Stream) Prune(ctx context.Context, account string) (int, error) {
	if err := checkAccount(account); err != nil {
		return 0, err
	}
	h, _, _, err := s.readHead(ctx, account)
	if err != nil || h.Seq == 0 {
		return 0, err
	}
	cutoff := s.cfg.Clock.Now().Add(-s.cfg.Retention)
	page, err := s.store.Scan(ctx, logAccount(account), "", s.cfg.PruneBatch)
	if err != nil {
		return 0, fmt.Errorf("events: pruning %s: %w", account, err)
	}
	n := 0
	for _, it := range page {
		seq, ok := slotSeq(account, it.Key)
		if !ok || seq >= h.Seq {
			break
		}
		var e Event
		if err := json.Unmarshal(it.Value, &e); err != nil {
			return n, fmt.Errorf("%w: %s: %v", ErrCorrupt, it.Key, err)
		}
		if !e.Time.Before(cutoff) {
			break
		}
		err := s.store.Delete(ctx, it.Key, it.Version)
		if err != nil && !errors.Is(err, persistence.ErrNotFound) && !errors.Is(err, persistence.ErrConflict) {
			return n, fmt.Errorf("events: pruning %s: %w", it.Key, err)
		}
		n++
	}
	s.met.pruned.Add(float64(n))
	return n, nil
}

// AppendEvent appends an event of type typ about user (may be empty) with
// data (JSON, may be nil). It is Append for callers that set only those
// fields, such as the messaging supervisors (actors.EventSink).
func (s *Stream) AppendEvent(ctx context.Context, account, typ, user string, data []byte) error {
	_, err := s.Append(ctx, account, Event{Type: typ, User: user, Data: data})
	return err
}
