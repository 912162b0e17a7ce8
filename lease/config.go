package lease

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-pbx/switchboard/clock"
)

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// TTL is how long a renewal of a node's liveness record vouches for it.
	// A crashed node's identities can be taken over TTL after its last
	// renewal began (by an observer that watched it; TTL + MaxClockSkew
	// for one that just started), so TTL bounds failover from below.
	// Default 5s.
	TTL time.Duration
	// RenewEvery is how often a node renews its record and reads the
	// others'. Default 1s: one write and one scan per node per second.
	RenewEvery time.Duration
	// Margin is how long before TTL runs out a node stops serving: it
	// absorbs clocks that run at slightly different rates and a write that
	// commits just after its deadline. Default 1s, or a fifth of TTL when
	// that is less.
	Margin time.Duration
	// MaxClockSkew is how far the nodes' wall clocks may disagree. A record
	// whose renewal time is older than TTL + MaxClockSkew by the observer's
	// wall clock is expired even if the observer has not watched it for a
	// TTL yet. Default 10s; negative turns the rule off (a node that just
	// started then waits one TTL before taking over from a crashed one).
	MaxClockSkew time.Duration
	// ForgetAfter is how long a record must stay unchanged before the
	// other nodes delete it (a crashed node's). Default 1m.
	ForgetAfter time.Duration
	// Process is this node's process (written into its record), and
	// ProcessExists tells whether a PID runs on this host: a record written
	// by a process on this host that no longer runs is expired at once
	// (DeadOnThisHost). Defaults ThisProcess() and a signal-0 probe.
	Process       Process
	ProcessExists func(pid int) bool
	// Clock tells the time. Default the wall clock.
	Clock clock.Clock
	// Logger receives renewal failures and ownership changes. Default:
	// discard.
	Logger *slog.Logger
	// Registerer receives the package's metrics. Default: none.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		TTL:          5 * time.Second,
		RenewEvery:   time.Second,
		Margin:       time.Second,
		MaxClockSkew: 10 * time.Second,
		ForgetAfter:  time.Minute,
		Clock:        clock.Real{},
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.TTL = cmp.Or(c.TTL, d.TTL)
	c.RenewEvery = cmp.Or(c.RenewEvery, d.RenewEvery)
	if c.Margin == 0 {
		c.Margin = min(d.Margin, c.TTL/5)
	}
	c.MaxClockSkew = cmp.Or(c.MaxClockSkew, d.MaxClockSkew)
	if c.ForgetAfter == 0 {
		c.ForgetAfter = max(d.ForgetAfter, 2*c.TTL)
	}
	c.Clock = cmp.Or(c.Clock, d.Clock)
	c.Process = cmp.Or(c.Process, ThisProcess())
	if c.ProcessExists == nil {
		c.ProcessExists = processExists
	}
	c.Logger = cmp.Or(c.Logger, d.Logger)
	return c
}

// Validate reports the first setting a Node cannot work with, after filling
// zero fields with the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.TTL < 0 || c.RenewEvery < 0 || c.Margin < 0 || c.ForgetAfter < 0:
		return errors.New("lease: TTL, RenewEvery, Margin and ForgetAfter must not be negative")
	case c.Margin >= c.TTL:
		return fmt.Errorf("lease: Margin %v must be shorter than TTL %v", c.Margin, c.TTL)
	case 2*c.RenewEvery > c.TTL-c.Margin:
		return fmt.Errorf("lease: renewing every %v leaves no second chance within TTL %v less Margin %v; renew at most every %v (e.g. --lease-renew 1s with --lease-ttl 5s)",
			c.RenewEvery, c.TTL, c.Margin, (c.TTL-c.Margin)/2)
	case c.ForgetAfter < c.TTL:
		return fmt.Errorf("lease: ForgetAfter %v must be at least TTL %v", c.ForgetAfter, c.TTL)
	}
	return nil
}
