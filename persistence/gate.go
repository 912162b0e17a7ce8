package persistence

import (
	"cmp"
	"context"
	"sync"
)

// gate tracks the open/closed state every engine shares. Calls enter it
// (shared) for their whole duration; close takes it exclusively, so Close
// waits for calls in flight and a call that starts after Close gets
// ErrClosed instead of touching a released handle.
type gate struct {
	mu     sync.RWMutex
	closed bool
}

// enter admits a call: nil (the caller must then call exit), or ErrClosed,
// or the context's error if ctx is already done, so that a cancelled call
// never starts I/O.
func (g *gate) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (g *gate) enterKey(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return g.enter(ctx)
}

// enterScan checks Scan's prefix and after, both of which may be empty,
// then enters; it returns the page size to use for limit.
func (g *gate) enterScan(ctx context.Context, prefix, after string, limit int) (int, error) {
	if err := cmp.Or(checkKeyText("scan prefix", prefix), checkKeyText("scan cursor", after)); err != nil {
		return 0, err
	}
	if limit <= 0 {
		limit = DefaultScanLimit
	}
	return limit, g.enter(ctx)
}

func (g *gate) exit() { g.mu.RUnlock() }

// close runs release once, after calls in flight have finished. Later calls
// of close return nil: Close is idempotent.
func (g *gate) close(release func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return release()
}
