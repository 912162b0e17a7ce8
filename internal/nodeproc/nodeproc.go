package nodeproc

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/syncbuf"
)

// Figures of starting and stopping a node.
const (
	ReadyWithin   = 30 * time.Second      // StartCmd's wait until /healthz serves
	PollInterval  = 50 * time.Millisecond // Poll's period
	startAttempts = 3                     // Start's tries when its HTTP port was taken
)

// ErrPortTaken says that another process bound the node's HTTP port
// between the pick and the node's bind; Start retries on another port.
var ErrPortTaken = errors.New("nodeproc: HTTP port was taken before the node bound it")

// Options says how to start a node.
type Options struct {
	Binary string    // the switchboard binary
	Name   string    // --name; "": "node"
	Bind   string    // host of --http; "": 127.0.0.1 (Do dials 127.0.0.1 either way)
	Args   []string  // flags after those Start sets (a later flag wins)
	Env    []string  // KEY=VALUE added to the child's environment
	Token  string    // bearer token Do sends; "": none
	Output io.Writer // receives stdout and stderr; nil: they are kept in Node.Stdout and Node.Stderr
}

// Node is one running switchboard process that serves HTTP on Addr.
type Node struct {
	Cmd            *exec.Cmd
	Addr           string          // host:port Do dials
	Stdout, Stderr *syncbuf.Buffer // nil when Options.Output was set
	token          string
	client         *http.Client
	exited         chan struct{} // closed once the process exited and its output is copied
}

// Env is this process's environment without SWITCHBOARD_* variables, plus
// extra.
func Env(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SWITCHBOARD_") })
	return append(env, extra...)
}

// FreePort returns a loopback port that was free for TCP and UDP a moment
// ago.
func FreePort() (string, error) {
	// Below Linux's ephemeral range (32768 up): a port the kernel hands to
	// another test's ":0" bind or outgoing connection meanwhile cannot be
	// one of these, so a port picked here stays free until its node binds
	// it. Free for TCP and UDP alike (SIP and DNS take both).
	for range 64 {
		port := strconv.Itoa(20000 + rand.IntN(12000))
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", "127.0.0.1:"+port)
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = u.Close()
		return port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("nodeproc: picking a free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// Start starts `switchboard node` with o and waits until it serves. On an
// error the process has exited.
func Start(ctx context.Context, o Options) (*Node, error) {
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		args := append([]string{"node", "--name", cmp.Or(o.Name, "node"), "--http", net.JoinHostPort(cmp.Or(o.Bind, "127.0.0.1"), port),
			"--gossip", "127.0.0.1:0", "--actor", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--dns", "127.0.0.1:0"}, o.Args...)
		cmd := exec.Command(o.Binary, args...)
		cmd.Env = Env(o.Env...)
		cmd.Stdout, cmd.Stderr = o.Output, o.Output
		n, err := StartCmd(ctx, cmd, net.JoinHostPort("127.0.0.1", port), o.Token)
		if err == nil || attempt == startAttempts || !errors.Is(err, ErrPortTaken) {
			return n, err
		}
	}
}

// StartCmd starts cmd, a node that serves HTTP on addr (such as a shell
// running one), and waits until it serves. Unless cmd's Stdout and Stderr
// are set, its output is kept in Node.Stdout and Node.Stderr. On an error
// the process has exited; the error holds the end of its output.
func StartCmd(ctx context.Context, cmd *exec.Cmd, addr, token string) (*Node, error) {
	n := &Node{Cmd: cmd, Addr: addr, token: token, exited: make(chan struct{}),
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
	if cmd.Stdout == nil && cmd.Stderr == nil {
		n.Stdout, n.Stderr = &syncbuf.Buffer{}, &syncbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = n.Stdout, n.Stderr
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nodeproc: starting %s: %w", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait() // the exit status is read from Cmd.ProcessState
		close(n.exited)
	}()
	if err := n.WaitReady(ctx, ReadyWithin); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// WaitReady polls /healthz until it answers 200 "serving"; it fails at
// once if the process exits.
func (n *Node) WaitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := Poll(ctx, within, "switchboard serving /healthz on "+n.Addr, func() (bool, string) {
		var h struct{ Status string }
		err := n.GetJSON(ctx, "/healthz", &h)
		return err == nil && h.Status == "serving", fmt.Sprint(h.Status, err)
	})
	switch {
	case err == nil || n.Running():
		return err
	case strings.Contains(n.Output(), "address already in use"):
		return fmt.Errorf("%w: %s", ErrPortTaken, n.Addr)
	}
	return fmt.Errorf("switchboard exited (%v) before serving; output:\n%s", n.Cmd.ProcessState, Tail(n.Output()))
}

// Output is what the process wrote to stdout and stderr, if Node keeps it.
func (n *Node) Output() string {
	if n.Stdout == nil {
		return "(written to the node's log)"
	}
	return n.Stdout.String() + n.Stderr.String()
}

// Tail keeps the end of long process output.
func Tail(s string) string {
	const keep = 16 << 10
	if len(s) <= keep {
		return s
	}
	return "[...]" + s[len(s)-keep:]
}

// Exited is closed once the process has exited.
func (n *Node) Exited() <-chan struct{} { return n.exited }

// Running reports whether the process has not exited.
func (n *Node) Running() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL unless the process has exited, and waits for it.
func (n *Node) Kill() {
	if n.Running() {
		_ = n.Cmd.Process.Kill()
	}
	<-n.exited
}

// Close kills the process if it runs and closes idle connections.
func (n *Node) Close() {
	n.Kill()
	n.client.CloseIdleConnections()
}

// Stop sends SIGTERM and waits within for the process to exit; it kills a
// process still running then. Anything but a clean exit (0) is an error.
func (n *Node) Stop(within time.Duration) error {
	defer n.client.CloseIdleConnections()
	if n.Running() {
		if err := n.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return fmt.Errorf("nodeproc: SIGTERM: %w", err)
		}
	}
	select {
	case <-n.exited:
	case <-time.After(within):
		n.Kill()
		return fmt.Errorf("switchboard did not exit within %v of SIGTERM; killed it", within)
	}
	if code := n.Cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("switchboard exited with %v after SIGTERM, want a clean exit (0); output:\n%s", n.Cmd.ProcessState, Tail(n.Output()))
	}
	return nil
}

// Reply is a whole HTTP response.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r Reply) String() string { return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body)) }

// Do sends one request. body is nil (none), a string (sent as is), or any
// other value (sent as JSON). A response whose status arrived but whose
// body broke off is returned with the error.
func (n *Node) Do(ctx context.Context, method, path string, body any, header http.Header) (Reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return Reply{}, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.Addr+path, rd)
	if err != nil {
		return Reply{}, err
	}
	if n.token != "" {
		req.Header.Set("Authorization", "Bearer "+n.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json") // the API refuses other bodies (415)
	}
	maps.Copy(req.Header, header)
	resp, err := n.client.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// GetJSON GETs path and decodes a 200 reply into v; anything else is an
// error.
func (n *Node) GetJSON(ctx context.Context, path string, v any) error {
	r, err := n.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("GET %s on %s: %s", path, n.Addr, r)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("GET %s on %s: decoding %s: %w", path, n.Addr, r, err)
	}
	return nil
}

// Member is a member of GET /debug/cluster, the fields the harness reads.
type Member struct {
	Name      string            `json:"name"`
	ID        string            `json:"id"` // the process's actor-system id, new per process
	Pool      string            `json:"pool"`
	Status    string            `json:"status"`
	Local     bool              `json:"local"`
	Addresses map[string]string `json:"addresses"` // gossip, actor, http, sip, dns
}

// ClusterView is GET /debug/cluster.
type ClusterView struct {
	Node    string         `json:"node"`
	Members []Member       `json:"members"`
	Counts  map[string]int `json:"counts"` // members by status
}

// Cluster reads the node's /debug/cluster.
func (n *Node) Cluster(ctx context.Context) (ClusterView, error) {
	var v ClusterView
	return v, n.GetJSON(ctx, "/debug/cluster", &v)
}

// Self is the node's own entry in its /debug/cluster; it has an id and a
// gossip address.
func (n *Node) Self(ctx context.Context) (Member, error) {
	v, err := n.Cluster(ctx)
	if err != nil {
		return Member{}, err
	}
	i := slices.IndexFunc(v.Members, func(m Member) bool { return m.Local })
	if i < 0 || v.Members[i].ID == "" || v.Members[i].Addresses["gossip"] == "" {
		return Member{}, fmt.Errorf("node on %s: /debug/cluster lists no local member with an id and a gossip address: %+v", n.Addr, v.Members)
	}
	return v.Members[i], nil
}

// WaitSettled waits until every node lists exactly alive members as alive
// and none as suspect or draining.
func WaitSettled(ctx context.Context, nodes []*Node, alive int, within time.Duration) error {
	for _, n := range nodes {
		err := Poll(ctx, within, fmt.Sprintf("%s sees %d members alive", n.Addr, alive), func() (bool, string) {
			v, err := n.Cluster(ctx)
			if err != nil {
				return false, err.Error()
			}
			c := v.Counts
			return c["alive"] == alive && c["suspect"] == 0 && c["draining"] == 0, fmt.Sprint(c)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Poll calls cond every PollInterval until it reports true, and returns an
// error with cond's last report if that does not happen within the bound
// or before ctx ends.
func Poll(ctx context.Context, within time.Duration, what string, cond func() (ok bool, state string)) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %v; last seen: %s", what, within, state)
		case <-tick.C:
		}
	}
}
