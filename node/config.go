package node

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/lease"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// Name is the node's human name, shown in logs and debug replies.
	// Default: the host name.
	Name string
	// HTTPAddr is the HTTP listen address. Default 127.0.0.1:8080; port 0
	// picks a free port (see Node.HTTPAddr).
	HTTPAddr string
	// DataDir is the badger folder used when StoreURL is empty.
	// Default "data".
	DataDir string
	// StoreURL selects the shared PostgreSQL store (postgres://...); empty
	// uses the embedded badger store in DataDir.
	StoreURL string
	// Zone is the DNS zone under which account DNS names live.
	// Default "sip.switchboard.test".
	Zone string
	// AdminToken, when set, is required as a bearer token by the
	// provisioning and debug endpoints. Binding HTTP to a non-loopback
	// address without one is refused.
	AdminToken string
	// Pool is the pool this node serves (--pool). Default "default".
	Pool string
	// GossipAddr is the gossip (memberlist) bind address. Default
	// 127.0.0.1:7946; port 0 picks a free port.
	GossipAddr string
	// ActorAddr is the protoactor remote address. Default 127.0.0.1:8090;
	// port 0 picks a free port.
	ActorAddr string
	// Join lists seed gossip addresses; empty starts a new cluster.
	Join []string
	// GossipKey is a base64 AES key (16, 24 or 32 bytes) that encrypts
	// gossip; empty leaves gossip in clear text.
	GossipKey string
	// GossipProfile is "lan" (default) or "local" (fast timers for tests).
	GossipProfile string
	// PlacementEpsilon is the bounded-load rendezvous slack: no node takes
	// more than ceil((1+eps) * mean) activations of a kind. Default 0.25.
	PlacementEpsilon float64
	// SIPAddr is the SIP listen address, UDP and TCP (--sip). Default
	// 127.0.0.1:5060; port 0 picks a free port (see Node.SIPAddr).
	SIPAddr string
	// SIPSAddr, SIPSCert and SIPSKey enable SIP over TLS (--sips,
	// --sips-cert, --sips-key); empty SIPSAddr leaves TLS off.
	SIPSAddr, SIPSCert, SIPSKey string
	// SIPSecret keys digest nonces; nodes that share it accept each
	// other's nonces. Default: derived from GossipKey, else random per
	// process.
	SIPSecret string
	// SIPDigest lists the digest algorithms accepted (MD5, SHA-256); each
	// device is challenged with one of them (sipedge.Config
	// DigestAlgorithms). Default both.
	SIPDigest []string
	// SIPFloodLimit is the packets per 2 s one source may send before it
	// is banned for a minute (like Kamailio's pike). Default 2000;
	// negative disables.
	SIPFloodLimit int
	// SIPTrust declares trusted SIP sources (--sip-trusted-source: SBCs,
	// NATs) that skip the per-source flood limit and share one rate
	// instead (--sip-trusted-rate, --sip-trusted-burst). Zero fields take
	// sipedge's defaults (5000 packets/s, a burst of two seconds' worth).
	SIPTrust sipedge.TrustConfig
	// SIPStreams bounds SIP over TCP and TLS: the message (read-header)
	// timeout, the idle timeout and the connections per source address.
	// Zero fields take sipedge's defaults (10 s, 60 s, 32).
	SIPStreams sipedge.StreamConfig
	// SIPProbeInterval is how often feature-server targets get OPTIONS.
	// Default 5s.
	SIPProbeInterval time.Duration
	// SIPFailoverTimeout is how long a silent target is waited for before
	// the next one. Default 2s.
	SIPFailoverTimeout time.Duration
	// DNSAddr is the DNS responder's address, UDP and TCP (--dns).
	// Default 127.0.0.1:5353; port 0 picks a free port.
	DNSAddr string
	// Resolver is the DNS server the proxy resolves forwarding names
	// through (--resolver). Default: this node's own responder.
	Resolver string
	// Demo provisions account acme, group hq and devices alice and bob
	// when acme does not exist yet (an existing acme is left as it is),
	// and prints their credentials to Out.
	Demo bool
	// LeaseTTL is how long a renewal of this node's liveness record in the
	// store vouches for it (--lease-ttl): the node stops serving accounts
	// and device groups shortly before it runs out without a renewal (1s,
	// or a fifth of a shorter TTL), and others take them over once it has.
	// Default 5s.
	LeaseTTL time.Duration
	// LeaseRenew is how often the node renews its liveness record and
	// reads the others' (--lease-renew). Default 1s.
	LeaseRenew time.Duration
	// EventRetention is how long an account's events stay readable and
	// resumable (package events). Default 24h.
	EventRetention time.Duration
	// IdleTimeout is how long an actor lives without messages. Default 10m.
	IdleTimeout time.Duration
	// ContextCacheMB is this node's memory budget for cached call
	// contexts, in MiB (--context-cache-mb). Default 256.
	ContextCacheMB int
	// ContextHotLease is how long a call's context stays cached after the
	// call ended (--context-hot-lease). Default 2h.
	ContextHotLease time.Duration
	// ShutdownTimeout bounds the graceful shutdown (--shutdown-timeout):
	// live calls are served for the first half of it, then ended with
	// disposition interrupted. Default 15s.
	ShutdownTimeout time.Duration
	// MaxCallDuration ends a call that lasts longer, from its start, with
	// disposition expired (--max-call-duration); 0: no limit. Default 4h.
	MaxCallDuration time.Duration
	// CallSweepEvery is how often the node looks for calls whose process is
	// gone (their node crashed) and ends them with disposition interrupted.
	// Default 5s.
	CallSweepEvery time.Duration
	// CallSweepGrace is how long a process must have been gone (its
	// liveness record expired) before its calls are ended by another
	// node (--call-sweep-grace), so that a BYE can still end them with
	// their true end. A node's own previous process (same --name) is not
	// waited for. Default 30s.
	CallSweepGrace time.Duration
	// MemoryLimit is the process's soft memory limit in bytes
	// (--memory-limit; runtime/debug.SetMemoryLimit, GOMEMLIMIT's
	// semantics): the garbage collector runs as often as it must to keep
	// the Go runtime's memory under it, and otherwise at Go's default pace
	// (GOGC, 100 unless set: the heap grows to twice the live heap). New
	// sets it when positive; NoMemoryLimit lifts a GOMEMLIMIT from the
	// environment. It is process-wide: nodes in one process share the
	// last one set. Default 0: leave the runtime's (GOMEMLIMIT, else none).
	// ParseMemoryLimit reads the flag's sizes.
	MemoryLimit int64
	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
	// Out receives the demo's printout. Default os.Stdout.
	Out io.Writer
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Name:             cmp.Or(host, "switchboard"),
		HTTPAddr:         "127.0.0.1:8080",
		DataDir:          "data",
		Zone:             "sip.switchboard.test",
		Pool:             "default",
		GossipAddr:       "127.0.0.1:7946",
		ActorAddr:        "127.0.0.1:8090",
		SIPAddr:          "127.0.0.1:5060",
		DNSAddr:          "127.0.0.1:5353",
		PlacementEpsilon: 0.25,
		LeaseTTL:         5 * time.Second,
		LeaseRenew:       time.Second,
		EventRetention:   24 * time.Hour,
		IdleTimeout:      10 * time.Minute,
		ContextCacheMB:   256,
		ContextHotLease:  2 * time.Hour,
		ShutdownTimeout:  15 * time.Second,
		MaxCallDuration:  4 * time.Hour,
		CallSweepEvery:   5 * time.Second,
		CallSweepGrace:   30 * time.Second,
		Logger:           slog.New(slog.DiscardHandler),
		Out:              os.Stdout,
	}
}

// Validate reports the first setting a node cannot run with, saying what to
// do about it.
func (c Config) Validate() error {
	if c.Name == "" {
		return errors.New("node: --name must not be empty")
	}
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("node: --http %q is not host:port: %w", c.HTTPAddr, err)
	}
	if c.AdminToken == "" && !isLoopback(host) {
		return fmt.Errorf("node: refusing to serve HTTP on non-loopback address %s without an admin token; set --admin-token (or SWITCHBOARD_ADMIN_TOKEN) or bind to 127.0.0.1", c.HTTPAddr)
	}
	if c.StoreURL == "" && c.DataDir == "" {
		return errors.New("node: set --data (a folder for the embedded store) or --store postgres://...")
	}
	if c.StoreURL != "" {
		u, err := url.Parse(c.StoreURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return fmt.Errorf("node: --store must be a postgres:// or postgresql:// URL (got scheme %q)", schemeOf(c.StoreURL))
		}
	}
	if c.Zone == "" || strings.HasPrefix(c.Zone, ".") || strings.HasSuffix(c.Zone, ".") || strings.Contains(c.Zone, "..") {
		return fmt.Errorf("node: --zone %q must be a DNS name such as sip.switchboard.test", c.Zone)
	}
	if c.Pool == "" {
		return errors.New("node: --pool must not be empty")
	}
	if (c.SIPSAddr == "") != (c.SIPSCert == "" && c.SIPSKey == "") || (c.SIPSAddr != "" && (c.SIPSCert == "" || c.SIPSKey == "")) {
		return errors.New("node: --sips needs --sips-cert and --sips-key (PEM files), and they need --sips")
	}
	if c.SIPSecret != "" && len(c.SIPSecret) < 16 {
		return errors.New("node: --sip-secret must be at least 16 characters (e.g. head -c 24 /dev/urandom | base64)")
	}
	for _, a := range []struct{ flag, v string }{{"--gossip", c.GossipAddr}, {"--actor", c.ActorAddr}, {"--sip", c.SIPAddr}, {"--dns", c.DNSAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return fmt.Errorf("node: %s %q is not host:port: %w", a.flag, a.v, err)
		}
	}
	if c.PlacementEpsilon < 0 || c.PlacementEpsilon > 10 {
		return fmt.Errorf("node: --placement-epsilon %v must be between 0 and 10; 0.25 is a good start", c.PlacementEpsilon)
	}
	if c.GossipKey != "" {
		k, err := base64.StdEncoding.DecodeString(c.GossipKey)
		if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
			return errors.New("node: --gossip-key must be base64 of a 16, 24 or 32 byte key (e.g. head -c 32 /dev/urandom | base64)")
		}
	}
	if c.LeaseTTL <= 0 || c.LeaseRenew <= 0 {
		return errors.New("node: --lease-ttl and --lease-renew must be positive (e.g. --lease-ttl 5s --lease-renew 1s)")
	}
	if err := c.leaseConfig().Validate(); err != nil {
		return fmt.Errorf("node: --lease-ttl %v, --lease-renew %v: %w", c.LeaseTTL, c.LeaseRenew, err)
	}
	if c.EventRetention <= 0 {
		return fmt.Errorf("node: EventRetention %v must be positive; 24h is the default", c.EventRetention)
	}
	if c.ContextCacheMB <= 0 || c.ContextHotLease <= 0 {
		return errors.New("node: ContextCacheMB and ContextHotLease must be positive")
	}
	if c.IdleTimeout <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("node: IdleTimeout and ShutdownTimeout must be positive")
	}
	if c.MaxCallDuration < 0 {
		return fmt.Errorf("node: --max-call-duration %v must not be negative (0: no limit)", c.MaxCallDuration)
	}
	if c.MemoryLimit < 0 {
		return fmt.Errorf("node: --memory-limit %d must not be negative; use a size such as 512MiB or 2GiB, or off", c.MemoryLimit)
	}
	if c.CallSweepEvery <= 0 || c.CallSweepGrace < 0 {
		return fmt.Errorf("node: CallSweepEvery %v must be positive and --call-sweep-grace %v not negative", c.CallSweepEvery, c.CallSweepGrace)
	}
	return nil
}

// NoMemoryLimit as Config.MemoryLimit lifts any limit (--memory-limit off).
const NoMemoryLimit = math.MaxInt64

// memoryUnits are the suffixes GOMEMLIMIT accepts, and their sizes.
var memoryUnits = []struct {
	suffix string
	size   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// ParseMemoryLimit reads a memory limit as GOMEMLIMIT writes it: a whole
// number of bytes with an optional suffix B, KiB, MiB, GiB or TiB
// ("512MiB", "2GiB", "1073741824"), or "off" for NoMemoryLimit. The empty
// string is 0 (leave the runtime's limit).
func ParseMemoryLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return 0, nil
	case "off":
		return NoMemoryLimit, nil
	}
	num, unit := s, int64(1)
	for _, u := range memoryUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, unit = n, u.size
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v <= 0 || v > math.MaxInt64/unit {
		return 0, fmt.Errorf("memory limit %q: want a positive whole number of bytes with an optional unit B, KiB, MiB, GiB or TiB (e.g. 512MiB, 2GiB), or off", s)
	}
	return v * unit, nil
}

// leaseConfig is the lease configuration the flags give.
func (c Config) leaseConfig() lease.Config {
	lc := lease.DefaultConfig()
	lc.TTL, lc.RenewEvery = c.LeaseTTL, c.LeaseRenew
	lc.Margin = 0 // its default for this TTL
	return lc
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func schemeOf(s string) string {
	if i := strings.Index(s, "://"); i > 0 {
		return s[:i]
	}
	return ""
}

// httpReadHeaderTimeout bounds how long a client may take to send headers
// (slowloris).
const httpReadHeaderTimeout = 10 * time.Second
