package dnszone

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-pbx/switchboard/clock"
)

// ErrInvalidConfig is wrapped by every error of Config.Validate and
// ResolverConfig.Validate.
var ErrInvalidConfig = errors.New("dnszone: invalid config")

// Config configures a Server. Flags and config files only fill it.
type Config struct {
	// Zone is the DNS zone the Server is authoritative for, such as
	// "sip.switchboard.test" (--zone); case and a trailing dot do not
	// matter. Required.
	Zone string
	// Addr is the host:port to serve on, over UDP and TCP both (--dns).
	// Port 0 picks a free port, the same for both; Server.Addr tells it.
	// Default 127.0.0.1:5353 (53 needs privileges; put a forwarder or a
	// port mapping in front).
	Addr string
	// Targets answers which targets a name has. Required.
	Targets TargetSource
	// TTL of every answer, and of "no such name" (the SOA minimum). Whole
	// seconds, at least 1s. Default 5s: short, because which nodes are
	// alive and which targets are healthy changes.
	TTL time.Duration
	// QueryTimeout bounds one TargetSource call; past it the query is answered
	// SERVFAIL. Default 1s (resolvers retry after about 1-2s).
	QueryTimeout time.Duration
	// Logger receives the Server's logs (component=dnszone). Default:
	// discard.
	Logger *slog.Logger
	// Registerer is the node's metrics registry (see the package doc).
	// Default nil: metrics are kept but not registered.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults; Zone and Targets remain to be set.
func DefaultConfig() Config {
	return Config{
		Addr:         "127.0.0.1:5353", // 5353: unprivileged; the gossip Meta example uses it too
		TTL:          5 * time.Second,  // health changes every few seconds (sipedge probes every 5s)
		QueryTimeout: time.Second,      // a TargetSource call is a local table read or one actor request
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Addr = cmp.Or(c.Addr, d.Addr)
	c.TTL = cmp.Or(c.TTL, d.TTL)
	c.QueryTimeout = cmp.Or(c.QueryTimeout, d.QueryTimeout)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	return c
}

// Validate checks c after filling its zero fields with the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs problems
	if _, err := normalizeZone(c.Zone); err != nil {
		errs.add("Zone: %v", err)
	}
	if _, err := splitHostPort(c.Addr); err != nil {
		errs.add("Addr: %v", err)
	}
	if c.Targets == nil {
		errs.add("Targets is required")
	}
	if c.TTL < time.Second || c.TTL > math.MaxInt32*time.Second || c.TTL%time.Second != 0 {
		errs.add("TTL %v must be whole seconds from 1s to 2^31-1 s (RFC 2181 §8)", c.TTL)
	}
	if c.QueryTimeout < 0 {
		errs.add("QueryTimeout %v is negative", c.QueryTimeout)
	}
	return errors.Join(errs...)
}

// problems collects the errors of a Validate, each wrapping
// ErrInvalidConfig.
type problems []error

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
}

// splitHostPort parses host:port and returns the port.
func splitHostPort(s string) (int, error) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not host:port: %w", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port of %q must be 0-65535", s)
	}
	return int(p), nil
}

// ResolverConfig configures a Resolver.
type ResolverConfig struct {
	// Server is the host:port of the DNS server to ask: a Server of this
	// package (any authoritative or recursive server answers too).
	// Required.
	Server string
	// Timeout bounds one query, over UDP and, after truncation, over TCP
	// again. Default 2s (miekg/dns's own default).
	Timeout time.Duration
	// Clock times the cache. Default clock.Real.
	Clock clock.Clock
	// Rand orders SRV records of equal priority by weight (RFC 2782). The
	// Resolver guards it with a mutex, so it may be a plain seeded
	// *rand.Rand, but must not be used elsewhere. Default: seeded from the
	// time.
	Rand *rand.Rand
	// MaxCacheEntries bounds the cache (one entry per name and type);
	// when full, expired entries go first, then arbitrary ones.
	// Default 10000.
	MaxCacheEntries int
	// Logger receives the Resolver's logs (component=dnszone). Default:
	// discard.
	Logger *slog.Logger
}

// DefaultResolverConfig returns the defaults; Server remains to be set.
func DefaultResolverConfig() ResolverConfig {
	return ResolverConfig{
		Timeout:         2 * time.Second, // miekg/dns's dnsTimeout
		MaxCacheEntries: 10000,           // forwarding and account names a proxy uses, with room to spare
	}
}

// withDefaults fills the zero fields of c from DefaultResolverConfig.
func (c ResolverConfig) withDefaults() ResolverConfig {
	d := DefaultResolverConfig()
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.MaxCacheEntries = cmp.Or(c.MaxCacheEntries, d.MaxCacheEntries)
	c.Clock = cmp.Or[clock.Clock](c.Clock, clock.Real{})
	if c.Rand == nil {
		now := uint64(time.Now().UnixNano())
		c.Rand = rand.New(rand.NewPCG(now, now>>32|now<<32))
	}
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	return c
}

// Validate checks c after filling its zero fields with the defaults.
func (c ResolverConfig) Validate() error {
	c = c.withDefaults()
	var errs problems
	if port, err := splitHostPort(c.Server); err != nil {
		errs.add("Server: %v", err)
	} else if port == 0 {
		errs.add("Server %q has port 0; give the port the DNS server listens on", c.Server)
	}
	if c.Timeout < 0 {
		errs.add("Timeout %v is negative", c.Timeout)
	}
	if c.MaxCacheEntries < 0 {
		errs.add("MaxCacheEntries %d is negative", c.MaxCacheEntries)
	}
	return errors.Join(errs...)
}
