package sipedge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/dnszone"
	"github.com/switchboard-pbx/switchboard/internal/syncbuf"
	"github.com/switchboard-pbx/switchboard/sipauth"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

// testZone is the DNS zone of account names in these tests: account acme
// is acme.sip.switchboard.test.
const testZone = "sip.switchboard.test"

// testAccount is the one account the fake actors know.
const testAccount = "acme"

// replyWait bounds how long a test waits for a response the edge should
// send. A missing response fails the test only after this long.
const replyWait = 5 * time.Second

// silenceWait is how long a test listens to conclude that the edge sent
// nothing. Where a later answer on the same path proves the edge has read
// the packet, this only covers the edge's own handler goroutine.
const silenceWait = 300 * time.Millisecond

// crlf turns a message written with "\n" line ends, as the RFCs print
// them, into its wire form with CRLF line ends (RFC 3261 section 7).
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}

// parseRequest parses the text of a request as sipgo does on the wire.
func parseRequest(t *testing.T, text string) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage(crlf(text))
	if err != nil {
		t.Fatalf("parsing the test request: %v\n%s", err, text)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("the test message is a %T, not a request", msg)
	}
	return req
}

// fakeActors stands in for the actor system: the account actor of
// testAccount answers GetSecretEdgeView with an empty view, every other account
// answers CODE_NOT_FOUND, and anything else fails.
type fakeActors struct {
	mu       sync.Mutex
	requests []string // kind/identity: message type, in arrival order
}

func (f *fakeActors) Request(_ context.Context, kind, identity string, msg proto.Message) (proto.Message, error) {
	f.mu.Lock()
	f.requests = append(f.requests, fmt.Sprintf("%s/%s: %T", kind, identity, msg))
	f.mu.Unlock()
	if _, ok := msg.(*actorpb.GetSecretEdgeView); ok && kind == actors.KindAccount {
		if identity != testAccount {
			return &actorpb.SecretEdgeView{Error: &actorpb.Error{Code: actorpb.Code_CODE_NOT_FOUND, Message: "no account " + identity}}, nil
		}
		return &actorpb.SecretEdgeView{Account: &actorpb.Account{Id: identity, DnsName: identity + "." + testZone}}, nil
	}
	return nil, fmt.Errorf("fakeActors: %s %s %T is not wired in this test", kind, identity, msg)
}

func (f *fakeActors) Tell(kind, identity string, msg proto.Message) error {
	_, err := f.Request(context.Background(), kind, identity, msg)
	return err
}

func (f *fakeActors) RequestWithHint(ctx context.Context, kind, identity string, _ actors.Hint, msg proto.Message) (proto.Message, error) {
	return f.Request(ctx, kind, identity, msg)
}

func (f *fakeActors) CallHint(context.Context, string) (actors.Hint, error) {
	return actors.Hint{}, errors.New("fakeActors: no pools in this test")
}

func (f *fakeActors) IsLocal(string, string) bool { return false }

// Requests lists what the edge asked, in order.
func (f *fakeActors) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// fakeMembers is a cluster of one: no peers.
type fakeMembers struct{}

func (fakeMembers) SIPAddr(string) (string, bool) { return "", false }
func (fakeMembers) IsPeer(string) bool            { return false }

// fakeResolver resolves nothing.
type fakeResolver struct{}

func (fakeResolver) Resolve(context.Context, string, string) ([]dnszone.Target, error) {
	return nil, errors.New("fakeResolver: no DNS in this test")
}

// changeNotices stands in for the account actor's change notices
// (actors.Config.EdgeChanged): any request to an account actor other than
// a read of its edge view drops what the edge's snapshots hold of it.
type changeNotices struct {
	sipedge.Actors
	views *accountview.Cache
}

func (c changeNotices) Request(ctx context.Context, kind, identity string, msg proto.Message) (proto.Message, error) {
	rep, err := c.Actors.Request(ctx, kind, identity, msg)
	if _, read := msg.(*actorpb.GetSecretEdgeView); kind == actors.KindAccount && !read {
		c.views.Invalidate(accountview.AllKey(identity))
	}
	return rep, err
}

// testEdge is a running Edge on loopback with fakes behind it.
type testEdge struct {
	*sipedge.Edge
	clock  *clock.Fake
	actors *fakeActors
	views  *accountview.Cache // the edge's account snapshots (nil: the test set its own)
	reg    *prometheus.Registry
	logs   *syncBuffer
}

// syncBuffer is written by goroutines while the test reads it.
type syncBuffer = syncbuf.Buffer

// startEdge starts an Edge on 127.0.0.1 with a fake clock, fake actors and
// a JSON log in a buffer, runs it until the test ends and checks that Run
// then returns nil.
func startEdge(t testing.TB, mutate ...func(*sipedge.Config)) *testEdge {
	t.Helper()
	auth, err := sipauth.New(sipauth.Config{Secret: []byte("sipedge tests: 32 bytes secret!!")})
	if err != nil {
		t.Fatalf("sipauth.New: %v", err)
	}
	te := &testEdge{
		clock:  clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		actors: &fakeActors{},
		reg:    prometheus.NewRegistry(),
		logs:   &syncBuffer{},
	}
	cfg := sipedge.Config{
		Node:       "node-1",
		Zone:       testZone,
		Addr:       "127.0.0.1:0",
		Actors:     te.actors,
		Members:    fakeMembers{},
		Resolver:   fakeResolver{},
		Auth:       auth,
		Clock:      te.clock,
		Logger:     slog.New(slog.NewJSONHandler(te.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: te.reg,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	if cfg.Accounts == nil {
		vc := accountview.DefaultConfig()
		vc.Actors, vc.Clock = cfg.Actors, cfg.Clock
		if te.views, err = accountview.New(vc); err != nil {
			t.Fatalf("accountview.New: %v", err)
		}
		cfg.Actors = changeNotices{Actors: cfg.Actors, views: te.views}
		cfg.Accounts = te.views
	}
	e, err := sipedge.New(cfg)
	if err != nil {
		t.Fatalf("sipedge.New: %v", err)
	}
	te.Edge = e
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after a clean stop", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10 s of its context ending")
		}
	})
	return te
}

// counter reads a counter of the edge's registry (0 when the series does
// not exist yet).
func (te *testEdge) counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := te.reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// udpPeer is a SIP client socket bound to one loopback address.
type udpPeer struct {
	t    testing.TB
	conn net.PacketConn
	to   net.Addr
}

// newUDPPeer binds a socket on ip (127.0.0.1, 127.0.0.2, ...) that talks
// to the edge.
func newUDPPeer(t testing.TB, te *testEdge, ip string) *udpPeer {
	t.Helper()
	conn, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("binding a client socket on %s: %v", ip, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	to, err := net.ResolveUDPAddr("udp", te.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return &udpPeer{t: t, conn: conn, to: to}
}

func (p *udpPeer) addr() string { return p.conn.LocalAddr().String() }

func (p *udpPeer) send(data []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteTo(data, p.to); err != nil {
		p.t.Fatalf("sending %d bytes: %v", len(data), err)
	}
}

// read returns the next datagram that arrives before d passes, or nil.
func (p *udpPeer) read(d time.Duration) []byte {
	p.t.Helper()
	buf := make([]byte, 65535)
	if err := p.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		p.t.Fatal(err)
	}
	n, _, err := p.conn.ReadFrom(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		p.t.Fatalf("reading: %v", err)
	}
	return buf[:n]
}

// await returns the first datagram that match accepts within d, or nil.
func (p *udpPeer) await(d time.Duration, match func([]byte) bool) []byte {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		if data := p.read(left); data == nil || match(data) {
			return data
		}
	}
}

// final waits up to d for the final response whose Call-ID is callID,
// skipping provisional responses and anything else; nil if none came.
func (p *udpPeer) final(callID string, d time.Duration) *sip.Response {
	p.t.Helper()
	return parseResponse(p.await(d, func(data []byte) bool {
		res := parseResponse(data)
		return res != nil && res.CallID() != nil && res.CallID().Value() == callID && !res.IsProvisional()
	}))
}

// parseResponse parses data as a response, or returns nil.
func parseResponse(data []byte) *sip.Response {
	msg, err := sip.ParseMessage(data)
	if err != nil {
		return nil
	}
	res, _ := msg.(*sip.Response)
	return res
}

var seq atomic.Int64

// unique returns a token no other call of it in this process returns.
func unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// optionsTo is an OPTIONS to the edge itself (no user in the request-URI,
// RFC 3261 section 11), sent from the peer at from, with every mandatory
// header (section 8.1.1).
func optionsTo(from, callID string) []byte {
	return crlf(fmt.Sprintf(`OPTIONS sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK%s
Max-Forwards: 70
To: <sip:127.0.0.1>
From: <sip:probe@client.invalid>;tag=%s
Call-ID: %s
CSeq: 1 OPTIONS
Accept: application/sdp
Content-Length: 0

`, from, unique("b"), unique("t"), callID))
}

// ping sends an OPTIONS from p and returns the edge's final answer to it,
// or nil if none came within d.
func (p *udpPeer) ping(d time.Duration) *sip.Response {
	p.t.Helper()
	id := unique("ping")
	p.send(optionsTo(p.addr(), id))
	return p.final(id, d)
}

// requireAlive fails the test unless an OPTIONS from a fresh socket gets
// 200 OK: the edge still reads, parses, dispatches and answers.
func requireAlive(t *testing.T, te *testEdge, after string) {
	t.Helper()
	p := newUDPPeer(t, te, "127.0.0.1")
	res := p.ping(replyWait)
	if res == nil {
		t.Fatalf("after %s: OPTIONS got no answer in %v; the edge is not serving", after, replyWait)
	}
	if res.StatusCode != 200 {
		t.Fatalf("after %s: OPTIONS got %d %s, want 200", after, res.StatusCode, res.Reason)
	}
}

// reply is one datagram the edge sent: its status code and Call-ID read
// from the text, so that a response sipgo cannot parse (a 400 echoing a
// malformed Via) is still seen.
type reply struct {
	code   int
	callID string
	raw    string
}

func readReply(raw []byte) (reply, bool) {
	r := reply{raw: string(raw)}
	head, _, _ := strings.Cut(r.raw, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	var version string
	if _, err := fmt.Sscanf(lines[0], "%s %d", &version, &r.code); err != nil || !strings.HasPrefix(version, "SIP/") {
		return r, false
	}
	for _, l := range lines[1:] {
		name, value, _ := strings.Cut(l, ":")
		if n := strings.ToLower(strings.TrimSpace(name)); n == "call-id" || n == "i" {
			r.callID = strings.TrimSpace(value)
		}
	}
	return r, true
}

// sendThenPing sends data from p, then an OPTIONS, and returns every
// reply that came before the OPTIONS' 200 (the edge must still answer
// it).
func (p *udpPeer) sendThenPing(data []byte) []reply {
	p.t.Helper()
	p.send(data)
	id := unique("ping")
	p.send(optionsTo(p.addr(), id))
	var before []reply
	deadline := time.Now().Add(replyWait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			p.t.Fatalf("no answer to the OPTIONS sent after the packet within %v: the edge stopped reading", replyWait)
		}
		raw := p.read(left)
		if raw == nil {
			continue
		}
		r, ok := readReply(raw)
		if !ok {
			p.t.Fatalf("the edge sent something that is not a SIP response: %q", raw)
		}
		if r.callID == id {
			if r.code != 200 {
				p.t.Fatalf("OPTIONS after the packet got %d, want 200:\n%s", r.code, r.raw)
			}
			return before
		}
		before = append(before, r)
	}
}

func codes(rs []reply) []int {
	out := make([]int, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.code)
	}
	return out
}
