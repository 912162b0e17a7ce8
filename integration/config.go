package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
)

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("integration: invalid proxy configuration")

// Config configures a Proxy. Flags (switchboard proxy) only fill a Config.
type Config struct {
	// Server is the Switchboard node's base URL, e.g.
	// "https://pbx.example.com" or "http://127.0.0.1:8080". Required.
	Server string
	// Token is the app registration's bearer token
	// (POST /v1/accounts/{a}/apps). The proxy adds it to every request it
	// forwards; local apps never see it. Required.
	Token string
	// Listen is the local address. Default "127.0.0.1:0": loopback only,
	// a random port chosen at each launch. Validate refuses any host that
	// is not a loopback address.
	Listen string
	// Discovery is the path of the discovery file (port and local token,
	// mode 0600). Empty: none is written (tests read Addr and LocalToken).
	// The CLI defaults it to DefaultDiscoveryPath().
	Discovery string
	// AllowOrigins are the browser origins ("https://crm.example.com")
	// allowed to call the proxy. Requests without an Origin header (native
	// apps) are allowed when they carry the local token. Default none.
	AllowOrigins []string
	// QueueFile persists PATCHes queued while the server is unreachable,
	// so a proxy restart keeps them (mode 0600, rewritten atomically on
	// each change). Empty: the queue lives in memory only.
	QueueFile string
	// QueueMax bounds the offline queue; a PATCH beyond it gets 503.
	// Default 1000.
	QueueMax int
	// CacheEntries bounds the context cache by count. Default 1000.
	CacheEntries int
	// CacheBytes bounds the context cache by the bytes of the cached
	// bodies. Default 32 MiB.
	CacheBytes int
	// EventBuffer is how many upstream events the proxy keeps for local
	// subscribers that resume with Last-Event-ID. Default 4096.
	EventBuffer int
	// ResultsKept is how many outcomes of replayed writes GET /proxy/queue
	// shows. Default 100.
	ResultsKept int
	// MaxBody bounds a local request's body. Default 256 KiB (the server's
	// own limit is 64 KiB per app per call).
	MaxBody int64
	// BackoffMin and BackoffMax bound the wait between upstream event
	// stream reconnects: BackoffMin doubling per failed attempt to
	// BackoffMax, each drawn with jitter in [d/2, d]. Defaults 100 ms and
	// 30 s.
	BackoffMin, BackoffMax time.Duration
	// StallTimeout drops an upstream event stream that has sent nothing,
	// not even a heartbeat, for this long. Default 45 s (the server's
	// heartbeat is 15 s).
	StallTimeout time.Duration
	// RequestTimeout bounds each forwarded request (not the event
	// stream). Default 10 s.
	RequestTimeout time.Duration
	// Heartbeat is how often an idle local event stream gets a comment
	// line. Default 15 s.
	Heartbeat time.Duration

	// Clock tells the time (cache ages, queue timestamps) and runs the
	// event stream's stall timer. Default the wall clock.
	Clock clock.Clock
	// Rand draws backoff jitter. Default a randomly seeded PCG. Used from
	// the upstream goroutine only.
	Rand *rand.Rand
	// Sleep waits d or until ctx is done (backoff between reconnects).
	// Default a timer. Tests advance a fake clock instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Client makes the upstream requests. Default a client with a clone
	// of the default transport and no overall timeout (the event stream
	// is long); Run closes its idle connections when it returns.
	Client *http.Client
	// Logger logs. Default discards.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in; Server and
// Token are left for the caller.
func DefaultConfig() Config {
	return Config{
		Listen:         "127.0.0.1:0",
		QueueMax:       1000,
		CacheEntries:   1000,
		CacheBytes:     32 << 20,
		EventBuffer:    4096,
		ResultsKept:    100,
		MaxBody:        256 << 10,
		BackoffMin:     100 * time.Millisecond,
		BackoffMax:     30 * time.Second,
		StallTimeout:   45 * time.Second,
		RequestTimeout: 10 * time.Second,
		Heartbeat:      15 * time.Second,
	}
}

// Validate reports what is wrong with c, and what to do, in one error
// wrapping ErrConfig.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Server == "" {
		bad("the server URL is required (--server https://pbx.example.com)")
	} else if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("server %q must be an http:// or https:// URL with a host", c.Server)
	} else if u.RawQuery != "" || u.Fragment != "" {
		bad("server %q must have no query or fragment", c.Server)
	}
	if c.Token == "" {
		bad("the app token is required (--token, --token-file or SWITCHBOARD_APP_TOKEN; POST /v1/accounts/{a}/apps issues one)")
	} else if strings.ContainsAny(c.Token, " \t\r\n") {
		bad("the app token must not contain spaces or line breaks")
	}
	if host, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q must be host:port, e.g. 127.0.0.1:0", c.Listen)
	} else if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		bad("listen %q must be a loopback address (127.0.0.1 or [::1]): the proxy serves the apps of this machine only", c.Listen)
	}
	for _, o := range c.AllowOrigins {
		if !validOrigin(o) {
			bad("allowed origin %q must be scheme://host[:port] with no path, e.g. https://crm.example.com", o)
		}
	}
	for _, v := range []struct {
		name string
		n    int64
	}{{"QueueMax", int64(c.QueueMax)}, {"CacheEntries", int64(c.CacheEntries)}, {"CacheBytes", int64(c.CacheBytes)},
		{"EventBuffer", int64(c.EventBuffer)}, {"ResultsKept", int64(c.ResultsKept)}, {"MaxBody", c.MaxBody}} {
		if v.n <= 0 {
			bad("%s must be positive, not %d", v.name, v.n)
		}
	}
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"BackoffMin", c.BackoffMin}, {"BackoffMax", c.BackoffMax}, {"StallTimeout", c.StallTimeout},
		{"RequestTimeout", c.RequestTimeout}, {"Heartbeat", c.Heartbeat}} {
		if v.d <= 0 {
			bad("%s must be positive, not %s", v.name, v.d)
		}
	}
	if c.BackoffMax < c.BackoffMin {
		bad("BackoffMax (%s) must not be below BackoffMin (%s)", c.BackoffMax, c.BackoffMin)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

// validOrigin reports whether o is a serialized origin: scheme://host[:port].
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && o == u.Scheme+"://"+u.Host
}

// withDefaults fills the injected dependencies left nil.
func (c Config) withDefaults() Config {
	c.Clock = cmp.Or[clock.Clock](c.Clock, clock.Real{})
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if c.Sleep == nil {
		c.Sleep = sleepCtx
	}
	if c.Client == nil {
		// Its own transport, so that Run can close its idle connections.
		c.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
