// Command switchboard runs a Switchboard node and its tools.
//
//	switchboard node [flags]   run a node
//	switchboard sim [flags]    run a placement simulation
//	switchboard proxy [flags]  run the client-side integration proxy
//	switchboard version        print the version
//
// Every flag of a subcommand can also be set through the environment as
// SWITCHBOARD_<FLAG>, with dashes as underscores (--admin-token ->
// SWITCHBOARD_ADMIN_TOKEN); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCommand(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(1)
	}
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "switchboard",
		Short:         "Switchboard: a hosted VoIP PBX runtime on virtual actors",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n") // switchboard --version: the same line as switchboard version
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newNodeCommand(stdout, stderr), newSimCommand(stdout, stderr), newProxyCommand(stdout, stderr), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
	})
	return root
}

func newNodeCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := node.DefaultConfig()
	var logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a Switchboard node",
		Long: `Run a Switchboard node: the HTTP provisioning and debug API, the actors,
and the store (embedded badger in --data, or PostgreSQL with --store).

Every flag may be set in the environment as SWITCHBOARD_<FLAG>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return err
			}
			log, err := newLogger(stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = log
			cfg.Out = stdout
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			n, err := node.New(ctx, cfg)
			if err != nil {
				return addrTaken(err, cmd.Flags())
			}
			return n.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", cfg.Name, "node name shown in logs and debug replies")
	f.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "HTTP listen address (API, debug, metrics)")
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "folder of the embedded badger store (used when --store is empty)")
	f.StringVar(&cfg.StoreURL, "store", "", "shared PostgreSQL store, postgres://user:pass@host:5432/db")
	f.StringVar(&cfg.Pool, "pool", cfg.Pool, "pool of nodes this node serves")
	f.StringVar(&cfg.GossipAddr, "gossip", cfg.GossipAddr, "gossip (memberlist) bind address")
	f.StringSliceVar(&cfg.Join, "join", nil, "comma-separated gossip addresses of nodes to join")
	f.StringVar(&cfg.ActorAddr, "actor", cfg.ActorAddr, "actor remoting (protoactor) address")
	f.StringVar(&cfg.GossipKey, "gossip-key", "", "base64 AES key (16, 24 or 32 bytes) that encrypts gossip")
	f.StringVar(&cfg.GossipProfile, "gossip-profile", "lan", "gossip timers: lan, or local for fast failure detection on one host")
	f.Float64Var(&cfg.PlacementEpsilon, "placement-epsilon", cfg.PlacementEpsilon, "bounded-load slack: no node takes more than ceil((1+eps)*mean) actors of a kind")
	f.StringVar(&cfg.SIPAddr, "sip", cfg.SIPAddr, "SIP listen address, UDP and TCP")
	f.StringVar(&cfg.SIPSAddr, "sips", "", "SIP over TLS listen address (needs --sips-cert and --sips-key)")
	f.StringVar(&cfg.SIPSCert, "sips-cert", "", "PEM certificate for --sips")
	f.StringVar(&cfg.SIPSKey, "sips-key", "", "PEM private key for --sips")
	f.StringVar(&cfg.SIPSecret, "sip-secret", "", "secret keying digest nonces, shared by the nodes of a cluster (default: derived from --gossip-key, else random)")
	f.StringSliceVar(&cfg.SIPDigest, "sip-digest", []string{"MD5", "SHA-256"}, "digest algorithms accepted (MD5, SHA-256); each device is challenged with one: MD5 unless it or its account is set to SHA-256 or it answered SHA-256 before")
	f.IntVar(&cfg.SIPFloodLimit, "sip-flood-limit", 2000, "packets one source may send per 2 s before a 60 s ban (negative: off)")
	f.Var(prefixList{&cfg.SIPTrust.Sources}, "sip-trusted-source", "CIDR prefix of a trusted SIP source (an SBC, a NAT): no per-source flood limit, the trusted rate instead (repeatable or comma-separated)")
	f.Float64Var(&cfg.SIPTrust.Rate, "sip-trusted-rate", 5000, "packets per second all trusted SIP sources together may send (negative: no limit)")
	f.IntVar(&cfg.SIPTrust.Burst, "sip-trusted-burst", 0, "packets trusted SIP sources may send at once above --sip-trusted-rate (0: two seconds' worth)")
	f.DurationVar(&cfg.SIPStreams.MessageTimeout, "sip-message-timeout", 10*time.Second, "TCP/TLS: how long one SIP message may take to arrive once begun (and a new connection's first)")
	f.DurationVar(&cfg.SIPStreams.IdleTimeout, "sip-idle-timeout", 60*time.Second, "TCP/TLS: how long a connection with no registered device may stay silent")
	f.IntVar(&cfg.SIPStreams.MaxPerSource, "sip-conns-per-source", 32, "TCP/TLS: connections one IP address may hold at once (trunks, peers and registered devices exempt)")
	f.DurationVar(&cfg.SIPProbeInterval, "sip-probe-interval", 5*time.Second, "how often feature-server targets are probed with OPTIONS")
	f.DurationVar(&cfg.SIPFailoverTimeout, "sip-failover-timeout", 2*time.Second, "how long a silent target is waited for before the next")
	f.StringVar(&cfg.DNSAddr, "dns", cfg.DNSAddr, "DNS responder address, UDP and TCP, for account DNS names and forwarding names")
	f.StringVar(&cfg.Resolver, "resolver", "", "DNS server for resolving forwarding names (default: this node's --dns)")
	f.StringVar(&cfg.Zone, "zone", cfg.Zone, "DNS zone of account DNS names (<account>.<zone>)")
	f.StringVar(&cfg.AdminToken, "admin-token", "", "bearer token required by /v1 and /debug (required off loopback)")
	f.BoolVar(&cfg.Demo, "demo", false, "provision the demo account acme with devices alice and bob, and print their credentials")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", cfg.LeaseTTL, "how long a renewal of this node's liveness record in the store vouches for it; others take over its accounts this long after it stops renewing")
	f.DurationVar(&cfg.LeaseRenew, "lease-renew", cfg.LeaseRenew, "how often this node renews its liveness record and reads the others' (finding its cluster without --join)")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "how long an actor stays active without messages")
	f.IntVar(&cfg.ContextCacheMB, "context-cache-mb", cfg.ContextCacheMB, "memory budget for cached call contexts, MiB (least recently used evicted first)")
	f.DurationVar(&cfg.ContextHotLease, "context-hot-lease", cfg.ContextHotLease, "how long a call's context stays cached after the call ends")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "bound on graceful shutdown; live calls are served for its first half, then ended (interrupted)")
	f.DurationVar(&cfg.MaxCallDuration, "max-call-duration", cfg.MaxCallDuration, "a call lasting longer is ended with disposition expired (0: no limit)")
	f.DurationVar(&cfg.CallSweepGrace, "call-sweep-grace", cfg.CallSweepGrace, "how long after its node is gone a call is ended (interrupted) by another node")
	f.Var((*memoryLimit)(&cfg.MemoryLimit), "memory-limit", "soft memory limit of the process, as GOMEMLIMIT: 512MiB, 2GiB, or off (default: GOMEMLIMIT, else none); the GC keeps under it, and otherwise runs at GOGC (default 100)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// prefixList is a repeatable flag of CIDR prefixes, each value one or
// more, comma-separated.
type prefixList struct{ to *[]netip.Prefix }

func (l prefixList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		p, err := actors.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		*l.to = append(*l.to, p)
	}
	return nil
}

func (l prefixList) String() string {
	if l.to == nil {
		return ""
	}
	return strings.Join(actors.PrefixStrings(*l.to), ",")
}

func (prefixList) Type() string { return "cidr" }

// memoryLimit is --memory-limit: node.ParseMemoryLimit's sizes, checked
// when the flag (or SWITCHBOARD_MEMORY_LIMIT) is set.
type memoryLimit int64

func (m *memoryLimit) Set(s string) error {
	v, err := node.ParseMemoryLimit(s)
	if err != nil {
		return err
	}
	*m = memoryLimit(v)
	return nil
}

func (m *memoryLimit) String() string {
	switch *m {
	case 0:
		return ""
	case node.NoMemoryLimit:
		return "off"
	}
	return strconv.FormatInt(int64(*m), 10) + "B"
}

func (m *memoryLimit) Type() string { return "size" }

// applyEnv sets every flag not given on the command line from
// SWITCHBOARD_<FLAG> when that variable is set.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := envName(f.Name)
		if v, ok := lookup(name); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// listenFlags are the flags of addresses a node listens on.
var listenFlags = []string{"http", "sip", "sips", "dns", "gossip", "actor"}

// addrTaken turns "address already in use" into one line that names the
// flag to change (5353, --dns's default, is often held by a desktop's
// mDNS responder). The flag is the one whose address the error quotes.
func addrTaken(err error, fs *pflag.FlagSet) error {
	msg := err.Error()
	if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(msg, "address already in use") {
		return err
	}
	for _, name := range listenFlags {
		addr := fs.Lookup(name).Value.String()
		host, port, splitErr := net.SplitHostPort(addr)
		if splitErr != nil || port == "0" || !quotesAddr(msg, host, port) {
			continue
		}
		return fmt.Errorf("--%s %s: address already in use; choose a free one with --%s (or %s)",
			name, addr, name, envName(name))
	}
	return err
}

// quotesAddr says whether msg holds host:port with no digit following.
func quotesAddr(msg, host, port string) bool {
	return regexp.MustCompile(regexp.QuoteMeta(net.JoinHostPort(host, port)) + `([^0-9]|$)`).MatchString(msg)
}

// envName is the environment variable of a flag: SWITCHBOARD_<FLAG>.
func envName(flag string) string {
	return "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
