package sipedge

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// StreamConfig bounds SIP connections (TCP and TLS): how long a message
// may take, how long a connection may idle, and how many one source may
// hold. A zero field takes its default.
type StreamConfig struct {
	// MessageTimeout is how long one message may take to arrive once its
	// first byte has, and how long a new connection may take to deliver
	// its first message (Kamailio's tcp_msg_read_timeout; an HTTP
	// server's read-header timeout). A slowloris connection is closed
	// after it. Default 10 s.
	MessageTimeout time.Duration
	// IdleTimeout is how long a connection that carries no registered
	// flow may stay silent between messages. Default 60 s.
	IdleTimeout time.Duration
	// RegisteredGrace is how long past its registration's expiry a flow
	// that registered over the connection may idle; its keep-alives (RFC
	// 5626 section 3.5.1 CRLFs) and re-registrations keep it open. Default
	// 30 s.
	RegisteredGrace time.Duration
	// MaxPerSource is how many connections one IP address may hold at
	// once; more are closed on accept. Peers, trunks, feature servers and
	// registered devices' addresses are exempt. Default 32.
	MaxPerSource int
	// KeepAlive is how long a connection carrying a registered flow may
	// stay silent before the edge pings it (a CRLFCRLF, RFC 5626 section
	// 3.5.1; the device answers CRLF). The ping keeps NAT bindings open,
	// and a connection it cannot be written to is closed, which ends the
	// flow. Default 30 s.
	KeepAlive time.Duration
}

func (c *StreamConfig) fill() {
	orDefault(&c.MessageTimeout, 10*time.Second)
	orDefault(&c.IdleTimeout, 60*time.Second)
	orDefault(&c.RegisteredGrace, 30*time.Second)
	orDefault(&c.MaxPerSource, 32)
	orDefault(&c.KeepAlive, 30*time.Second)
}

// streams guards the edge's stream listeners. Socket deadlines are in the
// operating system's wall time, so streams reads time.Now, not the edge's
// injected clock (which stamps decisions, not I/O).
type streams struct {
	cfg StreamConfig
	// exempt says whether ip escapes the per-source limit.
	exempt func(ip netip.Addr) bool
	// closed is told why a connection was cut.
	closed func(ip netip.Addr, reason string)

	// gone is told the remote address of every connection that ended.
	gone func(remote string)

	mu     sync.Mutex
	perIP  map[netip.Addr]int
	regged map[string]time.Time // remote ip:port -> may idle until
	conns  map[string]*guardedConn
}

func newStreams(cfg StreamConfig, exempt func(netip.Addr) bool, closed func(netip.Addr, string), gone func(string)) *streams {
	return &streams{cfg: cfg, exempt: exempt, closed: closed, gone: gone, perIP: map[netip.Addr]int{}, regged: map[string]time.Time{}, conns: map[string]*guardedConn{}}
}

// listen wraps l so that what it accepts is guarded.
func (s *streams) listen(l net.Listener) net.Listener { return &guardedListener{Listener: l, s: s} }

// registered notes that a device registered over the connection from
// remote (ip:port), for expiresIn: it may idle that long, plus the grace.
func (s *streams) registered(remote string, expiresIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if expiresIn <= 0 {
		delete(s.regged, remote) // unregistered: back to the idle timeout
		return
	}
	s.regged[remote] = time.Now().Add(expiresIn + s.cfg.RegisteredGrace)
}

// idleUntil is when the connection from remote is closed if nothing comes.
func (s *streams) idleUntil(remote string, now time.Time) time.Time {
	until := now.Add(s.cfg.IdleTimeout)
	s.mu.Lock()
	if r, ok := s.regged[remote]; ok && r.After(until) {
		until = r
	}
	s.mu.Unlock()
	return until
}

func (s *streams) admit(ip netip.Addr) bool {
	exempt := s.exempt(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !exempt && s.perIP[ip] >= s.cfg.MaxPerSource {
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *streams) release(ip netip.Addr, remote string) {
	s.mu.Lock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	delete(s.regged, remote)
	delete(s.conns, remote)
	s.mu.Unlock()
	s.gone(remote)
}

type guardedListener struct {
	net.Listener
	s *streams
}

// Accept returns the next connection its source may open; the others
// are closed at once.
func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrIP(c.RemoteAddr())
		if !l.s.admit(ip) {
			_ = c.Close()
			l.s.closed(ip, "connection_limit")
			continue
		}
		gc := &guardedConn{Conn: c, s: l.s, ip: ip, remote: c.RemoteAddr().String(), msgStart: time.Now()}
		gc.lastRead.Store(time.Now().UnixNano())
		l.s.mu.Lock()
		l.s.conns[gc.remote] = gc
		l.s.mu.Unlock()
		return gc, nil
	}
}

// guardedConn sets its own read deadline before every read: the message
// timeout while a message (or the first one) is arriving, the idle
// timeout between messages. It frames the stream just enough to know
// which (framer).
type guardedConn struct {
	net.Conn
	s      *streams
	ip     netip.Addr
	remote string

	fr       framer    // only the reading goroutine touches fr and msgStart
	msgStart time.Time // when the message in progress began
	once     sync.Once
	lastRead atomic.Int64 // unix ns of the last bytes read, for keep-alives
}

// pingWrite bounds the write of a keep-alive ping.
const pingWrite = 5 * time.Second

// keepAlive pings every connection carrying a registered flow that has
// been silent for the keep-alive interval, and closes those the ping
// cannot be written to. It returns how many it pinged.
func (s *streams) keepAlive(now time.Time) int {
	s.mu.Lock()
	var due []*guardedConn
	for remote := range s.regged {
		if c, ok := s.conns[remote]; ok && now.Sub(time.Unix(0, c.lastRead.Load())) >= s.cfg.KeepAlive {
			due = append(due, c)
		}
	}
	s.mu.Unlock()
	for _, c := range due {
		_ = c.Conn.SetWriteDeadline(now.Add(pingWrite))
		if _, err := c.Conn.Write([]byte("\r\n\r\n")); err != nil {
			s.closed(c.ip, "keepalive_failed")
			_ = c.Close()
		}
	}
	return len(due)
}

// errStreamTimeout ends a connection the guard timed out. Read reports it
// as io.EOF, so sipgo closes the connection quietly.
var errStreamTimeout = errors.New("sipedge: stream timed out")

func (c *guardedConn) Read(b []byte) (int, error) {
	now := time.Now()
	reason, deadline := "idle_timeout", c.s.idleUntil(c.remote, now)
	if c.fr.inMessage() || c.fr.messages == 0 {
		reason, deadline = "message_timeout", c.msgStart.Add(c.s.cfg.MessageTimeout)
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
		if c.fr.feed(b[:n]) {
			c.msgStart = time.Now()
		}
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.s.closed(c.ip, reason)
		_ = c.Close()
		return n, io.EOF
	}
	return n, err
}

// SetReadDeadline is the guard's alone: sipgo's own read timeout would
// undo it.
func (c *guardedConn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline sets the write deadline only, for the same reason.
func (c *guardedConn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.s.release(c.ip, c.remote) })
	return err
}

// framer follows message boundaries in a SIP stream (RFC 3261 section
// 18.3: headers end at an empty line, Content-Length bytes of body follow;
// CRLFs between messages are keep-alives, RFC 5626 section 3.5.1). It
// does not validate: sipgo's parser does that and closes a connection it
// cannot frame. It only tells whether a message is in progress.
type framer struct {
	state    int // frIdle, frHeaders, frBody
	line     []byte
	lineLen  int // bytes of the current header line, including those not kept
	bodyLen  int // Content-Length of the message in progress
	body     int // body bytes still to come
	messages int // messages completed
}

const (
	frIdle = iota
	frHeaders
	frBody
)

// maxKeptLine bounds the bytes of a header line the framer keeps (enough
// for any Content-Length header).
const maxKeptLine = 64

func (f *framer) inMessage() bool { return f.state != frIdle }

// feed advances over data and reports whether a new message began in it.
func (f *framer) feed(data []byte) (began bool) {
	for len(data) > 0 {
		switch f.state {
		case frIdle:
			data = bytes.TrimLeft(data, "\r\n")
			if len(data) > 0 {
				f.state, f.bodyLen, f.line, f.lineLen, began = frHeaders, 0, f.line[:0], 0, true
			}
		case frHeaders:
			i := bytes.IndexByte(data, '\n')
			part := data
			if i >= 0 {
				part = data[:i]
			}
			if room := maxKeptLine - len(f.line); room > 0 {
				f.line = append(f.line, part[:min(room, len(part))]...)
			}
			f.lineLen += len(part)
			if i < 0 {
				return began
			}
			data = data[i+1:]
			f.endLine()
		case frBody:
			n := min(f.body, len(data))
			f.body -= n
			data = data[n:]
			if f.body == 0 {
				f.state = frIdle
				f.messages++
			}
		}
	}
	return began
}

// endLine takes in a complete header line: the empty line ends the
// headers.
func (f *framer) endLine() {
	line := bytes.TrimRight(f.line, "\r")
	empty := f.lineLen <= 1 && len(line) == 0
	f.line, f.lineLen = f.line[:0], 0
	if !empty {
		name, value, _ := bytes.Cut(line, []byte(":"))
		name = bytes.TrimSpace(name)
		if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l")) {
			if n, err := strconv.Atoi(string(bytes.TrimSpace(value))); err == nil && n >= 0 {
				f.bodyLen = n
			}
		}
		return
	}
	if f.bodyLen > 0 {
		f.state, f.body = frBody, f.bodyLen
		return
	}
	f.state = frIdle
	f.messages++
}
