package actors

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard-pbx/switchboard/clock"
)

// ErrShuttingDown is returned for requests made while the system stops.
var ErrShuttingDown = errors.New("actors: shutting down")

// Activation is one live actor: its identity, where it runs and when it was
// last used. The lookup creates it; the actor's shell keeps it current.
type Activation struct {
	Kind        string
	Identity    string
	PID         *actor.PID
	ActivatedAt time.Time

	lastMessage atomic.Int64 // unix nanoseconds
	// pending counts messages handed out by the lookup but not yet handled
	// by the actor; an activation passivates only when it is zero, so no
	// message is ever dropped by a stopping actor.
	pending atomic.Int64
	// gone is closed when a released activation has stopped (LocalLookup).
	gone chan struct{}
	// liveCall: a call activation that carries its call (started here,
	// not ended).
	liveCall atomic.Bool
}

// LiveCall tells whether this is a call activation carrying a call in
// progress: what a node's call load counts. A call activation that only
// answers a read or a late message, or whose call ended, is not one.
func (a *Activation) LiveCall() bool { return a.liveCall.Load() }

// LastMessageAt is when the actor last handled a message, or when it was
// activated if it has handled none.
func (a *Activation) LastMessageAt() time.Time {
	return time.Unix(0, a.lastMessage.Load())
}

// Spawner starts the actor process of a new activation. The lookup calls it
// with its lock held; it must not call back into the lookup.
type Spawner func(act *Activation) (*actor.PID, error)

// NewActivation returns the record of an activation about to be spawned,
// for Lookup implementations outside this package.
func NewActivation(kind, identity string, at time.Time) *Activation {
	act := &Activation{Kind: kind, Identity: identity, ActivatedAt: at}
	act.lastMessage.Store(at.UnixNano())
	return act
}

// Lookup finds the activation of (kind, identity), activating it when there
// is none. It is the seam that the gossip cluster replaces. Implementations
// are safe for concurrent use.
type Lookup interface {
	// Acquire returns the activation for (kind, identity), spawning it if
	// needed, and counts one message as pending on it. The caller must send
	// exactly one message to the returned PID. hint, when not nil, is asked
	// (at most once) where a new activation may be placed.
	Acquire(kind, identity string, hint func() Hint) (*Activation, error)
	// Peek returns the live activation, if any, without activating and with
	// the same pending count as Acquire when found.
	Peek(kind, identity string) (*Activation, bool)
	// Done tells that the activation handled one message (the shell calls
	// it after each message it receives).
	Done(act *Activation)
	// TryRelease asks to passivate an idle activation and reports whether
	// it may: no new message will be routed to it, and it must stop after
	// the messages already queued. The shell calls it from the activation.
	TryRelease(act *Activation) bool
	// Stopped tells that the activation's process stopped.
	Stopped(act *Activation)
	// Invalidate tells that a message to act came back undelivered, so
	// the route to it is stale.
	Invalidate(act *Activation)
	// Activations lists the live activations of kind ("" for all), in
	// key order.
	Activations(kind string) []*Activation
	// ActivationPage lists, in key order, at most limit of this node's
	// activations of kind ("" for all) whose keys sort after after, and
	// tells whether more follow: O(log n + limit).
	ActivationPage(kind string, after ActivationKey, limit int) (page []*Activation, more bool)
	// Find returns this node's activation of (kind, identity), if any,
	// without activating it or counting a message on it.
	Find(kind, identity string) (*Activation, bool)
	// ActivationCounts counts this node's activations by kind.
	ActivationCounts() map[string]int
	// Close refuses further acquisitions and returns every live activation.
	Close() []*Activation
}

// LocalLookup keeps every activation in this process: the one-node Lookup.
type LocalLookup struct {
	spawn  Spawner
	clk    clock.Clock
	mu     sync.Mutex
	acts   map[string]*Activation
	index  *ActivationIndex // acts in key order
	closed bool
}

// NewLocalLookup returns a LocalLookup that starts activations with spawn.
func NewLocalLookup(spawn Spawner, clk clock.Clock) *LocalLookup {
	return &LocalLookup{spawn: spawn, clk: clk, acts: make(map[string]*Activation), index: NewActivationIndex()}
}

func lookupKey(kind, identity string) string { return kind + "\x00" + identity }

// Hint narrows where a new activation may be placed: tier 2 of the
// two-tier balancing puts a call on a node of its group's pool (or of the
// pool's overflow pool), and a device group's actor on a node of its pool.
type Hint struct {
	Pool, Overflow   string
	CallCapacity     int // concurrent calls per node in Pool
	OverflowCapacity int // and in Overflow
}

// Acquire implements Lookup. One node has no choice to make: hints are
// ignored.
func (l *LocalLookup) Acquire(kind, identity string, _ func() Hint) (*Activation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrShuttingDown
	}
	k := lookupKey(kind, identity)
	for {
		act, ok := l.acts[k]
		if !ok {
			break
		}
		if act.gone == nil {
			act.pending.Add(1)
			return act, nil
		}
		// Released and stopping: wait until it is gone, so that two
		// activations of one identity never live at once.
		gone := act.gone
		l.mu.Unlock()
		<-gone
		l.mu.Lock()
		if l.closed {
			return nil, ErrShuttingDown
		}
	}
	act := NewActivation(kind, identity, l.clk.Now())
	pid, err := l.spawn(act)
	if err != nil {
		return nil, err
	}
	act.PID = pid
	act.pending.Add(1)
	l.acts[k] = act
	l.index.Put(act)
	return act, nil
}

// Peek implements Lookup.
func (l *LocalLookup) Peek(kind, identity string) (*Activation, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	act, ok := l.acts[lookupKey(kind, identity)]
	if ok && !l.closed && act.gone == nil {
		act.pending.Add(1)
		return act, true
	}
	return nil, false
}

// TryRelease implements Lookup.
func (l *LocalLookup) TryRelease(act *Activation) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lookupKey(act.Kind, act.Identity)
	if cur, ok := l.acts[k]; !ok || cur != act {
		return true // already gone (Close took it)
	}
	if act.pending.Load() != 0 || act.gone != nil {
		return false
	}
	act.gone = make(chan struct{})
	return true
}

// Done implements Lookup: one pending message was handled.
func (l *LocalLookup) Done(act *Activation) { act.pending.Add(-1) }

// Stopped implements Lookup: a released activation is removed and those
// waiting to activate its identity proceed.
func (l *LocalLookup) Stopped(act *Activation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lookupKey(act.Kind, act.Identity)
	if cur, ok := l.acts[k]; ok && cur == act {
		delete(l.acts, k)
		l.index.Remove(act)
	}
	if act.gone != nil {
		select {
		case <-act.gone:
		default:
			close(act.gone)
		}
	}
}

// Invalidate implements Lookup. Locally a message is undelivered only
// when the system is shutting down, which Close handles.
func (l *LocalLookup) Invalidate(*Activation) {}

// Activations implements Lookup.
func (l *LocalLookup) Activations(kind string) []*Activation {
	page, _ := l.ActivationPage(kind, ActivationKey{}, 0)
	return page
}

// ActivationPage implements Lookup.
func (l *LocalLookup) ActivationPage(kind string, after ActivationKey, limit int) ([]*Activation, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index.Page(kind, after, limit)
}

// Find implements Lookup.
func (l *LocalLookup) Find(kind, identity string) (*Activation, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	act, ok := l.acts[lookupKey(kind, identity)]
	return act, ok
}

// ActivationCounts implements Lookup.
func (l *LocalLookup) ActivationCounts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.index.Counts()
}

// Close implements Lookup.
func (l *LocalLookup) Close() []*Activation {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	out := make([]*Activation, 0, len(l.acts))
	for k, a := range l.acts {
		out = append(out, a)
		delete(l.acts, k)
		l.index.Remove(a)
		if a.gone != nil {
			close(a.gone) // wake waiters; they see closed
		}
	}
	return out
}
