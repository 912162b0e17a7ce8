package events

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// Config configures a Stream. Start from DefaultConfig.
type Config struct {
	// Store keeps the events, the heads and the webhook records. Nodes
	// that share a store share the streams. Required.
	Store persistence.Store
	// Node names this node in webhook delivery leases and logs. A random
	// suffix is added per Stream, so a restarted node with the same name
	// never mistakes its predecessor's lease for its own. Default "node".
	Node string
	// Clock stamps events and tells retention and lease expiry. Waits
	// (polling, backoff) use real timers. Default: the wall clock.
	Clock clock.Clock
	// Rand draws event ids, generated webhook secrets and the node's lease
	// suffix. Default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives delivery failures and store errors met in the
	// background. Default: discard.
	Logger *slog.Logger
	// Registerer receives the metrics listed in doc.go. Default: none.
	Registerer prometheus.Registerer

	// Retention is how long an event stays readable; older ones are
	// pruned, and a subscriber resuming before them is told so (a
	// *ResetError). Default 24h (issue 11).
	Retention time.Duration
	// PollInterval is how often a waiting subscriber reads its account's
	// head from the store, to see appends made on other nodes. Appends on
	// this node wake subscribers at once. All subscribers of one account
	// on this node share one read per interval. Default 25ms.
	PollInterval time.Duration
	// PageSize is how many events one store scan reads. Default 256.
	PageSize int
	// MaxEventBytes bounds an event's type, ids and data together.
	// Default 256 KiB (a call.ringing carries the call's context).
	MaxEventBytes int
	// MaxAppendTries bounds the compare-and-set attempts of one Append
	// under contention from other nodes. Default 64.
	MaxAppendTries int
	// PruneEvery is the least time between two prunes of one account by
	// this node after its appends. Default 1m.
	PruneEvery time.Duration
	// SweepEvery is the period of Run's sweep of every account: pruning
	// the idle ones, and taking over webhook deliveries that a dead node
	// left unfinished (a page of the store's heads and webhooks at a
	// time). Default 5m.
	SweepEvery time.Duration
	// PruneBatch bounds the events one prune step deletes. Default 1000.
	PruneBatch int

	// Webhook configures webhook deliveries.
	Webhook WebhookConfig
}

// WebhookConfig configures webhook deliveries (see Stream.Run).
type WebhookConfig struct {
	// Client sends the POSTs. It must not follow redirects (a 3xx is a
	// refusal). Default: an http.Client that does not.
	Client *http.Client
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout time.Duration
	// FirstBackoff is the wait after the first failed attempt; it doubles
	// on each failure up to MaxBackoff. Defaults 1s and 5m.
	FirstBackoff, MaxBackoff time.Duration
	// LeaseTTL is how long a node's claim to deliver an account's webhooks
	// lasts without renewal; a node that dies mid-delivery is replaced
	// after it. Default 30s.
	LeaseTTL time.Duration
	// MaxConcurrent bounds the accounts this node delivers to at once.
	// Default 64.
	MaxConcurrent int
}

// DefaultConfig returns the defaults documented on Config. Store is left
// for the caller.
func DefaultConfig() Config {
	return Config{
		Node:           "node",
		Clock:          clock.Real{},
		Rand:           rand.Reader,
		Logger:         slog.New(slog.DiscardHandler),
		Retention:      24 * time.Hour,
		PollInterval:   25 * time.Millisecond,
		PageSize:       256,
		MaxEventBytes:  256 << 10,
		MaxAppendTries: 64,
		PruneEvery:     time.Minute,
		SweepEvery:     5 * time.Minute,
		PruneBatch:     1000,
		Webhook: WebhookConfig{
			Client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			}},
			Timeout:       10 * time.Second,
			FirstBackoff:  time.Second,
			MaxBackoff:    5 * time.Minute,
			LeaseTTL:      30 * time.Second,
			MaxConcurrent: 64,
		},
	}
}

// Validate reports the first setting a Stream cannot run with.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("events: Config.Store is required")
	case c.Node == "" || !printable(c.Node):
		return errors.New("events: Config.Node must name this node")
	case c.Clock == nil || c.Rand == nil || c.Logger == nil:
		return errors.New("events: Config.Clock, Rand and Logger are required; start from DefaultConfig")
	case c.Retention <= 0:
		return fmt.Errorf("events: Retention %v must be positive; 24h is the default", c.Retention)
	case c.PollInterval <= 0:
		return fmt.Errorf("events: PollInterval %v must be positive; 25ms is the default", c.PollInterval)
	case c.PageSize <= 0 || c.PruneBatch <= 0 || c.MaxAppendTries <= 0 || c.MaxEventBytes <= 0:
		return errors.New("events: PageSize, PruneBatch, MaxAppendTries and MaxEventBytes must be positive")
	case c.PruneEvery <= 0 || c.SweepEvery <= 0:
		return fmt.Errorf("events: PruneEvery %v and SweepEvery %v must be positive; 1m and 5m are the defaults", c.PruneEvery, c.SweepEvery)
	}
	w := c.Webhook
	switch {
	case w.Client == nil:
		return errors.New("events: Webhook.Client is required; start from DefaultConfig")
	case w.Timeout <= 0 || w.FirstBackoff <= 0 || w.MaxBackoff < w.FirstBackoff:
		return errors.New("events: Webhook.Timeout and FirstBackoff must be positive and MaxBackoff at least FirstBackoff")
	case w.LeaseTTL <= 0 || w.LeaseTTL < 3*w.Timeout/2:
		return fmt.Errorf("events: Webhook.LeaseTTL %v must be at least 1.5 times Timeout %v, so that one attempt fits in a lease", w.LeaseTTL, w.Timeout)
	case w.MaxConcurrent <= 0:
		return errors.New("events: Webhook.MaxConcurrent must be positive")
	}
	return nil
}
