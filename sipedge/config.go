package sipedge

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/dnszone"
	"github.com/switchboard-pbx/switchboard/sipauth"
)

// UDPTimerJ is how long a finished non-INVITE server transaction over UDP
// is kept to answer its request's retransmissions with the same final
// response (RFC 3261 section 17.2.2, Timer J). The RFC's 64*T1 (32 s)
// covers a client that retransmits until its own Timer F; we keep
// Kamailio's wait timer, 5 s, instead: a kept transaction holds about
// 4 KB of live heap (sipgo's parsed request and response, its timers;
// BenchmarkFinishedTransactions), so at 800 REGISTER/s (two transactions
// each, with the challenge) 32 s keep some 200 MiB of live heap, which
// 5 s cut to 31 MiB. A retransmission later than that (its first five
// copies all lost) is handled as a new request: a replayed REGISTER
// changes nothing (RFC 3261 section 10.3 step 7: its CSeq is not above
// the binding's), and its client, which had its answer, ignores the
// second one. Over TCP and TLS Timer J is zero (sipgo's own rule): a
// reliable transport does not retransmit.
//
// sipgo keeps its timers in package globals, so this is process-wide:
// the first New sets it, once (setTransactionTimers), before any edge of
// the process serves.
const UDPTimerJ = 5 * time.Second

// setTransactionTimers sets sipgo's Timer J to UDPTimerJ once per
// process. sync.OnceFunc orders the write before every edge's first server
// transaction, which reads it, so edges started concurrently (several
// nodes in one test process) do not race.
var setTransactionTimers = sync.OnceFunc(func() { sip.Timer_J = UDPTimerJ })

// Actors is the actor system as the edge uses it (*actors.System).
type Actors interface {
	Request(ctx context.Context, kind, identity string, msg proto.Message) (proto.Message, error)
	RequestWithHint(ctx context.Context, kind, identity string, hint actors.Hint, msg proto.Message) (proto.Message, error)
	// Tell sends what needs no reply; nil means sent, not handled.
	Tell(kind, identity string, msg proto.Message) error
	CallHint(ctx context.Context, pool string) (actors.Hint, error)
	IsLocal(kind, identity string) bool
}

// Accounts are the node's account snapshots (*accountview.Cache): what
// the edge reads for each request instead of asking the account actor.
type Accounts interface {
	Account(ctx context.Context, account string) (*accountview.Account, error)
	Device(ctx context.Context, account, device string) (*actorpb.Device, error)
}

// Members is the cluster as the edge sees it. Implementations are called
// from many goroutines.
type Members interface {
	// SIPAddr is the SIP address (host:port) of the alive node named node.
	SIPAddr(node string) (string, bool)
	// IsPeer says whether addr, the ip:port a request came from, is an
	// alive node's SIP address: requests from peers carry calls the peer
	// placed here and skip authentication.
	IsPeer(addr string) bool
}

// Resolver resolves forwarding names (*dnszone.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, name, transport string) ([]dnszone.Target, error)
}

// Authenticator checks digest credentials (*sipauth.Authenticator).
type Authenticator interface {
	Challenge(realm string, stale bool, algs ...string) ([]string, error)
	Verify(header, method, realm string, ha1 sipauth.HA1Func) (sipauth.Result, error)
}

// Config configures an Edge.
type Config struct {
	// Node is this node's name (call records, registrations, the hop
	// header). Required.
	Node string
	// Pool is this node's pool; trunk calls that name no group are placed
	// in it. Default "default".
	Pool string
	// Zone is the DNS zone of account DNS names. Required.
	Zone string
	// Addr is the UDP and TCP listen address (--sip). Port 0 picks one.
	// Required.
	Addr string
	// Advertise is the host:port written into Via and Record-Route.
	// Default: the bound UDP address (which must then not be unspecified).
	Advertise string
	// TLSAddr, CertFile and KeyFile enable SIP over TLS (--sips).
	TLSAddr, CertFile, KeyFile string
	// Actors, Accounts, Members, Resolver and Auth are required.
	Actors   Actors
	Accounts Accounts
	Members  Members
	Resolver Resolver
	Auth     Authenticator
	// RouteSecret keys the signature in this edge's Record-Route entries,
	// which is how an in-dialog request proves its dialog went through
	// this proxy. Keep it across restarts (node derives it from
	// --sip-secret or the gossip key) so that dialogs outlive a restart.
	// Default: random, for this Edge only.
	RouteSecret []byte
	// LiveCalls tells how many calls in progress this node carries, for
	// switchboard_sip_active_calls (the actor system's count: a call is
	// carried where tier 2 placed it, which may be off its dialog's
	// route). Default: none, the gauge reads 0.
	LiveCalls func() int
	// Clock stamps bans and health. Default: the wall clock.
	Clock clock.Clock
	// Logger receives the edge's logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the edge's metrics. Default: none.
	Registerer prometheus.Registerer
	// MaxMessageSize is the largest datagram read; larger ones get 513
	// Message Too Large. Default 16 KiB.
	MaxMessageSize int
	// Flood is the per-source flood limit.
	Flood FloodConfig
	// Trust declares trusted sources (SBCs, NATs) and the rate they
	// share instead of the per-source flood limit.
	Trust TrustConfig
	// Streams bounds TCP and TLS connections: message and idle timeouts,
	// connections per source.
	Streams StreamConfig
	// Messages is what a MESSAGE must be to enter (size, media types) and
	// how long one waits for a device that is not registered.
	Messages MessageRules
	// Health is how feature-server targets are probed.
	Health HealthConfig
	// FailoverTimeout is how long a target may stay silent (no response,
	// not even 100 Trying) before the next one is tried (Kamailio's
	// fr_timer). Default 2 s.
	FailoverTimeout time.Duration
	// RingTimeout bounds an INVITE after a provisional response
	// (fr_inv_timer); then it is cancelled and the caller gets 408.
	// Default 60 s.
	RingTimeout time.Duration
	// DigestAlgorithms are the digest algorithms this edge accepts:
	// "MD5", "SHA-256". Each device is challenged with one of them, the
	// one sipauth.Offer picks from its settings (MD5 unless it or its
	// account is set to SHA-256, or it has answered SHA-256 before).
	// Default both; ["SHA-256"] refuses MD5 (everyone gets SHA-256);
	// ["MD5"] cannot serve a device set to SHA-256 (403).
	DigestAlgorithms []string
	// ActorTimeout bounds each actor request. Default 3 s.
	ActorTimeout time.Duration
	// LogEvery limits logs about bad packets to one per source per
	// interval. Default 1 min.
	LogEvery time.Duration
}

// DefaultConfig returns a Config with every default filled but
// RouteSecret (New draws one when it is empty); Node, Zone, Addr, Actors,
// Members, Resolver and Auth remain to be set.
func DefaultConfig() Config {
	var c Config
	c.fill()
	return c
}

func (c *Config) fill() {
	c.Zone = strings.TrimSuffix(strings.ToLower(c.Zone), ".")
	c.Pool = cmp.Or(c.Pool, "default")
	c.Clock = cmp.Or[clock.Clock](c.Clock, clock.Real{})
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	orDefault(&c.MaxMessageSize, 16<<10)
	orDefault(&c.FailoverTimeout, 2*time.Second)
	orDefault(&c.RingTimeout, 60*time.Second)
	c.DigestAlgorithms = slices.Clone(c.DigestAlgorithms)
	for i, a := range c.DigestAlgorithms {
		c.DigestAlgorithms[i] = strings.ToUpper(strings.TrimSpace(a))
	}
	if len(c.DigestAlgorithms) == 0 {
		c.DigestAlgorithms = []string{sipauth.MD5, sipauth.SHA256}
	}
	orDefault(&c.ActorTimeout, 3*time.Second)
	orDefault(&c.LogEvery, time.Minute)
	c.Trust.fill()
	c.Health.fill()
	c.Streams.fill()
	c.Messages.fill()
}

// Validate reports the first missing or invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Node == "":
		return errors.New("sipedge: Config.Node is required")
	case c.Zone == "":
		return errors.New("sipedge: Config.Zone is required")
	case c.Addr == "":
		return errors.New("sipedge: Config.Addr is required")
	case c.Actors == nil || c.Members == nil || c.Resolver == nil || c.Auth == nil:
		return errors.New("sipedge: Config.Actors, Members, Resolver and Auth are required")
	case !validAlgorithms(c.DigestAlgorithms):
		return errors.New("sipedge: digest algorithms must be MD5 and/or SHA-256, each once")
	case c.TLSAddr != "" && (c.CertFile == "" || c.KeyFile == ""):
		return errors.New("sipedge: --sips needs a certificate and a key (--sips-cert, --sips-key)")
	}
	return nil
}

func validAlgorithms(algs []string) bool {
	seen := map[string]bool{}
	for _, a := range algs {
		if (a != sipauth.MD5 && a != sipauth.SHA256) || seen[a] {
			return false
		}
		seen[a] = true
	}
	return len(algs) > 0
}

// orDefault sets *p to def when it is zero or negative.
func orDefault[T int | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}
