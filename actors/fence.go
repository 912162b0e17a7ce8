package actors

import (
	"context"
	"time"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// Fence keeps an identity's activation single across the nodes that share
// the store, even when they cannot see each other (package lease
// implements it on the store). It is safe for concurrent use.
type Fence interface {
	// Acquire makes this node the owner of (kind, identity), or returns
	// why not: another live node owns it, or this node's own lease is not
	// valid.
	Acquire(ctx context.Context, kind, identity string) (Claim, error)
}

// Claim is one activation's ownership of its identity, used from the
// activation's goroutine only.
type Claim interface {
	// Check tells until when (by Config.Clock) the claim is known valid,
	// or an error once it may have lapsed: another node may have served
	// the identity since, so the activation's state is not to be trusted.
	Check() (time.Time, error)
	// Release gives the identity up, so that the next activation anywhere
	// takes it at once.
	Release(ctx context.Context) error
}

// fenced tells the kinds whose activations take a claim: those whose state
// must not be served twice (credentials, bindings). A call is not fenced:
// it lives on the node that handles its dialog and never migrates, and its
// record is written once, when it ends, with compare-and-set (the first
// writer wins). Feature servers and pools are configuration read by every
// call; their writes are compare-and-set, so a duplicate during a
// partition serves its last loaded copy but never overwrites a newer one
// (see cluster/doc.go).
//
// A messaging supervisor is fenced: its blocks, suspensions and
// terminated messages live in its memory (loaded at activation), so a
// second activation during a partition would not see the first one's
// new incident and would deliver a blocked pair or a terminated message.
func fenced(kind string) bool {
	return kind == KindAccount || kind == KindDeviceGroup || kind == KindMessaging
}

// claim makes sure the activation holds a valid claim before it serves a
// message, acquiring one when it has none. It returns until when the
// claim is valid, or the error to answer with; after an error the
// activation has no claim and no state, and should stop.
func (s *shell) claim(ctx context.Context) (time.Time, *actorpb.Error) {
	if s.own == nil {
		c, err := s.sys.cfg.Fence.Acquire(ctx, s.act.Kind, s.act.Identity)
		if err != nil {
			s.sys.log.Info("activation refused: not the owner", "kind", s.act.Kind, "id", s.act.Identity, "err", err)
			return time.Time{}, unavailable("%s %s is not served here now; retry: %v", s.act.Kind, s.act.Identity, err)
		}
		s.own, s.loaded = c, false
	}
	until, err := s.own.Check()
	if err != nil {
		s.sys.log.Warn("activation steps down: its claim lapsed", "kind", s.act.Kind, "id", s.act.Identity, "err", err)
		// Its owner record stays: this node takes it back as its own, and
		// others only once this node's lease has expired.
		s.own, s.loaded = nil, false
		return time.Time{}, unavailable("%s %s stepped down on this node; retry: %v", s.act.Kind, s.act.Identity, err)
	}
	return until, nil
}

// release gives up the activation's claim, if it holds one, and forgets
// its state.
func (s *shell) release() {
	if s.own == nil {
		return
	}
	ctx, cancel := s.sys.opContext()
	defer cancel()
	if err := s.own.Release(ctx); err != nil {
		s.sys.log.Warn("releasing an activation's claim failed; it expires with this node's lease", "kind", s.act.Kind, "id", s.act.Identity, "err", err)
	}
	s.own, s.loaded = nil, false
}

// vacancy is a behavior that may have nothing to serve: an account or a
// group that does not exist. A fenced activation that is vacant after a
// message stops, giving its claim back, so that requests for ids that do
// not exist (a probe, a flood of made-up SIP domains) leave no owner
// record and no activation behind.
type vacancy interface {
	vacant() bool
}

func (a *account) vacant() bool     { return a.acct == nil }
func (g *deviceGroup) vacant() bool { return !g.exists }
