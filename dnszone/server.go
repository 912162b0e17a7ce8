package dnszone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

var (
	// ErrClosed is returned by Run after Close.
	ErrClosed = errors.New("dnszone: server closed")
	// ErrRunning is returned by a second call of Run.
	ErrRunning = errors.New("dnszone: Run already called")
)

const (
	// ednsSize is the UDP payload size the Server offers and the Resolver
	// asks for: 1232 bytes fits the IPv6 minimum MTU without fragments
	// (DNS Flag Day 2020).
	ednsSize = 1232
	// listenAttempts bounds how often NewServer picks a new port when port
	// 0 gave a UDP port whose TCP twin was taken.
	listenAttempts = 5
)

// Server is the zone's authoritative DNS server, over UDP and TCP on one
// port. It is safe for concurrent use.
type Server struct {
	cfg  Config
	log  *slog.Logger
	zone *responder
	m    *metrics
	pc   net.PacketConn
	ln   net.Listener

	running   atomic.Bool
	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when Run returns
}

// NewServer validates cfg, registers the metrics and binds UDP and TCP on
// cfg.Addr. It does not answer queries until Run; queries that arrive
// before wait in the sockets.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	zone, _ := normalizeZone(cfg.Zone) // validated
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	pc, ln, err := listen(cfg.Addr)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With(slog.String("component", "dnszone"), slog.String("zone", zone))
	return &Server{
		cfg:     cfg,
		log:     log,
		zone:    &responder{zone: zone, src: cfg.Targets, ttl: uint32(cfg.TTL / time.Second), log: log},
		m:       m,
		pc:      pc,
		ln:      ln,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// listen binds UDP on addr, then TCP on the port UDP got. With port 0,
// that TCP port may be taken already; then it tries another UDP port.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	host, _, _ := net.SplitHostPort(addr) // validated
	port, _ := splitHostPort(addr)
	var lastErr error
	for range listenAttempts {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnszone: listen on %s/udp: %w", addr, err)
		}
		tcpAddr := net.JoinHostPort(host, strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port))
		ln, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = fmt.Errorf("dnszone: listen on %s/tcp: %w", tcpAddr, err)
		if port != 0 {
			break
		}
	}
	return nil, nil, lastErr
}

// Addr returns the bound host:port (UDP and TCP).
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// Run answers queries until ctx ends or Close is called, then waits for the
// queries under way and returns nil; an error means a socket failed. Run
// may be called once; the caller owns its goroutine.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(s.done)
	defer s.closeSockets()
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The context reaches the handler through this closure: a TargetSource
	// call under way is cancelled when Run stops.
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) { s.serveDNS(ctx, w, req) })
	units := []*serveUnit{
		newServeUnit("udp", &dns.Server{PacketConn: s.pc, Handler: handler, UDPSize: dns.DefaultMsgSize}),
		newServeUnit("tcp", &dns.Server{Listener: s.ln, Handler: handler}),
	}
	for _, u := range units {
		go u.serve()
	}
	s.log.Info("serving DNS", slog.String("addr", s.Addr()))
	select {
	case <-ctx.Done():
	case <-s.closing:
	case <-units[0].exited:
	case <-units[1].exited:
	}
	cancel()
	var errs []error
	for _, u := range units {
		errs = append(errs, u.stop())
	}
	return errors.Join(errs...)
}

// Close stops Run and waits for it to return; without Run, it releases the
// sockets. It may be called more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	if s.running.Load() {
		<-s.done
		return nil
	}
	// Run either never starts, or sees closing and closes the sockets too.
	s.closeSockets()
	return nil
}

// closeSockets closes both sockets; closing one twice is harmless.
func (s *Server) closeSockets() {
	s.pc.Close()
	s.ln.Close()
}

// serveUnit runs one miekg/dns server (UDP or TCP) in a goroutine.
type serveUnit struct {
	network string
	srv     *dns.Server
	started chan struct{} // closed once srv listens
	exited  chan struct{} // closed when srv's serve loop returned; err is set
	err     error
}

func newServeUnit(network string, srv *dns.Server) *serveUnit {
	u := &serveUnit{network: network, srv: srv, started: make(chan struct{}), exited: make(chan struct{})}
	srv.NotifyStartedFunc = func() { close(u.started) }
	return u
}

func (u *serveUnit) serve() {
	defer close(u.exited)
	u.err = u.srv.ActivateAndServe()
}

// stop shuts the server down if it started, waits for its goroutine and
// its queries under way, and returns the error it failed with, if any.
func (u *serveUnit) stop() error {
	select {
	case <-u.started:
		// After a start, ShutdownContext cannot fail with "not started";
		// it returns once the serve loop and its handlers are done.
		_ = u.srv.ShutdownContext(context.Background())
	case <-u.exited:
	}
	<-u.exited
	if u.err != nil {
		return fmt.Errorf("dnszone: serve %s: %w", u.network, u.err)
	}
	return nil
}

// serveDNS answers one query: the zone's answer, EDNS (RFC 6891), cut to
// the size the client can take, then counted.
func (s *Server) serveDNS(ctx context.Context, w dns.ResponseWriter, req *dns.Msg) {
	start := time.Now()
	udp := w.LocalAddr().Network() == "udp"
	size := dns.MaxMsgSize // TCP (RFC 1035 §4.2.2)
	if udp {
		size = dns.MinMsgSize // UDP without EDNS (RFC 1035 §4.2.1)
	}
	opt := req.IsEdns0()
	var resp *dns.Msg
	if opt != nil && opt.Version() != 0 {
		resp = new(dns.Msg).SetReply(req)
		resp.Rcode = dns.RcodeBadVers // RFC 6891 §6.1.3
	} else {
		qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
		resp = s.zone.answer(qctx, req)
		cancel()
	}
	if opt != nil {
		// A responder answers EDNS with EDNS (RFC 6891 §7).
		resp.SetEdns0(ednsSize, false)
		if udp {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), ednsSize)
		}
	}
	resp.Truncate(size) // sets TC when records were left out
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("write DNS answer failed", slog.String("remote", w.RemoteAddr().String()), slog.Any("error", err))
	}
	var qtype uint16
	if len(req.Question) > 0 {
		qtype = req.Question[0].Qtype
	}
	s.m.observe(qtype, resp.Rcode, time.Since(start))
}
