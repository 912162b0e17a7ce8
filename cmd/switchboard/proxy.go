package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchboard-pbx/switchboard/integration"
)

// appTokenEnv is where the proxy finds the app token when neither --token
// nor --token-file is given: not SWITCHBOARD_TOKEN, which applyEnv would
// derive, so that it cannot be mistaken for the admin token.
const appTokenEnv = "SWITCHBOARD_APP_TOKEN"

// newProxyCommand is `switchboard proxy`: the client-side integration
// proxy (package integration) on the user's machine.
func newProxyCommand(stdout, stderr io.Writer) *cobra.Command {
	cfg := integration.DefaultConfig()
	var tokenFile, logLevel, logFormat string
	var cacheMB int
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the client-side integration proxy for the apps on this machine",
		Long: `Run the client-side integration proxy: the integration API
(GET /v1/calls, GET and PATCH /v1/calls/{id}/context, GET /v1/events) on
127.0.0.1 for the apps of this machine, forwarded to --server with an app
registration's token (POST /v1/accounts/{a}/apps).

Local apps find the proxy's port and per-launch token in the discovery file
(mode 0600; --discovery) and send "Authorization: Bearer <token>". Browser
pages must come from an --allow-origin. Reads are served from a cache while
the server is unreachable; writes made then are queued (--queue-file) and
replayed with their If-Match when it is back.

The app token comes from --token-file, --token, or SWITCHBOARD_APP_TOKEN
(a token on the command line is visible to other users in the process list).
Every other flag may be set in the environment as SWITCHBOARD_<FLAG>.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if err := applyEnv(f, func(k string) (string, bool) {
				if k == "SWITCHBOARD_TOKEN" {
					return "", false // the app token has its own variable
				}
				return os.LookupEnv(k)
			}); err != nil {
				return err
			}
			tok, err := proxyToken(f, tokenFile, os.LookupEnv)
			if err != nil {
				return err
			}
			cfg.Token = tok
			cfg.CacheBytes = cacheMB << 20
			if err := proxyPaths(f, &cfg); err != nil {
				return err
			}
			log, err := newLogger(stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = log
			p, err := integration.New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(stdout, "switchboard proxy on %s for %s\n", p.URL(), cfg.Server)
			if cfg.Discovery != "" {
				fmt.Fprintf(stdout, "discovery file (port and local token): %s\n", cfg.Discovery)
			}
			return p.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Server, "server", "", "base URL of a Switchboard node, e.g. https://pbx.example.com (required)")
	f.StringVar(&cfg.Token, "token", "", "the app registration's bearer token (prefer --token-file or "+appTokenEnv+")")
	f.StringVar(&tokenFile, "token-file", "", "file holding the app token (surrounding whitespace ignored)")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "local address; loopback only, port 0 picks a random port at each launch")
	f.StringVar(&cfg.Discovery, "discovery", "", "discovery file for local apps (default <user config dir>/switchboard/proxy.json)")
	f.StringArrayVar(&cfg.AllowOrigins, "allow-origin", nil, "browser origin allowed to call the proxy, e.g. https://crm.example.com (repeatable)")
	f.StringVar(&cfg.QueueFile, "queue-file", "", `file keeping writes queued while offline across restarts (default <user config dir>/switchboard/proxy-queue.json; "none": memory only)`)
	f.IntVar(&cfg.QueueMax, "queue-max", cfg.QueueMax, "most writes queued while offline")
	f.IntVar(&cfg.CacheEntries, "cache-entries", cfg.CacheEntries, "most contexts kept for reads while the server is unreachable")
	f.IntVar(&cacheMB, "cache-mb", cfg.CacheBytes>>20, "most MiB of contexts kept")
	f.IntVar(&cfg.EventBuffer, "event-buffer", cfg.EventBuffer, "events kept for local apps that resume with Last-Event-ID")
	f.DurationVar(&cfg.BackoffMax, "backoff-max", cfg.BackoffMax, "longest wait between reconnects to the server's event stream (from 100ms, doubling)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// proxyToken picks the app token: --token-file, else --token, else
// SWITCHBOARD_APP_TOKEN. Giving both flags is an error.
func proxyToken(f *pflag.FlagSet, tokenFile string, lookup func(string) (string, bool)) (string, error) {
	if tokenFile != "" && f.Changed("token") {
		return "", errors.New("give the app token once: --token-file or --token, not both")
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("--token-file %s is empty: put the app token there (POST /v1/accounts/{a}/apps shows it once)", tokenFile)
	}
	if f.Changed("token") {
		return f.Lookup("token").Value.String(), nil
	}
	if v, ok := lookup(appTokenEnv); ok {
		return strings.TrimSpace(v), nil
	}
	return "", nil // Validate says what to do
}

// proxyPaths fills the discovery and queue paths left to their defaults:
// the user's config directory.
func proxyPaths(f *pflag.FlagSet, cfg *integration.Config) error {
	if cfg.Discovery == "" {
		p, err := integration.DefaultDiscoveryPath()
		if err != nil {
			return err
		}
		cfg.Discovery = p
	}
	switch {
	case cfg.QueueFile == "none":
		cfg.QueueFile = ""
	case cfg.QueueFile == "" && !f.Changed("queue-file"):
		cfg.QueueFile = filepath.Join(filepath.Dir(cfg.Discovery), "proxy-queue.json")
	}
	return nil
}
