package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ErrQueueFull is returned when the offline queue holds QueueMax writes.
var ErrQueueFull = errors.New("integration: offline write queue is full")

// queuedWrite is a PATCH accepted while the server was unreachable, to be
// replayed as it was made: same body, same If-Match.
type queuedWrite struct {
	ID          string    `json:"id"`
	Call        string    `json:"call"`
	Body        []byte    `json:"body"`
	ContentType string    `json:"content_type"`
	IfMatch     string    `json:"if_match,omitempty"`
	Queued      time.Time `json:"queued"`
}

// writeResult is what the server answered a replayed write.
type writeResult struct {
	ID     string    `json:"id"`
	Call   string    `json:"call"`
	Status int       `json:"status"`
	ETag   string    `json:"etag,omitempty"`
	Error  string    `json:"error,omitempty"`
	Queued time.Time `json:"queued"`
	Done   time.Time `json:"done"`
}

// queue holds the offline writes in order, and the last outcomes. When
// path is set every change is written to it before it is acknowledged
// (atomically, mode 0600), so a write the app was told is queued survives
// a restart of the proxy.
type queue struct {
	mu      sync.Mutex
	path    string
	max     int
	keep    int
	next    uint64
	pending []queuedWrite
	results []writeResult
}

// queueFile is the layout of QueueFile.
type queueFile struct {
	Version int           `json:"version"`
	Next    uint64        `json:"next"`
	Pending []queuedWrite `json:"pending"`
}

// openQueue loads path when it exists.
func openQueue(path string, most, keep int) (*queue, error) {
	q := &queue{path: path, max: most, keep: keep, next: 1}
	if path == "" {
		return q, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return q, nil
	}
	if err != nil {
		return nil, fmt.Errorf("integration: reading the offline queue: %w", err)
	}
	var f queueFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("integration: the offline queue %s is not valid (move it away to start with an empty queue; its writes are lost): %w", path, err)
	}
	q.pending, q.next = f.Pending, max(f.Next, 1)
	return q, nil
}

// add appends w (its ID and Queued set here) and persists the queue.
func (q *queue) add(w queuedWrite, now time.Time) (queuedWrite, int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) >= q.max {
		return w, 0, ErrQueueFull
	}
	w.ID, w.Queued = fmt.Sprintf("q%d", q.next), now
	q.next++
	q.pending = append(q.pending, w)
	if err := q.saveLocked(); err != nil {
		q.pending = q.pending[:len(q.pending)-1]
		return w, 0, err
	}
	return w, len(q.pending), nil
}

// head returns the oldest pending write.
func (q *queue) head() (queuedWrite, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return queuedWrite{}, false
	}
	return q.pending[0], true
}

// done removes the oldest pending write, which must be id, and records
// its outcome.
func (q *queue) done(id string, r writeResult) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 || q.pending[0].ID != id {
		return nil
	}
	q.pending = q.pending[1:]
	q.results = append(q.results, r)
	if over := len(q.results) - q.keep; over > 0 {
		q.results = append(q.results[:0], q.results[over:]...)
	}
	return q.saveLocked()
}

// len returns the number of pending writes, and how many are for call.
func (q *queue) len(call string) (all, forCall int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, w := range q.pending {
		if w.Call == call {
			forCall++
		}
	}
	return len(q.pending), forCall
}

// snapshot returns copies of the pending writes (without bodies) and the
// results.
func (q *queue) snapshot() ([]queuedWrite, []writeResult) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := make([]queuedWrite, len(q.pending))
	for i, w := range q.pending {
		w.Body = nil
		p[i] = w
	}
	return p, append([]writeResult(nil), q.results...)
}

func (q *queue) saveLocked() error {
	if q.path == "" {
		return nil
	}
	b, err := json.Marshal(queueFile{Version: 1, Next: q.next, Pending: q.pending})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(q.path, b); err != nil {
		return fmt.Errorf("integration: saving the offline queue: %w", err)
	}
	return nil
}
