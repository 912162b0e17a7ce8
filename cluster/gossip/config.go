package gossip

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
)

// Profiles select memberlist's timers.
const (
	// ProfileLAN is memberlist.DefaultLANConfig: 1 s probes, 200 ms gossip,
	// 30 s push-pull. For real deployments.
	ProfileLAN = "lan"
	// ProfileLocal is memberlist.DefaultLocalConfig: 100 ms gossip, 200 ms
	// probe timeout, 15 s push-pull. For nodes on one host (tests).
	ProfileLocal = "local"
)

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("gossip: invalid config")

// Config configures a Gossip. Flags and config files only fill it.
type Config struct {
	// ID is the memberlist node name: the node's actor system id, new for
	// every process. Required.
	ID string
	// BindAddr is the gossip host:port (UDP and TCP) to listen on. The
	// host must be an IP literal (memberlist binds every interface for a
	// name it cannot parse). Port 0 picks a free port; Addr tells which.
	// Default 127.0.0.1:7946.
	BindAddr string
	// AdvertiseAddr is the host:port that other nodes should reach this one
	// at, when it differs from BindAddr (NAT, 0.0.0.0). Its host must be an
	// IP literal; port 0 means the bound port. Optional.
	AdvertiseAddr string
	// Join lists seed gossip addresses (host:port). Empty: this is the first
	// node. This node's own address may be listed; it is skipped.
	Join []string
	// SecretKey, when set, is the AES key (16, 24 or 32 bytes) that
	// encrypts all gossip; a node with another key cannot join. Optional.
	SecretKey []byte
	// Meta is what this node tells the others; its encoding must fit in
	// MaxMetaSize bytes.
	Meta Meta
	// LoadInterval is how often LoadFunc is sampled and gossiped.
	// Default 1s.
	LoadInterval time.Duration
	// LoadFunc samples this node's load. It is called from Run's goroutine
	// and must not block. Required.
	LoadFunc func() Load
	// SuspectAfter: a member that memberlist still counts alive is shown
	// suspect once no load report from it arrived for this long.
	// Default 5 × LoadInterval; negative disables.
	SuspectAfter time.Duration
	// OnChange, if set, is called from Run's goroutine after a change of
	// membership, status or metadata (not on every load report); never
	// concurrently with itself and never with a lock of this package held,
	// so it may call Members. Optional.
	OnChange func()
	// Logger receives this package's and memberlist's logs (memberlist's
	// DEBUG lines are dropped). Default: discard.
	Logger *slog.Logger
	// Profile selects memberlist's timers: ProfileLAN (default) or
	// ProfileLocal.
	Profile string
	// JoinBackoffMin and JoinBackoffMax bound the exponential backoff
	// between join attempts. Defaults 200ms and 5s.
	JoinBackoffMin, JoinBackoffMax time.Duration
	// DeadRetention is how long dead and left members stay listed.
	// Default 10m.
	DeadRetention time.Duration
	// Clock stamps LoadAt, SeenAt and retention. Default clock.Real.
	// (memberlist's own timers always run on the wall clock.)
	Clock clock.Clock
	// Rand jitters the join backoff; used only from Run's goroutine.
	// Default: seeded from the time and ID.
	Rand *rand.Rand
}

// DefaultConfig returns the defaults; ID and LoadFunc remain to be set.
func DefaultConfig() Config {
	return Config{
		BindAddr:       "127.0.0.1:7946", // --gossip default
		LoadInterval:   time.Second,      // "about once a second" (DESIGN.md)
		Profile:        ProfileLAN,
		JoinBackoffMin: 200 * time.Millisecond,
		JoinBackoffMax: 5 * time.Second,
		DeadRetention:  10 * time.Minute,
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.BindAddr = cmp.Or(c.BindAddr, d.BindAddr)
	c.LoadInterval = cmp.Or(c.LoadInterval, d.LoadInterval)
	if c.SuspectAfter == 0 {
		c.SuspectAfter = 5 * c.LoadInterval
	}
	c.Profile = cmp.Or(c.Profile, d.Profile)
	c.JoinBackoffMin = cmp.Or(c.JoinBackoffMin, d.JoinBackoffMin)
	c.JoinBackoffMax = cmp.Or(c.JoinBackoffMax, d.JoinBackoffMax)
	c.DeadRetention = cmp.Or(c.DeadRetention, d.DeadRetention)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	c.Clock = cmp.Or[clock.Clock](c.Clock, clock.Real{})
	return c
}

// Validate checks c after filling its zero fields with the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.ID == "" {
		bad("ID is required (the actor system id)")
	}
	_, bindPort, err := splitIPPort(c.BindAddr)
	if err != nil {
		bad("BindAddr: %v", err)
	}
	if c.AdvertiseAddr != "" {
		_, port, err := splitIPPort(c.AdvertiseAddr)
		switch {
		case err != nil:
			bad("AdvertiseAddr: %v", err)
		case port != 0 && bindPort == 0:
			bad("AdvertiseAddr %q names a port but BindAddr %q picks one at random; give BindAddr a fixed port", c.AdvertiseAddr, c.BindAddr)
		}
	}
	for _, s := range c.Join {
		if _, _, err := net.SplitHostPort(s); err != nil {
			bad("Join address %q is not host:port: %v", s, err)
		}
	}
	if len(c.SecretKey) != 0 && len(c.SecretKey) != 16 && len(c.SecretKey) != 24 && len(c.SecretKey) != 32 {
		bad("SecretKey is %d bytes; it must be 16, 24 or 32 (AES-128, -192 or -256)", len(c.SecretKey))
	}
	if err := c.Meta.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: Meta: %w", ErrInvalidConfig, err))
	}
	if c.LoadInterval < 0 {
		bad("LoadInterval %v is negative", c.LoadInterval)
	}
	if c.LoadFunc == nil {
		bad("LoadFunc is required")
	}
	if c.Profile != ProfileLAN && c.Profile != ProfileLocal {
		bad("Profile %q is neither %q nor %q", c.Profile, ProfileLAN, ProfileLocal)
	}
	if c.JoinBackoffMin < 0 || c.JoinBackoffMax < c.JoinBackoffMin {
		bad("join backoff must satisfy 0 <= JoinBackoffMin (%v) <= JoinBackoffMax (%v)", c.JoinBackoffMin, c.JoinBackoffMax)
	}
	if c.DeadRetention < 0 {
		bad("DeadRetention %v is negative", c.DeadRetention)
	}
	return errors.Join(errs...)
}

// splitIPPort parses "ip:port" with an IP literal host.
func splitIPPort(s string) (netip.Addr, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q is not host:port: %w", s, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("host of %q must be an IP address, not a name", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("port of %q must be 0-65535", s)
	}
	return ip, int(p), nil
}
