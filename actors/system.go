package actors

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/callcontext"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/internal/loglevel"
	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/placement"
)

// Kinds of virtual actors: placement's table of kinds, under the names
// the actors use.
const (
	KindAccount     = placement.KindAccount
	KindDeviceGroup = placement.KindDeviceGroup
	KindCall        = placement.KindCall
	// KindFeatureServer is a feature server (identity: the feature id).
	KindFeatureServer = placement.KindFeatureServer
	// KindPools is the one actor (identity PoolsIdentity) that holds every
	// pool's prescribed conditions.
	KindPools     = placement.KindPools
	PoolsIdentity = "all"
	// KindMessaging is an account's messaging supervisor (identity: the
	// account id): fraud checks, messages in flight, the queue.
	KindMessaging = placement.KindMessaging
)

// Kinds lists every kind this package serves (a new slice each call).
func Kinds() []string { return placement.Kinds() }

// Config configures a System.
type Config struct {
	// Store holds every actor's durable state. Required.
	Store persistence.Store
	// Zone is the DNS zone under which account DNS names live. Required.
	Zone string
	// Clock stamps records. Default: the wall clock.
	Clock clock.Clock
	// Logger receives the actors' logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the package's metrics. Default: none.
	Registerer prometheus.Registerer
	// IdleTimeout is how long an activation lives without a message before
	// it passivates. Default 10 minutes.
	IdleTimeout time.Duration
	// RequestTimeout bounds a request when its context has no deadline.
	// Default 5 seconds (protoactor's grain call default).
	RequestTimeout time.Duration
	// StoreTimeout bounds each store operation an actor makes. Default 5s.
	StoreTimeout time.Duration
	// NewLookup builds the Lookup on the system's protoactor ActorSystem,
	// whose activations spawn starts, on Clock; default NewLocalLookup.
	// The gossip cluster supplies its own (cluster.Membership.Start).
	NewLookup func(as *actor.ActorSystem, spawn Spawner, clk clock.Clock) (Lookup, error)
	// OnActivated and OnStopped, when set, are called from an activation's
	// own goroutine when it starts and when it has stopped (for tests and
	// instrumentation; they must not block).
	OnActivated, OnStopped func(*Activation)
	// ActorSystemOptions are passed to protoactor's NewActorSystem.
	ActorSystemOptions []actor.ConfigOption
	// Pools tells tier 1 the pools and their alive nodes with their loads.
	// Default: one pool, "default", with no node figures.
	Pools PoolSource
	// Node is this node's name, written into call records.
	Node string
	// Fence, when set, keeps each activation of a fenced kind (account,
	// devicegroup, messaging) single across the nodes that share Store: an
	// activation serves only while it holds a valid claim on its identity,
	// and answers CODE_UNAVAILABLE (and stops) when it cannot get one.
	// Default nil: no fencing (one node, tests).
	Fence Fence
	// Events, when set, receives the messaging supervisors' fraud events
	// for the accounts' streams. Default nil: none (the audit log in the
	// store still records every incident and action).
	Events EventSink
	// Notifier, when set, sends the check-sync NOTIFY of the restore path
	// (the node's SIP edge). Default nil: a restore resets the device's
	// credentials and removes its bindings, and notifies nobody.
	Notifier Notifier
	// Random draws the new secrets of a credential reset and the app
	// tokens. Default crypto/rand.Reader.
	Random io.Reader
	// ContextCacheBytes is this node's memory budget for cached call
	// contexts (--context-cache-mb): over it, the least recently used are
	// passivated. Default 256 MiB.
	ContextCacheBytes int64
	// ContextHotLease is how long a call's context stays cached, idle,
	// after the call ended (Avaya Context Store's 2 h lease); it is
	// reloaded from the store after that. Default 2 hours.
	ContextHotLease time.Duration
	// ContextLimits bound what an app keeps on a call. Default
	// callcontext.DefaultLimits (64 KiB per app per call).
	ContextLimits callcontext.Limits
	// MaxCallDuration ends a call that lasts longer, from its start, with
	// disposition expired (--max-call-duration). 0: no limit (the zero
	// Config); DefaultConfig sets 4 hours.
	MaxCallDuration time.Duration
	// CallTimerTick is how often the node checks its live calls' deadlines
	// (session expiry, maximum length) against Clock: a call ends at most
	// this late. Default 1 second.
	CallTimerTick time.Duration
	// RecordFlushInterval is how long a call record (and its index
	// entries) may wait in memory before the committer writes it with the
	// others queued, in one batch and one sync (committer.go): a record is
	// durable within this plus the commit in flight and its own. Default
	// 10ms. Negative: written through before the call replies.
	RecordFlushInterval time.Duration
	// Hangup, when set, is told of the calls the system ended by itself
	// (expired, or interrupted by a shutdown), so that the SIP edge sends
	// BYE to both legs. Default nil: the record is written, nobody is told.
	Hangup CallHangup
	// EdgeChanged, when set, is told after each account write what of the
	// account's edge view it changed, so that every node's snapshot of it
	// (package accountview) drops the stale part. Called from the account
	// actor's goroutine: it must not block.
	EdgeChanged func(EdgeChange)
}

// EdgeChange says what of an account's edge view a write changed.
type EdgeChange struct {
	Account string
	// All: anything may have changed (the account was created, replaced or
	// deleted, or the actor reloaded its state).
	All bool
	// Level: the account level (routes, trunks, groups and their pools).
	Level bool
	// Devices whose records changed.
	Devices []string
}

// PoolSource tells the pools as tier 1 sees them: prescribed conditions
// and alive nodes with their loads.
type PoolSource interface {
	PoolStates(ctx context.Context) ([]placement.PoolState, error)
}

// DefaultConfig returns a Config with every default filled; Store and Zone
// remain to be set.
func DefaultConfig() Config {
	return Config{
		Clock:          clock.Real{},
		Logger:         slog.New(slog.DiscardHandler),
		IdleTimeout:    10 * time.Minute,
		RequestTimeout: 5 * time.Second,
		StoreTimeout:   5 * time.Second,
		Random:         rand.Reader,
		// ContextCacheBytes: 256 MiB holds some 50,000 contexts of 1 KiB.
		ContextCacheBytes: 256 << 20,
		ContextHotLease:   2 * time.Hour,
		ContextLimits:     callcontext.DefaultLimits(),
		// MaxCallDuration: far beyond a business call, short of a line
		// forgotten open over a weekend.
		MaxCallDuration: 4 * time.Hour,
		CallTimerTick:   time.Second,
	}
}

// Validate reports the first missing or invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("actors: Config.Store is required")
	case c.Zone == "":
		return errors.New("actors: Config.Zone is required")
	case c.IdleTimeout <= 0:
		return errors.New("actors: Config.IdleTimeout must be positive")
	case c.RequestTimeout <= 0:
		return errors.New("actors: Config.RequestTimeout must be positive")
	case c.StoreTimeout <= 0:
		return errors.New("actors: Config.StoreTimeout must be positive")
	case c.ContextCacheBytes <= 0 || c.ContextHotLease < 0:
		return errors.New("actors: Config.ContextCacheBytes must be positive and ContextHotLease not negative")
	case c.MaxCallDuration < 0 || c.CallTimerTick <= 0:
		return errors.New("actors: Config.MaxCallDuration must not be negative and CallTimerTick must be positive")
	}
	return nil
}

// System runs the virtual actors of one node.
type System struct {
	cfg     Config
	log     *slog.Logger
	as      *actor.ActorSystem
	lookup  Lookup
	metrics *metrics
	// fraud counts the messaging supervisors' work.
	fraud *fraudMetrics
	// contexts is the node's memory budget for cached call contexts.
	contexts *callcontext.Budget
	seq      atomic.Uint64
	// background counts work an actor handed off its mailbox (check-sync
	// NOTIFYs); Close waits for it.
	background sync.WaitGroup
	// records stores message records off the supervisors' mailboxes.
	records *writeBehind
	// commits writes call records off the calls' turns (group commit).
	commits *committer
	closed  atomic.Bool
	stop    chan struct{}
	reaped  chan struct{}

	// Live calls (call_live.go).
	timers     *callTimers    // live calls' deadlines
	timersDone chan struct{}  // closed when the timer loop returned
	liveCalls  atomic.Int64   // activations carrying a live call
	hangups    sync.WaitGroup // Config.Hangup calls under way
	// shuttingDown: EndLiveCalls was called; no call starts any more.
	shuttingDown atomic.Bool
}

// New starts a System. Close stops it.
func New(cfg Config) (*System, error) {
	def := DefaultConfig()
	cfg.Clock = cmp.Or(cfg.Clock, def.Clock)
	cfg.Logger = cmp.Or(cfg.Logger, def.Logger)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, def.IdleTimeout)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, def.RequestTimeout)
	cfg.StoreTimeout = cmp.Or(cfg.StoreTimeout, def.StoreTimeout)
	cfg.Random = cmp.Or(cfg.Random, def.Random)
	cfg.ContextCacheBytes = cmp.Or(cfg.ContextCacheBytes, def.ContextCacheBytes)
	cfg.ContextHotLease = cmp.Or(cfg.ContextHotLease, def.ContextHotLease)
	cfg.CallTimerTick = cmp.Or(cfg.CallTimerTick, def.CallTimerTick)
	cfg.RecordFlushInterval = cmp.Or(cfg.RecordFlushInterval, defaultRecordFlush)
	cfg.ContextLimits = cmp.Or(cfg.ContextLimits, def.ContextLimits)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, fm, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "actors")
	commits, err := newCommitter(cfg.Store, log, cfg.RecordFlushInterval, cfg.StoreTimeout, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &System{commits: commits, cfg: cfg, log: log, metrics: m, fraud: fm, contexts: callcontext.NewBudget(cfg.ContextCacheBytes)}
	if err := registerContextMetrics(cfg.Registerer, s.contexts); err != nil {
		commits.close()
		return nil, err
	}
	opts := append([]actor.ConfigOption{
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			// protoactor logs routine events at info; keep only its warnings.
			return slog.New(loglevel.AtLeast(cfg.Logger.Handler(), slog.LevelWarn)).With("component", "protoactor")
		}),
		actor.WithDeadLetterRequestLogging(false),
	}, cfg.ActorSystemOptions...)
	s.as = actor.NewActorSystem(opts...)
	compactRegistry(s.as)
	newLookup := cfg.NewLookup
	if newLookup == nil {
		newLookup = func(_ *actor.ActorSystem, spawn Spawner, clk clock.Clock) (Lookup, error) {
			return NewLocalLookup(spawn, clk), nil
		}
	}
	lk, err := newLookup(s.as, s.spawn, cfg.Clock)
	if err != nil {
		s.as.Shutdown()
		commits.close()
		return nil, err
	}
	s.lookup = lk
	s.records = newWriteBehind(cfg.Store, log)
	s.stop, s.reaped = make(chan struct{}), make(chan struct{})
	s.timers, s.timersDone = newCallTimers(), make(chan struct{})
	go s.every(min(max(cfg.IdleTimeout/4, time.Millisecond), 30*time.Second), s.reaped, s.reap)
	// Each live call whose deadline passed (by the injected clock) checks it.
	go s.every(cfg.CallTimerTick, s.timersDone, s.fireDueCalls)
	return s, nil
}

// reap is one pass of passivation (New runs it every quarter of the idle
// timeout, at most every 30 s): it asks each activation idle for longer
// than IdleTimeout to stop; the activation checks again before it does.
func (s *System) reap() {
	now := s.cfg.Clock.Now()
	for _, act := range s.lookup.Activations("") {
		if now.Sub(act.LastMessageAt()) >= s.cfg.IdleTimeout {
			s.as.Root.Send(act.PID, passivate{})
		}
	}
}

// every calls f every d until the system stops, then closes done.
func (s *System) every(d time.Duration, done chan struct{}, f func()) {
	defer close(done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		f()
	}
}

// ActorSystem exposes the protoactor system (for the cluster layer).
func (s *System) ActorSystem() *actor.ActorSystem { return s.as }

// spawn starts the process of a new activation.
func (s *System) spawn(act *Activation) (*actor.PID, error) {
	b, err := s.behaviorFor(act.Kind, act.Identity)
	if err != nil {
		return nil, err
	}
	props := actor.PropsFromProducer(func() actor.Actor {
		beh := b()
		if bb, ok := beh.(interface{ bind(*Activation) }); ok {
			bb.bind(act)
		}
		return &shell{sys: s, act: act, b: beh}
	})
	name := placement.Key(act.Kind, act.Identity) + "$" + strconv.FormatUint(s.seq.Add(1), 36)
	return s.as.Root.SpawnNamed(props, name)
}

// ErrUnknownKind is returned for a kind this package does not serve.
var ErrUnknownKind = errors.New("actors: unknown kind")

func (s *System) behaviorFor(kind, identity string) (func() behavior, error) {
	switch kind {
	case KindAccount:
		return func() behavior { return &account{sys: s, id: identity} }, nil
	case KindDeviceGroup:
		a, g, ok := splitGroupIdentity(identity)
		if !ok {
			return nil, fmt.Errorf("%w: devicegroup identity %q is not account/group", ErrUnknownKind, identity)
		}
		return func() behavior { return &deviceGroup{sys: s, account: a, group: g} }, nil
	case KindCall:
		return func() behavior { return &call{sys: s, id: identity} }, nil
	case KindFeatureServer:
		return func() behavior { return &featureServer{sys: s, id: identity} }, nil
	case KindPools:
		return func() behavior { return &pools{sys: s} }, nil
	case KindMessaging:
		return func() behavior { return &messaging{sys: s, id: identity} }, nil
	case KindCallContext:
		return func() behavior { return &callContext{sys: s, id: identity} }, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
}

// ErrTimeout is returned when an actor did not answer in time.
var ErrTimeout = errors.New("actors: request timed out")

// Request sends msg to the actor (kind, identity), activating it if needed,
// and returns its reply. It gives up at ctx's deadline, or after
// Config.RequestTimeout when ctx has none.
func (s *System) Request(ctx context.Context, kind, identity string, msg proto.Message) (proto.Message, error) {
	var hint func() Hint
	if kind == KindDeviceGroup {
		hint = func() Hint { return s.groupHint(ctx, identity) }
	}
	return s.request(ctx, kind, identity, hint, msg)
}

// RequestWithHint is Request for an actor whose first activation must be
// placed by hint (a call in its group's pool).
func (s *System) RequestWithHint(ctx context.Context, kind, identity string, hint Hint, msg proto.Message) (proto.Message, error) {
	return s.request(ctx, kind, identity, func() Hint { return hint }, msg)
}

func (s *System) request(ctx context.Context, kind, identity string, hint func() Hint, msg proto.Message) (proto.Message, error) {
	if s.closed.Load() {
		return nil, ErrShuttingDown
	}
	start := time.Now()
	defer func() { s.metrics.observeRequest(kind, time.Since(start)) }()
	timeout := s.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	deadline := time.Now().Add(timeout)
	for attempt := 0; ; attempt++ {
		act, err := s.lookup.Acquire(kind, identity, hint)
		if err != nil {
			return nil, err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			// A future with no positive timeout would wait forever.
			return nil, fmt.Errorf("%w: %s %s after %v", ErrTimeout, kind, identity, timeout)
		}
		res, err := s.as.Root.RequestFuture(act.PID, msg, remaining).Result()
		if err == nil {
			reply, ok := res.(proto.Message)
			if !ok {
				return nil, fmt.Errorf("actors: %s %s replied %T", kind, identity, res)
			}
			return reply, nil
		}
		switch {
		case errors.Is(err, actor.ErrTimeout):
			return nil, fmt.Errorf("%w: %s %s after %v", ErrTimeout, kind, identity, timeout)
		case errors.Is(err, actor.ErrDeadLetter) || errors.Is(err, remote.ErrDeadLetter):
			// The activation stopped or its node went away: route anew.
			if s.closed.Load() {
				return nil, ErrShuttingDown
			}
			s.lookup.Invalidate(act)
			if time.Until(deadline) <= 0 {
				return nil, fmt.Errorf("%w: %s %s after %v", ErrTimeout, kind, identity, timeout)
			}
			sleep(min(time.Duration(1<<min(attempt, 6))*time.Millisecond, time.Until(deadline)), s.stop, nil)
			continue
		default:
			return nil, err
		}
	}
}

// Tell delivers msg to (kind, identity)'s activation, activating it if
// needed, and does not wait for it to be handled: for what needs no
// reply. nil means it was sent, not that it was handled.
func (s *System) Tell(kind, identity string, msg proto.Message) error {
	if s.closed.Load() {
		return ErrShuttingDown
	}
	act, err := s.lookup.Acquire(kind, identity, nil)
	if err != nil {
		return err
	}
	s.as.Root.Send(act.PID, msg)
	return nil
}

// sleep waits d, or until stop or wake (nil: never) is ready.
func sleep(d time.Duration, stop <-chan struct{}, wake chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-wake:
	case <-stop:
	}
}

// notify delivers msg to (kind, identity) only if it is active here; an
// inactive actor reads the current state from its source when it activates.
func (s *System) notify(kind, identity string, msg proto.Message) {
	if act, ok := s.lookup.Peek(kind, identity); ok {
		s.as.Root.Send(act.PID, msg)
	}
}

// PassivateAll asks every activation on this node to passivate now (their
// state is already stored: writes go through before replies) and waits
// until none is left or ctx ends. A drain calls it.
func (s *System) PassivateAll(ctx context.Context) error {
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		acts := s.lookup.Activations("")
		if len(acts) == 0 {
			return nil
		}
		for _, act := range acts {
			s.as.Root.Send(act.PID, passivate{force: true})
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("actors: %d activations still live: %w", len(acts), ctx.Err())
		case <-poll.C:
		}
	}
}

// Activations lists this node's live activations of kind ("" for all).
func (s *System) Activations(kind string) []*Activation { return s.lookup.Activations(kind) }

// ActivationPage lists, in key order, at most limit of this node's
// activations of kind ("" for all) after after, and whether more follow
// (Lookup.ActivationPage).
func (s *System) ActivationPage(kind string, after ActivationKey, limit int) ([]*Activation, bool) {
	return s.lookup.ActivationPage(kind, after, limit)
}

// FindActivation returns this node's activation of (kind, identity), if
// any, without activating it.
func (s *System) FindActivation(kind, identity string) (*Activation, bool) {
	return s.lookup.Find(kind, identity)
}

// IsLocal says whether (kind, identity) has a live activation on this
// node; it never activates one.
func (s *System) IsLocal(kind, identity string) bool {
	act, ok := s.lookup.Peek(kind, identity)
	return ok && act.PID != nil && act.PID.Address == s.as.Address()
}

// ActivationCounts counts this node's activations by kind.
func (s *System) ActivationCounts() map[string]int { return s.lookup.ActivationCounts() }

// Close stops every activation and the actor system. Calls after the first
// return nil.
func (s *System) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	<-s.reaped
	<-s.timersDone
	s.background.Wait()
	s.hangups.Wait()
	for _, act := range s.lookup.Close() {
		if err := s.as.Root.StopFuture(act.PID).Wait(); err != nil {
			s.log.Warn("activation did not stop in time", "kind", act.Kind, "id", act.Identity, "err", err)
		}
	}
	s.as.Shutdown()
	s.records.close() // after the activations: nothing queues any more
	s.commits.close() // likewise: the call records queued are written
	return nil
}

// opContext bounds one store operation of an actor.
func (s *System) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
}
