package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Run when the proxy was closed before it ran.
var ErrClosed = errors.New("integration: proxy closed")

// Proxy is the client-side integration proxy: the integration API on
// loopback for the apps of one user's machine, forwarded to the server
// with the app registration's token. Make one with New, run it with Run,
// stop it by cancelling Run's context or with Close.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	server  string // base URL without a trailing slash
	ln      net.Listener
	port    int
	token   string
	origins map[string]bool
	hub     *hub
	cache   *cache
	queue   *queue
	// kick wakes the replay loop (buffered 1).
	kick chan struct{}
	// online is whether the server answered the last time the proxy
	// asked (the event stream, a forwarded request, a replay).
	online atomic.Bool

	mu      sync.Mutex
	cancel  context.CancelFunc
	closed  bool
	started bool
	done    chan struct{}
}

// New checks cfg, loads the offline queue and opens the local listener
// (a random port by default). It starts nothing: Run does.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	q, err := openQueue(cfg.QueueFile, cfg.QueueMax, cfg.ResultsKept)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("integration: listening on %s: %w", cfg.Listen, err)
	}
	p := &Proxy{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "integration-proxy"),
		server:  strings.TrimSuffix(cfg.Server, "/"),
		ln:      ln,
		port:    ln.Addr().(*net.TCPAddr).Port,
		token:   newLocalToken(),
		origins: map[string]bool{},
		hub:     newHub(cfg.EventBuffer),
		cache:   newCache(cfg.CacheEntries, cfg.CacheBytes),
		queue:   q,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	for _, o := range cfg.AllowOrigins {
		p.origins[o] = true
	}
	// Optimistic until the server fails to answer: a fresh proxy forwards
	// its first requests rather than queueing them.
	p.online.Store(true)
	return p, nil
}

// newLocalToken draws a per-launch token: 256 bits from the system's
// cryptographic source, hex.
func newLocalToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

// Addr is the local address, e.g. 127.0.0.1:49731.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the local base URL, e.g. http://127.0.0.1:49731.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// LocalToken is this launch's local token, which apps present as
// "Authorization: Bearer <token>".
func (p *Proxy) LocalToken() string { return p.token }

// Run writes the discovery file, serves the local apps, keeps one event
// stream open to the server and replays offline writes, until ctx is
// done or Close is called. It then stops every goroutine it started,
// removes the discovery file and returns nil (or the error that stopped
// it).
func (p *Proxy) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.closed || p.started {
		p.mu.Unlock()
		return ErrClosed
	}
	p.started = true
	ctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	p.mu.Unlock()
	defer close(p.done)
	defer cancel()

	if p.cfg.Discovery != "" {
		d := Discovery{Version: 1, URL: p.URL(), Port: p.port, Token: p.token, PID: os.Getpid(),
			Server: p.server, Started: p.cfg.Clock.Now().UTC()}
		if err := writeDiscovery(p.cfg.Discovery, d); err != nil {
			_ = p.ln.Close()
			return fmt.Errorf("integration: writing the discovery file %s: %w", p.cfg.Discovery, err)
		}
		defer func() {
			if err := removeDiscovery(p.cfg.Discovery, p.token); err != nil {
				p.log.Warn("removing the discovery file", "path", p.cfg.Discovery, "err", err)
			}
		}()
	}
	srv := &http.Server{
		Handler:           p.Handler(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() {
		if err := srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
			cancel()
		}
	})
	wg.Go(func() { p.upstreamLoop(ctx) })
	wg.Go(func() { p.replayLoop(ctx) })
	p.log.Info("proxy listening", "url", p.URL(), "server", p.server, "discovery", p.cfg.Discovery)
	if n, _ := p.queue.len(""); n > 0 {
		p.log.Info("offline writes waiting from an earlier run", "queued", n)
	}

	<-ctx.Done()
	// Local event streams end with ctx (BaseContext); Shutdown waits for
	// the other requests in flight.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	wg.Wait()
	p.cfg.Client.CloseIdleConnections()
	select {
	case err := <-serveErr:
		return fmt.Errorf("integration: serving: %w", err)
	default:
		return nil
	}
}

// Close stops Run and waits for it to return; a proxy that never ran
// releases its listener. Close is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	started, cancel := p.started, p.cancel
	p.mu.Unlock()
	if !started {
		_ = p.ln.Close()
		return nil
	}
	cancel() // set with started, under mu
	<-p.done
	return nil
}

// setOnline records whether the server answered. A change is logged and
// told to local subscribers as "event: proxy.status"; being online wakes
// the replay of offline writes.
func (p *Proxy) setOnline(v bool) {
	if p.online.Swap(v) != v {
		p.log.Info("server reachability changed", "online", v)
		p.hub.addLocal(frame{Event: "proxy.status", Data: fmt.Sprintf(`{"online":%t}`, v)})
	}
	if v {
		p.kickReplay()
	}
}

// kickReplay wakes the replay loop when writes are queued.
func (p *Proxy) kickReplay() {
	if n, _ := p.queue.len(""); n > 0 {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// upstreamURL is the server's URL for path (already escaped) and query.
func (p *Proxy) upstreamURL(path string, query url.Values) string {
	u := p.server + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}
