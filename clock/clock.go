// Package clock injects time into Switchboard's decision code. Code that
// decides (placement, fraud scoring, call state, record timestamps) takes a
// Clock instead of calling time.Now, and code that acts later (a message
// repeated, a handover given up, a stalled stream cut) asks the Clock for a
// timer instead of calling time.AfterFunc, so tests and simulations drive
// both.
//
// This package owns no goroutines (a Real timer runs its function on the
// runtime's, a Fake one on the goroutine that advances it) and must not
// import any other Switchboard package.
package clock

import (
	"slices"
	"sync"
	"time"
)

// Clock tells the time and runs functions later. Implementations are safe
// for concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed, as time.AfterFunc does.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop keeps f from being called and reports whether it did (false:
	// f was called already, or Stop was).
	Stop() bool
	// Reset makes f due d from now, pending again if it was not, and
	// reports whether it was pending.
	Reset(d time.Duration) bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc: f runs in its own goroutine.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Fake is a Clock that moves only when told to; its timers fire in
// Advance, on the advancing goroutine, in the order of their deadlines.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a Fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// AfterFunc calls fn when an Advance reaches d from now; d <= 0 fires at
// the next Advance.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{f: f, at: f.now.Add(d), fn: fn}
	f.timers = append(f.timers, t)
	return t
}

// Advance moves the fake time forward by d and calls the functions of the
// timers that came due, earliest first.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	var due []*fakeTimer
	f.timers = slices.DeleteFunc(f.timers, func(t *fakeTimer) bool {
		if t.at.After(f.now) {
			return false
		}
		due = append(due, t)
		return true
	})
	f.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.fn()
	}
}

type fakeTimer struct {
	f  *Fake
	at time.Time
	fn func()
}

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.remove()
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	pending := t.remove()
	t.at = t.f.now.Add(d)
	t.f.timers = append(t.f.timers, t)
	return pending
}

// remove takes t off its clock's pending timers, with the clock's lock
// held, and reports whether it was there.
func (t *fakeTimer) remove() bool {
	n := len(t.f.timers)
	t.f.timers = slices.DeleteFunc(t.f.timers, func(o *fakeTimer) bool { return o == t })
	return len(t.f.timers) < n
}
