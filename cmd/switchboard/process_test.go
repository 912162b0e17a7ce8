//go:build unix

// Process tests: they build the real switchboard binary once and run it as
// an operator would, with flags and environment in, and HTTP replies, exit
// codes, output and files on disk out. They cover what no in-process test
// can: signal handling, exit codes, what reaches stdout and stderr, and
// what survives a SIGKILL. (Unix only: they send SIGTERM and SIGKILL.)
//
// The PostgreSQL variants run when SWITCHBOARD_TEST_POSTGRES holds a DSN;
// see postgresDSN.
package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5" //nolint:gosec // digest HA1 (RFC 7616 3.4.2) is what the node stores
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-pbx/switchboard/internal/syncbuf"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// Sizes of the durability tests.
const (
	deviceCount = 500 // devices provisioned per durability test
	putWorkers  = 8   // concurrent HTTP clients provisioning them
	killAfter   = 250 // acknowledged PUTs before the SIGKILL
)

// zone is the node's default DNS zone; realms are <account>.<zone>.
const zone = "sip.switchboard.test"

// ---- the binary ----

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain removes the binary the tests built and fails the run if a test
// left a goroutine behind (an HTTP connection or a process waiter).
func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// switchboardBinary builds ./cmd/switchboard once per test run with the go
// command on PATH and returns the binary's path. A missing go command fails
// the test: these tests are the only check of the shipped binary.
func switchboardBinary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			build.err = fmt.Errorf("the process tests build the binary with the go command, which is not on PATH: %w", err)
			return
		}
		build.dir, err = os.MkdirTemp("", "switchboard-process-test-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(build.dir, "switchboard")
		// The test runs in the package directory, cmd/switchboard.
		out, err := exec.Command(goTool, "build", "-o", build.path, ".").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build ./cmd/switchboard: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// processEnv is this process's environment without SWITCHBOARD_* variables,
// so that a developer's settings cannot change what a test starts.
func processEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SWITCHBOARD_") })
}

// ---- running a node ----

// syncBuffer is written by goroutines while the test reads it.
type syncBuffer = syncbuf.Buffer

// nodeOptions says how to start a node.
type nodeOptions struct {
	args  []string // flags after the --name and --http the helper sets
	env   []string // KEY=VALUE added to the process environment
	bind  string   // host of --http; default 127.0.0.1 (the tests dial 127.0.0.1)
	token string   // bearer token that call sends, if set
}

// proc is one running switchboard node.
type proc struct {
	cmd    *exec.Cmd
	addr   string // host:port the tests dial
	token  string
	client *http.Client
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{} // closed once the process has exited and its output is copied
}

var errPortTaken = errors.New("HTTP port was taken before the node bound it")

// startNode starts `switchboard node` on a free loopback port and waits
// until /healthz answers 200. The node is killed at the end of the test if
// it still runs; its output is logged if the test failed.
func startNode(t *testing.T, o nodeOptions) *proc {
	t.Helper()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		p, err := launch(t, o)
		if err == nil {
			return p
		}
		if attempt < attempts && errors.Is(err, errPortTaken) {
			t.Logf("attempt %d: %v; retrying on another port", attempt, err)
			continue
		}
		t.Fatal(err)
	}
}

func launch(t *testing.T, o nodeOptions) (*proc, error) {
	t.Helper()
	bin := switchboardBinary(t)
	port := freePort(t)
	args := append([]string{"node", "--name", "proc-test", "--http", net.JoinHostPort(cmp.Or(o.bind, "127.0.0.1"), port),
		"--gossip", "127.0.0.1:0", "--actor", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--dns", "127.0.0.1:0"}, o.args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(processEnv(), o.env...)
	return startProc(t, cmd, net.JoinHostPort("127.0.0.1", port), o.token)
}

// startProc starts cmd, a node serving HTTP on addr, and waits until
// /healthz answers 200 "serving". The process is killed at the end of the
// test if it still runs; its output is logged if the test failed.
func startProc(t *testing.T, cmd *exec.Cmd, addr, token string) (*proc, error) {
	t.Helper()
	p := &proc{
		cmd:    cmd,
		addr:   addr,
		token:  token,
		client: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * putWorkers}},
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	go func() {
		_ = p.cmd.Wait() // the exit status is read from cmd.ProcessState
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		p.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("output of %s:\n--- stdout\n%s\n--- stderr\n%s", strings.Join(cmd.Args, " "),
				tail(p.stdout.String()), tail(p.stderr.String()))
		}
	})
	if err := p.waitServing(30 * time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

// tail keeps the end of long process output.
func tail(s string) string {
	const keep = 16 << 10
	if len(s) <= keep {
		return s
	}
	return "[...]" + s[len(s)-keep:]
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// waitServing polls /healthz until it answers 200 "serving", the process
// exits, or within passes.
func (p *proc) waitServing(within time.Duration) error {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.exited:
			if strings.Contains(p.stderr.String(), "address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, p.addr)
			}
			return fmt.Errorf("switchboard exited (%v) before serving; stderr:\n%s", p.cmd.ProcessState, p.stderr)
		case <-deadline.C:
			return fmt.Errorf("switchboard did not serve /healthz on %s within %v; stderr:\n%s", p.addr, within, p.stderr)
		case <-tick.C:
			if p.serving() {
				return nil
			}
		}
	}
}

func (p *proc) serving() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := p.do(ctx, http.MethodGet, "/healthz", nil, nil)
	if err != nil || r.status != http.StatusOK {
		return false
	}
	var h struct{ Status string }
	return json.Unmarshal(r.body, &h) == nil && h.Status == "serving"
}

// stop sends SIGTERM and requires a clean exit (code 0) within the node's
// shutdown bound.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatal("switchboard did not exit within 30s of SIGTERM; killed it")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("switchboard exited with %v after SIGTERM, want a clean exit (0); stderr:\n%s", p.cmd.ProcessState, tail(p.stderr.String()))
	}
	p.client.CloseIdleConnections()
}

// kill sends SIGKILL unless the process has exited, and waits for it.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// waitOutput polls buf until it holds want: a process's output reaches the
// buffer through a pipe, after the process wrote it.
func waitOutput(t *testing.T, buf *syncBuffer, want string, within time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s := buf.String(); strings.Contains(s, want) {
			return s
		}
		select {
		case <-deadline.C:
			t.Fatalf("output did not contain %q within %v; it holds:\n%s", want, within, tail(buf.String()))
		case <-tick.C:
		}
	}
}

// exitResult is how a process that was expected to end ended.
type exitResult struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

// runToExit runs the binary with args and returns how it exited. A process
// still running after within is killed and fails the test.
func runToExit(t *testing.T, within time.Duration, env []string, args ...string) exitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, switchboardBinary(t), args...)
	cmd.Env = append(processEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := exitResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("switchboard %s was still running after %v; killed it. stderr:\n%s", strings.Join(args, " "), within, res.stderr)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running switchboard: %v", err)
	}
	res.code = cmd.ProcessState.ExitCode()
	return res
}

// ---- HTTP ----

// reply is a whole HTTP response.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// do sends one request. body is nil (none), a string (sent as is), or any
// other value (sent as JSON). A response whose status arrived but whose
// body broke off is returned with the error.
func (p *proc) do(ctx context.Context, method, path string, body any, header http.Header) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.addr+path, rd)
	if err != nil {
		return reply{}, err
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json") // the API refuses other bodies (415)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

// call sends one request and fails the test if no response came back.
// hdr holds header name/value pairs.
func (p *proc) call(t *testing.T, method, path string, body any, hdr ...string) reply {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	r, err := p.do(context.Background(), method, path, body, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// want fails the test unless r has status code.
func want(t *testing.T, r reply, code int, what string) {
	t.Helper()
	if r.status != code {
		t.Fatalf("%s: got %s, want %d", what, r, code)
	}
}

func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
	return v
}

// Wire shapes the tests read.
type (
	accountJSON struct {
		ID      string `json:"id"`
		Version uint64 `json:"version"`
		Groups  int    `json:"groups"`
		Devices int    `json:"devices"`
	}
	groupJSON struct {
		ID      string   `json:"id"`
		Version uint64   `json:"version"`
		Members []string `json:"members"`
	}
	deviceJSON struct {
		ID       string `json:"id"`
		Account  string `json:"account"`
		Group    string `json:"group"`
		Username string `json:"username"`
		Realm    string `json:"realm"`
		Version  uint64 `json:"version"`
	}
	deviceListJSON struct {
		Devices   []deviceJSON `json:"devices"`
		NextAfter string       `json:"next_after"`
	}
	errorJSON struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
)

// ---- stores ----

// storeUnderTest is the store a test's nodes run on, and the account the
// test provisions in it.
type storeUnderTest struct {
	flags   []string // --data DIR or --store DSN
	account string
	dataDir string // the badger folder; "" on PostgreSQL
	dsn     string // "" on badger
}

// stores are the engines every durability and secrecy test runs against.
var stores = []struct {
	name string
	open func(t *testing.T, purpose string) storeUnderTest
}{
	{"badger", badgerStore},
	{"postgres", postgresStore},
}

func badgerStore(t *testing.T, purpose string) storeUnderTest {
	dir := t.TempDir()
	return storeUnderTest{flags: []string{"--data", dir}, account: purpose, dataDir: dir}
}

// postgresStore shares the database's public.switchboard_kv with every
// other user of the DSN, so the test's account id is unique to this run,
// and the account is deleted through the API when the test ends.
func postgresStore(t *testing.T, purpose string) storeUnderTest {
	t.Helper()
	dsn := postgresDSN(t)
	st := storeUnderTest{flags: []string{"--store", dsn}, account: "t-" + purpose + "-" + randomID(), dsn: dsn}
	t.Cleanup(func() {
		n := startNode(t, nodeOptions{args: st.flags})
		if r := n.call(t, http.MethodDelete, "/v1/accounts/"+st.account, nil); r.status != http.StatusNoContent && r.status != http.StatusNotFound {
			t.Errorf("deleting test account %s: %s", st.account, r)
		}
		n.stop(t)
	})
	return st
}

// postgresDSN returns SWITCHBOARD_TEST_POSTGRES. Without it the test is
// skipped, except in CI (CI=true), where a skipped PostgreSQL test would
// hide that the shared store went untested.
func postgresDSN(t *testing.T) string {
	t.Helper()
	if dsn := os.Getenv("SWITCHBOARD_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	const msg = "SWITCHBOARD_TEST_POSTGRES is not set. To run the PostgreSQL process tests: apt-get install postgresql, " +
		"create a database (createdb switchboard_test), and set " +
		"SWITCHBOARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// randomID is 10 random characters valid in an id.
func randomID() string { return strings.ToLower(rand.Text()[:10]) }

// ---- provisioning ----

func devID(i int) string { return fmt.Sprintf("dev-%03d", i) }

func provisionAccountAndGroup(t *testing.T, n *proc, account, group string) {
	t.Helper()
	want(t, n.call(t, http.MethodPut, "/v1/accounts/"+account, map[string]string{"display_name": "Process test"}), http.StatusCreated, "PUT account")
	want(t, n.call(t, http.MethodPut, "/v1/accounts/"+account+"/groups/"+group, map[string]any{"display_name": "Desk phones", "pool": "pool-1", "labels": map[string]string{"site": "test"}}), http.StatusCreated, "PUT group")
}

// putResult is the outcome of one device PUT. status 0: no response.
type putResult struct {
	status  int
	version uint64
	err     error
}

func (r putResult) acked() bool { return r.status == http.StatusCreated || r.status == http.StatusOK }

// putDevices PUTs devices 0..count-1 into group from putWorkers goroutines
// and returns each one's outcome, by index. It stops handing out devices
// once stop is closed (nil: never). onAck, if set, is called after each
// acknowledged PUT.
func putDevices(n *proc, account, group string, count int, stop <-chan struct{}, onAck func()) []putResult {
	results := make([]putResult, count)
	jobs := make(chan int)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		for i := range count {
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	})
	for range putWorkers {
		wg.Go(func() {
			for i := range jobs {
				body := map[string]string{"group": group, "password": "pw-" + devID(i) + "-durable"}
				r, err := n.do(context.Background(), http.MethodPut, "/v1/accounts/"+account+"/devices/"+devID(i), body, nil)
				res := putResult{status: r.status, err: err}
				if res.acked() {
					// The status line is the acknowledgement, even if the
					// body broke off: the node writes it after the store.
					var d deviceJSON
					if json.Unmarshal(r.body, &d) == nil {
						res.version = d.Version
					}
					if onAck != nil {
						onAck()
					}
				}
				results[i] = res
			}
		})
	}
	wg.Wait()
	return results
}

// readDevices GETs each id from putWorkers goroutines and returns the
// devices found. Any answer but 200 and 404 fails the test.
func readDevices(t *testing.T, n *proc, account string, ids []string) map[string]deviceJSON {
	t.Helper()
	replies := make([]reply, len(ids))
	errs := make([]error, len(ids))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range putWorkers {
		wg.Go(func() {
			for i := range jobs {
				replies[i], errs[i] = n.do(context.Background(), http.MethodGet, "/v1/accounts/"+account+"/devices/"+ids[i], nil, nil)
			}
		})
	}
	for i := range ids {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	found := map[string]deviceJSON{}
	for i, r := range replies {
		switch {
		case errs[i] != nil:
			t.Fatalf("GET device %s: %v", ids[i], errs[i])
		case r.status == http.StatusNotFound:
		case r.status != http.StatusOK:
			t.Fatalf("GET device %s: %s", ids[i], r)
		default:
			noSecretFields(t, r)
			found[ids[i]] = decode[deviceJSON](t, r)
		}
	}
	return found
}

// listDevices reads the account's whole device list, 100 a page, and
// checks the paging: full pages until the last, ids rising across pages.
func listDevices(t *testing.T, n *proc, account string) []deviceJSON {
	t.Helper()
	const limit = 100
	var all []deviceJSON
	after := ""
	for page := 1; ; page++ {
		r := n.call(t, http.MethodGet, "/v1/accounts/"+account+"/devices?limit="+strconv.Itoa(limit)+"&after="+url.QueryEscape(after), nil)
		want(t, r, http.StatusOK, "list devices")
		noSecretFields(t, r)
		l := decode[deviceListJSON](t, r)
		for _, d := range l.Devices {
			if len(all) > 0 && d.ID <= all[len(all)-1].ID {
				t.Fatalf("page %d: device %s listed after %s: ids must rise across pages", page, d.ID, all[len(all)-1].ID)
			}
			all = append(all, d)
		}
		if l.NextAfter == "" {
			return all
		}
		if len(l.Devices) != limit || l.NextAfter != l.Devices[len(l.Devices)-1].ID {
			t.Fatalf("page %d: %d devices and next_after %q; a page with a cursor must be full and end at the cursor", page, len(l.Devices), l.NextAfter)
		}
		after = l.NextAfter
	}
}

// noSecretFields fails the test if a device reply names a password or HA1.
func noSecretFields(t *testing.T, r reply) {
	t.Helper()
	lower := bytes.ToLower(r.body)
	for _, w := range []string{"password", "ha1"} {
		if bytes.Contains(lower, []byte(w)) {
			t.Fatalf("reply mentions %q; a device reply never carries credentials: %s", w, r)
		}
	}
}

// checkReadBack compares what a restarted node serves with what was
// acknowledged before it stopped: every acknowledged device is there, at
// its acknowledged version; GET, the paged list, the group's members and
// the account's count agree; and a new write gets a version above every
// earlier one (versions never repeat, even after a crash). It returns the
// ids present.
func checkReadBack(t *testing.T, n *proc, account, group string, attempted []putResult) []string {
	t.Helper()
	ids := make([]string, len(attempted))
	for i := range attempted {
		ids[i] = devID(i)
	}
	got := readDevices(t, n, account, ids)
	var maxVersion uint64
	for i, res := range attempted {
		d, ok := got[ids[i]]
		switch {
		case res.acked() && !ok:
			t.Errorf("device %s was acknowledged (%d, version %d) but is gone after the restart", ids[i], res.status, res.version)
		case res.acked() && res.version != 0 && d.Version != res.version:
			t.Errorf("device %s: version %d after the restart, %d when acknowledged", ids[i], d.Version, res.version)
		}
		if ok && (d.Group != group || d.Account != account || d.Username != ids[i] || d.Realm != account+"."+zone) {
			t.Errorf("device %s after the restart: %+v", ids[i], d)
		}
		maxVersion = max(maxVersion, d.Version, res.version)
	}
	present := make([]string, 0, len(got))
	for id := range got {
		present = append(present, id)
	}
	slices.Sort(present)

	var listed []string
	for _, d := range listDevices(t, n, account) {
		listed = append(listed, d.ID)
	}
	if !slices.Equal(listed, present) {
		t.Errorf("the paged list holds %d devices, GET finds %d: they must agree", len(listed), len(present))
	}
	g := decode[groupJSON](t, n.call(t, http.MethodGet, "/v1/accounts/"+account+"/groups/"+group, nil))
	if !slices.Equal(g.Members, present) {
		t.Errorf("group %s has %d members, the account %d devices: they must agree", group, len(g.Members), len(present))
	}
	a := decode[accountJSON](t, n.call(t, http.MethodGet, "/v1/accounts/"+account, nil))
	if a.Devices != len(present) || a.Groups != 1 {
		t.Errorf("account counts %d devices in %d groups, want %d in 1", a.Devices, a.Groups, len(present))
	}
	maxVersion = max(maxVersion, a.Version, g.Version)

	r := n.call(t, http.MethodPut, "/v1/accounts/"+account+"/devices/after-restart", map[string]string{"group": group, "password": "after-restart-pw"})
	want(t, r, http.StatusCreated, "PUT a device after the restart")
	if v := decode[deviceJSON](t, r).Version; v <= maxVersion {
		t.Errorf("a write after the restart got version %d, not above the %d already used: versions must never repeat", v, maxVersion)
	}
	return present
}

// ---- durability ----

// TestProcess_RestartKeepsEveryDevice provisions 500 devices concurrently,
// stops the node with SIGTERM, and proves a new process on the same store
// serves every one of them, by GET, by the paged list and as group members.
func TestProcess_RestartKeepsEveryDevice(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t, "restart")
			n := startNode(t, nodeOptions{args: st.flags})
			provisionAccountAndGroup(t, n, st.account, "hq")
			results := putDevices(n, st.account, "hq", deviceCount, nil, nil)
			for i, res := range results {
				if res.status != http.StatusCreated {
					t.Fatalf("PUT device %s: status %d, err %v; want 201", devID(i), res.status, res.err)
				}
			}
			n.stop(t)

			n = startNode(t, nodeOptions{args: st.flags})
			present := checkReadBack(t, n, st.account, "hq", results)
			if len(present) != deviceCount {
				t.Errorf("%d devices after the restart, want %d", len(present), deviceCount)
			}
			n.stop(t)
		})
	}
}

// TestProcess_SIGKILLLosesNoAcknowledgedWrite kills the node with SIGKILL
// while eight clients are provisioning devices, and proves every device
// whose PUT was acknowledged (201) is served by the next process: an
// acknowledgement means the write is durable. Writes in flight at the kill
// may or may not have landed, but GET, list and membership must agree on
// which did.
func TestProcess_SIGKILLLosesNoAcknowledgedWrite(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t, "sigkill")
			n := startNode(t, nodeOptions{args: st.flags})
			provisionAccountAndGroup(t, n, st.account, "hq")

			var acked atomic.Int64
			var once sync.Once
			killNow, stopFeeding, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			var results []putResult
			go func() {
				defer close(done)
				results = putDevices(n, st.account, "hq", deviceCount, stopFeeding, func() {
					if acked.Add(1) == killAfter {
						once.Do(func() { close(killNow) })
					}
				})
			}()
			select {
			case <-killNow:
				n.kill()
				close(stopFeeding)
				<-done
			case <-done:
				close(stopFeeding)
				t.Fatalf("all PUTs finished with only %d acknowledged; the kill was due after %d", acked.Load(), killAfter)
			}
			if ws, ok := n.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the node ended with %v, not by SIGKILL", n.cmd.ProcessState)
			}
			var nAcked, nFailed int
			for _, res := range results {
				switch {
				case res.acked():
					nAcked++
				case res.status != 0:
					t.Errorf("a PUT got %d before the kill; only 201 or no answer is expected", res.status)
				case res.err != nil:
					nFailed++
				}
			}
			if nAcked == deviceCount {
				t.Fatal("every PUT was acknowledged: the kill came too late to test anything")
			}
			t.Logf("killed after %d acknowledged PUTs; %d got no answer", nAcked, nFailed)

			n = startNode(t, nodeOptions{args: st.flags})
			present := checkReadBack(t, n, st.account, "hq", results)
			if len(present) < nAcked {
				t.Errorf("%d devices after the restart, fewer than the %d acknowledged", len(present), nAcked)
			}
			n.stop(t)
		})
	}
}

// ---- secrecy ----

// secret is a password a test sends, and the forms of it that must not
// appear where they do not belong.
type secret struct {
	password string
	// token is a random part of the password. The badger store compresses
	// its tables (Snappy), which can turn a repeated prefix such as
	// "pw-LEAKCHECK-" into a back-reference; a random token is stored
	// literally wherever the password is, so scanning for it still finds
	// a leak.
	token string
	// hashes are the HA1 forms (hex, base64) of an accepted password: the
	// store holds the raw HA1, but no reply or log line may show one.
	hashes []string
	// ha1 is the raw MD5 HA1 of an accepted password.
	ha1 []byte
}

func newSecret(label string) secret {
	token := rand.Text()[:16]
	return secret{password: "pw-LEAKCHECK-" + label + "-" + token + "-xyz", token: token}
}

// accept records the HA1 that the node derives for s as device d of account.
func (s *secret) accept(account, device string) {
	in := []byte(device + ":" + account + "." + zone + ":" + s.password)
	m, h := md5.Sum(in), sha256.Sum256(in) //nolint:gosec // see import
	s.ha1 = m[:]
	for _, b := range [][]byte{m[:], h[:]} {
		s.hashes = append(s.hashes, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
			base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b))
	}
}

// leaks returns the forms of any secret that b contains; withHashes adds
// the HA1 forms.
func leaks(b []byte, secrets []secret, withHashes bool) []string {
	var found []string
	for _, s := range secrets {
		forms := []string{s.password, s.token}
		if withHashes {
			forms = append(forms, s.hashes...)
		}
		for _, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				found = append(found, f)
			}
		}
	}
	return found
}

// TestProcess_PasswordNeverLeaks provisions devices with distinctive
// passwords, drives every endpoint that reads or refuses them, and proves
// that neither a password nor its HA1 appears in any HTTP reply (body or
// header) or in the process's debug-level JSON logs, and that no password
// reaches the store (badger's files byte by byte, or PostgreSQL's
// switchboard_kv rows).
func TestProcess_PasswordNeverLeaks(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t, "leak")
			a := "/v1/accounts/" + st.account
			n := startNode(t, nodeOptions{args: append(slices.Clone(st.flags), "--log-format", "json", "--log-level", "debug")})
			var secrets []secret
			var replies []reply
			call := func(method, path string, body any, code int, hdr ...string) reply {
				t.Helper()
				r := n.call(t, method, path, body, hdr...)
				want(t, r, code, method+" "+path)
				replies = append(replies, r)
				return r
			}
			// putDevice PUTs device id with s's password and records s.
			putDevice := func(id, group string, s secret, code int, hdr ...string) {
				t.Helper()
				secrets = append(secrets, s)
				call(http.MethodPut, a+"/devices/"+id, map[string]string{"group": group, "password": s.password}, code, hdr...)
			}

			provisionAccountAndGroup(t, n, st.account, "desk")
			accepted := map[string]secret{} // device id: its current password
			for i := range 3 {
				id := fmt.Sprintf("d%d", i)
				s := newSecret(strconv.Itoa(i))
				s.accept(st.account, id)
				putDevice(id, "desk", s, http.StatusCreated)
				accepted[id] = s
			}
			// A password change, and the refusals that carry a password.
			rotated := newSecret("rotated")
			rotated.accept(st.account, "d0")
			putDevice("d0", "desk", rotated, http.StatusOK)
			accepted["d0"] = rotated
			putDevice("d9", "no-such-group", newSecret("badgroup"), http.StatusBadRequest)
			short := strings.ToLower(rand.Text()[:7]) // under the 8-character minimum
			putDevice("d1", "desk", secret{password: short, token: short}, http.StatusBadRequest)
			putDevice("d1", "desk", newSecret("long-"+strings.Repeat("x", 120)), http.StatusBadRequest)
			putDevice("d2", "desk", newSecret("stale"), http.StatusConflict, "If-Match", `"1"`)
			putDevice("BAD", "desk", newSecret("badid"), http.StatusBadRequest)
			for _, tc := range []struct{ label, format string }{
				{"malformed", `{"group":"desk","password":%q`},
				{"unknown", `{"group":"desk","password":%q,"pin":"1234"}`},
				{"array", `{"group":"desk","password":[%q]}`},
				{"badname", `{"group":"desk","password":%q,"display_name":"a\u0007b"}`},
			} {
				s := newSecret(tc.label)
				secrets = append(secrets, s)
				call(http.MethodPut, a+"/devices/d3", fmt.Sprintf(tc.format, s.password), http.StatusBadRequest)
			}

			// Every read of the devices.
			for id := range accepted {
				call(http.MethodGet, a+"/devices/"+id, nil, http.StatusOK)
			}
			call(http.MethodGet, a+"/devices", nil, http.StatusOK)
			call(http.MethodGet, a+"/devices?group=desk&limit=2", nil, http.StatusOK)
			call(http.MethodGet, a, nil, http.StatusOK)
			call(http.MethodGet, a+"/groups", nil, http.StatusOK)
			call(http.MethodGet, a+"/groups/desk", nil, http.StatusOK)
			call(http.MethodGet, "/debug/actors", nil, http.StatusOK)
			state := call(http.MethodGet, "/debug/actors/account/"+st.account, nil, http.StatusOK)
			if !bytes.Contains(state.body, []byte(`"d2"`)) {
				t.Fatalf("the account's debug state does not show its devices, so this test checks nothing: %s", state)
			}
			call(http.MethodGet, "/debug/actors/devicegroup/"+st.account+"/desk", nil, http.StatusOK)
			call(http.MethodGet, "/metrics", nil, http.StatusOK)

			for _, r := range replies {
				var hdr bytes.Buffer
				_ = r.header.Write(&hdr)
				if found := leaks(append(hdr.Bytes(), r.body...), secrets, true); len(found) > 0 {
					t.Errorf("reply leaks %q:\n%s\n%s", found, hdr.Bytes(), r.body)
				}
			}

			if st.dsn != "" {
				checkPostgresRows(t, st.dsn, secrets, accepted)
			}
			n.stop(t)
			out := n.stdout.String() + n.stderr.String()
			if !strings.Contains(out, `"msg":"node serving"`) {
				t.Fatalf("no JSON log line \"node serving\" in the output, so the log check checks nothing:\n%s", tail(out))
			}
			if found := leaks([]byte(out), secrets, true); len(found) > 0 {
				t.Errorf("the process output leaks %q", found)
			}
			if st.dataDir != "" {
				checkBadgerFiles(t, st.dataDir, secrets, accepted)
			}
		})
	}
}

// checkBadgerFiles reads every file under dir and fails the test if one
// holds a password. As a control, each accepted device's raw HA1 must be
// found: it proves the scan reads the files where records live.
func checkBadgerFiles(t *testing.T, dir string, secrets []secret, accepted map[string]secret) {
	t.Helper()
	var all [][]byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if found := leaks(b, secrets, false); len(found) > 0 {
			t.Errorf("store file %s holds %q", path, found)
		}
		all = append(all, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range accepted {
		if !slices.ContainsFunc(all, func(b []byte) bool { return bytes.Contains(b, s.ha1) }) {
			t.Errorf("no file under %s holds the HA1 of device %s, so the scan may be reading the wrong files", dir, id)
		}
	}
}

// checkPostgresRows reads every row of the store's table (through the
// persistence package, pgx's one home; values come back as stored), and fails the test if a key or value holds a password.
// As a control, each accepted device's raw HA1 must be found.
func checkPostgresRows(t *testing.T, dsn string, secrets []secret, accepted map[string]secret) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := persistence.OpenPostgres(ctx, dsn, persistence.DefaultPostgresConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	items, err := persistence.ScanAll(ctx, store, "")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	n := len(items)
	for _, it := range items {
		key, value := it.Key, it.Value
		if l := leaks(append([]byte(key), value...), secrets, false); len(l) > 0 {
			t.Errorf("row %q holds %q", key, l)
		}
		for id, s := range accepted {
			if bytes.Contains(value, s.ha1) {
				found[id] = true
			}
		}
	}
	for id := range accepted {
		if !found[id] {
			t.Errorf("no row of %d holds the HA1 of device %s, so the scan may be reading the wrong table", n, id)
		}
	}
}

// ---- input validation ----

// TestProcess_BadInput sends malformed, unknown, invalid, missing and
// conflicting input to a node with one account, group and device, and
// proves each is refused with the right status and a JSON error naming the
// field at fault, and that none of them changed anything.
func TestProcess_BadInput(t *testing.T) {
	n := startNode(t, nodeOptions{args: []string{"--data", t.TempDir()}})
	const a = "/v1/accounts/acme"
	// Each resource is written twice, so that its first version is stale.
	stale := map[string]string{}
	for _, w := range []struct {
		name, path    string
		first, second any
	}{
		{"account", a, map[string]string{"display_name": "Acme"}, map[string]string{"display_name": "Acme Corp"}},
		{"group", a + "/groups/hq", map[string]string{"display_name": "HQ"}, map[string]string{"display_name": "Headquarters"}},
		{"device", a + "/devices/phone1", map[string]string{"group": "hq", "password": "first-password"}, map[string]string{"group": "hq", "display_name": "Desk"}},
	} {
		r := n.call(t, http.MethodPut, w.path, w.first)
		want(t, r, http.StatusCreated, "PUT "+w.name)
		stale[w.name] = strconv.Quote(strconv.FormatUint(decode[struct{ Version uint64 }](t, r).Version, 10))
		want(t, n.call(t, http.MethodPut, w.path, w.second), http.StatusOK, "PUT "+w.name+" again")
	}
	reads := []string{a, a + "/groups", a + "/groups/hq", a + "/devices/phone1", a + "/devices"}
	snapshot := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, p := range reads {
			r := n.call(t, http.MethodGet, p, nil)
			want(t, r, http.StatusOK, "GET "+p)
			out[p] = string(r.body) + "ETag: " + r.header.Get("ETag")
		}
		return out
	}
	before := snapshot()

	id64 := strings.Repeat("a", 64)
	cases := []struct {
		name      string
		method    string
		path      string
		ifMatch   string
		body      any
		wantCode  int
		wantField string
	}{
		// Malformed JSON.
		{"truncated JSON", http.MethodPut, a, "", `{"display_name":`, 400, "body"},
		{"JSON syntax error", http.MethodPut, a + "/devices/phone1", "", `{"group": hq, "password": "long-enough"}`, 400, "body"},
		{"two JSON objects", http.MethodPut, a, "", `{"display_name":"x"} {"display_name":"y"}`, 400, "body"},
		{"body over 1 MiB", http.MethodPut, a, "", `{"display_name":"` + strings.Repeat("x", 1<<20) + `"}`, 400, "body"},
		{"array where an object is due", http.MethodPut, a + "/groups/hq", "", `{"labels":["site"]}`, 400, "labels"},
		{"number where a string is due", http.MethodPut, a, "", `{"display_name":5}`, 400, "display_name"},
		// Unknown fields.
		{"unknown account field", http.MethodPut, a, "", `{"displayname":"x"}`, 400, "displayname"},
		{"unknown group field", http.MethodPut, a + "/groups/hq", "", `{"display_name":"x","colour":"red"}`, 400, "colour"},
		{"unknown device field", http.MethodPut, a + "/devices/phone1", "", `{"group":"hq","password":"long-enough","pin":"1234"}`, 400, "pin"},
		// Ids outside [a-z0-9][a-z0-9._-]{0,62}.
		{"uppercase account id", http.MethodPut, "/v1/accounts/Acme", "", `{}`, 400, "account"},
		{"account id with a leading dash", http.MethodPut, "/v1/accounts/-acme", "", `{}`, 400, "account"},
		{"account id of 64 characters", http.MethodPut, "/v1/accounts/" + id64, "", `{}`, 400, "account"},
		{"account id of 63 characters is valid, and absent", http.MethodGet, "/v1/accounts/" + id64[1:], "", nil, 404, "account"},
		{"unicode account id", http.MethodPut, "/v1/accounts/" + url.PathEscape("acmé"), "", `{}`, 400, "account"},
		{"uppercase group id", http.MethodPut, a + "/groups/HQ", "", `{}`, 400, "group"},
		{"group id with a leading dot", http.MethodPut, a + "/groups/.hq", "", `{}`, 400, "group"},
		{"device id of 64 characters", http.MethodPut, a + "/devices/" + id64, "", `{"group":"hq","password":"long-enough"}`, 400, "device"},
		{"unicode device id", http.MethodPut, a + "/devices/" + url.PathEscape("phöne"), "", `{"group":"hq","password":"long-enough"}`, 400, "device"},
		{"invalid group id in the body", http.MethodPut, a + "/devices/phone1", "", `{"group":"HQ"}`, 400, "group"},
		{"invalid pool id", http.MethodPut, a + "/groups/hq", "", `{"pool":"Pool 1"}`, 400, "pool"},
		{"invalid label key", http.MethodPut, a + "/groups/hq", "", `{"labels":{"Bad Key":"v"}}`, 400, "labels"},
		{"control character in display name", http.MethodPut, a, "", `{"display_name":"a\u0007b"}`, 400, "display_name"},
		{"display name over 200 characters", http.MethodPut, a, "", `{"display_name":"` + strings.Repeat("é", 201) + `"}`, 400, "display_name"},
		{"invalid group filter", http.MethodGet, a + "/devices?group=HQ", "", nil, 400, "group"},
		{"list limit 0", http.MethodGet, a + "/devices?limit=0", "", nil, 400, "limit"},
		{"list limit 1001", http.MethodGet, a + "/devices?limit=1001", "", nil, 400, "limit"},
		{"invalid If-Match", http.MethodPut, a, "abc", `{}`, 400, "If-Match"},
		{"If-Match 0", http.MethodPut, a, `"0"`, `{}`, 400, "If-Match"},
		{"unknown actor kind", http.MethodGet, "/debug/actors/nosuch/x", "", nil, 400, "kind"},
		// Missing groups and bad passwords.
		{"new device in a missing group", http.MethodPut, a + "/devices/phone2", "", `{"group":"nope","password":"long-enough"}`, 400, "group"},
		{"device moved to a missing group", http.MethodPut, a + "/devices/phone1", "", `{"group":"nope"}`, 400, "group"},
		{"device without a group", http.MethodPut, a + "/devices/phone2", "", `{"password":"long-enough"}`, 400, "group"},
		{"new device without a password", http.MethodPut, a + "/devices/phone2", "", `{"group":"hq"}`, 400, "password"},
		{"password of 7 characters", http.MethodPut, a + "/devices/phone1", "", `{"group":"hq","password":"seven77"}`, 400, "password"},
		{"password of 129 characters", http.MethodPut, a + "/devices/phone1", "", `{"group":"hq","password":"` + strings.Repeat("p", 129) + `"}`, 400, "password"},
		{"password not a string", http.MethodPut, a + "/devices/phone1", "", `{"group":"hq","password":12345678}`, 400, "password"},
		// Unknown resources.
		{"unknown account", http.MethodGet, "/v1/accounts/nosuch", "", nil, 404, "account"},
		{"group in an unknown account", http.MethodPut, "/v1/accounts/nosuch/groups/hq", "", `{}`, 404, "account"},
		{"unknown group", http.MethodGet, a + "/groups/nosuch", "", nil, 404, "group"},
		{"list of an unknown group", http.MethodGet, a + "/devices?group=nosuch", "", nil, 404, "group"},
		{"unknown device", http.MethodGet, a + "/devices/nosuch", "", nil, 404, "device"},
		{"delete of an unknown device", http.MethodDelete, a + "/devices/nosuch", "", nil, 404, "device"},
		{"unknown route", http.MethodGet, "/v1/nothing", "", nil, 404, ""},
		{"method not allowed", http.MethodPost, a, "", `{}`, 405, ""},
		// Version conflicts.
		{"stale account version", http.MethodPut, a, stale["account"], `{"display_name":"x"}`, 409, "version"},
		{"stale group version", http.MethodPut, a + "/groups/hq", stale["group"], `{"display_name":"x"}`, 409, "version"},
		{"stale device version", http.MethodPut, a + "/devices/phone1", stale["device"], `{"group":"hq","password":"new-password"}`, 409, "version"},
		{"delete at a stale device version", http.MethodDelete, a + "/devices/phone1", stale["device"], nil, 409, "version"},
		{"delete at a stale account version", http.MethodDelete, a, stale["account"], nil, 409, "version"},
		{"If-Match on an account that does not exist", http.MethodPut, "/v1/accounts/newacct", `"5"`, `{}`, 409, "version"},
		{"delete of a group with devices", http.MethodDelete, a + "/groups/hq", "", nil, 409, "group"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.ifMatch != "" {
				hdr = []string{"If-Match", tc.ifMatch}
			}
			r := n.call(t, tc.method, tc.path, tc.body, hdr...)
			want(t, r, tc.wantCode, tc.method+" "+tc.path)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			e := decode[errorJSON](t, r)
			if e.Error == "" || e.Field != tc.wantField {
				t.Errorf("error body %s: want a message and field %q", r.body, tc.wantField)
			}
		})
	}

	after := snapshot()
	for _, p := range reads {
		if before[p] != after[p] {
			t.Errorf("GET %s changed:\nbefore: %s\nafter:  %s", p, before[p], after[p])
		}
	}
	for _, p := range []string{"/v1/accounts/nosuch", "/v1/accounts/newacct", a + "/devices/phone2"} {
		want(t, n.call(t, http.MethodGet, p, nil), http.StatusNotFound, "GET "+p+" after the bad input")
	}
}

// ---- access ----

// TestProcess_AdminToken proves that with an admin token the provisioning
// and debug endpoints demand it as a bearer token (RFC 6750 2.1) while
// /healthz and /metrics stay open, that a flag beats the environment, that
// a node refuses a non-loopback address without a token, and that
// SWITCHBOARD_ADMIN_TOKEN alone is enough to start one there.
func TestProcess_AdminToken(t *testing.T) {
	token, envToken := rand.Text(), rand.Text()
	n := startNode(t, nodeOptions{
		args: []string{"--data", t.TempDir(), "--admin-token", token},
		env:  []string{"SWITCHBOARD_ADMIN_TOKEN=" + envToken},
	})
	// Run in order: the refused PUT comes before the accepted one.
	for _, tc := range []struct {
		name   string
		method string
		path   string
		auth   string
		want   int
	}{
		{"provisioning without a token", http.MethodGet, "/v1/accounts/x", "", 401},
		{"write without a token", http.MethodPut, "/v1/accounts/x", "", 401},
		{"wrong token", http.MethodGet, "/v1/accounts/x", "Bearer wrong-" + token, 401},
		{"token without the Bearer scheme", http.MethodGet, "/v1/accounts/x", token, 401},
		{"environment token when the flag is set", http.MethodGet, "/v1/accounts/x", "Bearer " + envToken, 401},
		{"debug without a token", http.MethodGet, "/debug/actors", "", 401},
		{"pprof without a token", http.MethodGet, "/debug/pprof/", "", 401},
		{"healthz stays open", http.MethodGet, "/healthz", "", 200},
		{"metrics stay open", http.MethodGet, "/metrics", "", 200},
		{"the refused write changed nothing", http.MethodGet, "/v1/accounts/x", "Bearer " + token, 404},
		{"write with the token", http.MethodPut, "/v1/accounts/x", "Bearer " + token, 201},
		{"read with the token", http.MethodGet, "/v1/accounts/x", "Bearer " + token, 200},
		{"debug with the token", http.MethodGet, "/debug/actors", "Bearer " + token, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			r := n.call(t, tc.method, tc.path, nil, hdr...)
			want(t, r, tc.want, tc.method+" "+tc.path)
			if tc.want != http.StatusUnauthorized {
				return
			}
			if e := decode[errorJSON](t, r); e.Error == "" || e.Field != "Authorization" {
				t.Errorf("401 body %s: want a JSON error on field Authorization", r.body)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a WWW-Authenticate: Bearer challenge (RFC 6750 3): %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	n.stop(t)

	t.Run("non-loopback without a token is refused", func(t *testing.T) {
		res := runToExit(t, 20*time.Second, nil, "node", "--name", "open", "--http", "0.0.0.0:"+freePort(t), "--data", t.TempDir(), "--gossip", "127.0.0.1:0", "--actor", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--dns", "127.0.0.1:0")
		if res.code == 0 {
			t.Fatalf("exited 0; want a refusal. stderr:\n%s", res.stderr)
		}
		if !strings.Contains(res.stderr, "admin token") || !strings.Contains(res.stderr, "--admin-token") {
			t.Errorf("stderr does not say that an admin token (--admin-token) is needed:\n%s", res.stderr)
		}
	})

	t.Run("non-loopback with SWITCHBOARD_ADMIN_TOKEN starts", func(t *testing.T) {
		n := startNode(t, nodeOptions{bind: "0.0.0.0", args: []string{"--data", t.TempDir()}, env: []string{"SWITCHBOARD_ADMIN_TOKEN=" + envToken}})
		want(t, n.call(t, http.MethodGet, "/v1/accounts/x", nil), http.StatusUnauthorized, "GET without a token")
		want(t, n.call(t, http.MethodGet, "/v1/accounts/x", nil, "Authorization", "Bearer "+envToken), http.StatusNotFound, "GET with the environment's token")
		n.stop(t)
	})
}

// TestProcess_UnreachablePostgres proves that a node whose PostgreSQL does
// not answer exits non-zero at once, names the address it tried, and never
// prints the DSN's password, whether the DSN came by flag or environment.
func TestProcess_UnreachablePostgres(t *testing.T) {
	port := freePort(t) // closed: nothing listens there
	dsn := "postgres://sb:hunter2-secret@127.0.0.1:" + port + "/x"
	for _, tc := range []struct {
		name string
		args []string
		env  []string
	}{
		{"flag", []string{"--store", dsn}, nil},
		{"environment", nil, []string{"SWITCHBOARD_STORE=" + dsn}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"node", "--name", "nopg", "--http", "127.0.0.1:" + freePort(t), "--gossip", "127.0.0.1:0", "--actor", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--dns", "127.0.0.1:0"}, tc.args...)
			res := runToExit(t, 30*time.Second, tc.env, args...)
			if res.code == 0 {
				t.Fatalf("exited 0 without its store; stderr:\n%s", res.stderr)
			}
			// The connect timeout is 5s; a refused connection needs none of it.
			if res.elapsed > 10*time.Second {
				t.Errorf("took %v to give up on a closed port", res.elapsed)
			}
			if !strings.Contains(res.stderr, "127.0.0.1:"+port) {
				t.Errorf("stderr does not name 127.0.0.1:%s:\n%s", port, res.stderr)
			}
			if strings.Contains(res.stdout+res.stderr, "hunter2") {
				t.Errorf("output shows the DSN's password:\n%s\n%s", res.stdout, res.stderr)
			}
		})
	}
}

// TestProcess_Demo proves --demo prints working credentials for alice and
// bob of account acme, and provisions them so the API lists them.
func TestProcess_Demo(t *testing.T) {
	data := t.TempDir()
	n := startNode(t, nodeOptions{args: []string{"--data", data, "--demo"}})
	out := waitOutput(t, n.stdout, "bob-demo-1234", 10*time.Second)
	for _, d := range []struct{ id, password string }{{"alice", "alice-demo-1234"}, {"bob", "bob-demo-1234"}} {
		line := regexp.MustCompile(`device\s+` + d.id + `\s+username\s+` + d.id + `\s+password\s+` + regexp.QuoteMeta(d.password) + `\n`)
		if !line.MatchString(out) {
			t.Errorf("stdout has no credentials line for %s with password %s:\n%s", d.id, d.password, out)
		}
	}
	if !strings.Contains(out, "acme."+zone) {
		t.Errorf("stdout does not name the realm acme.%s:\n%s", zone, out)
	}
	r := n.call(t, http.MethodGet, "/v1/accounts/acme/devices", nil)
	want(t, r, http.StatusOK, "list the demo devices")
	noSecretFields(t, r)
	var ids []string
	for _, d := range decode[deviceListJSON](t, r).Devices {
		ids = append(ids, d.ID)
		if d.Group != "hq" || d.Username != d.ID || d.Realm != "acme."+zone {
			t.Errorf("demo device %+v", d)
		}
	}
	if !slices.Equal(ids, []string{"alice", "bob"}) {
		t.Errorf("demo devices %v, want [alice bob]", ids)
	}
	// The user's edit survives a restart with --demo: the demo account is
	// created once, never reset.
	want(t, n.call(t, http.MethodPut, "/v1/accounts/acme", map[string]string{"display_name": "Mine"}), http.StatusOK, "rename acme")
	n.stop(t)
	if strings.Contains(n.stderr.String(), "demo-1234") {
		t.Errorf("the logs show a demo password; only the stdout banner may:\n%s", n.stderr)
	}
	again := startNode(t, nodeOptions{args: []string{"--data", data, "--demo"}})
	waitOutput(t, again.stdout, "exists already and was left as it is", 30*time.Second)
	r = again.call(t, http.MethodGet, "/v1/accounts/acme", nil)
	if a := decode[struct {
		DisplayName string `json:"display_name"`
	}](t, r); a.DisplayName != "Mine" {
		t.Errorf("a restart with --demo reset the demo account: %s", r)
	}
	again.stop(t)
}
