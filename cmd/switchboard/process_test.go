//go:build unix

// Process tests: they build the real switchboard binary once and run it as
// an operator would, with flags and environment in, and HTTP replies, exit
// codes, output and files on disk out. They cover what no in-process test
// can: signal handling, exit codes, what reaches stdout and stderr, and
// what survives a SIGKILL. (Unix only: they send SIGTERM and SIGKILL.)
//
// The PostgreSQL variants run when SWITCHBOARD_TEST_POSTGRES holds a DSN;
// see postgresDSN.
//
// This file builds the binary and holds what every process test shares:
// nodes started through internal/nodeproc, HTTP helpers and wire shapes.
// The tests live in files named by concern (durability, secrecy, badinput,
// access, demo, cluster, sip, ...).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/internal/syncbuf"
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

// TestMain builds the binary before any test runs, so that no test's
// deadline pays for the build while the parallel tests wait on it, removes
// it at the end, and fails the run if a test left a goroutine behind (an
// HTTP connection or a process waiter).
func TestMain(m *testing.M) {
	build.once.Do(buildBinary)
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
	build.once.Do(buildBinary)
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// buildBinary builds ./cmd/switchboard into a temporary folder.
func buildBinary() {
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
}

// ---- running a node ----

// syncBuffer is written by goroutines while the test reads it.
type syncBuffer = syncbuf.Buffer

// nodeOptions says how to start a node.
type nodeOptions struct {
	args  []string // flags after the --name and --http the harness sets
	env   []string // KEY=VALUE added to the process environment
	bind  string   // host of --http; default 127.0.0.1 (the tests dial 127.0.0.1)
	token string   // bearer token that call sends, if set
}

// proc is one running switchboard node of a test.
type proc struct{ *nodeproc.Node }

// startNode starts `switchboard node` on a free loopback port and waits
// until /healthz answers 200 (see watch for the end of the test).
func startNode(t testing.TB, o nodeOptions) *proc {
	t.Helper()
	n, err := nodeproc.Start(context.Background(), nodeproc.Options{Binary: switchboardBinary(t), Name: "proc-test",
		Bind: o.bind, Args: o.args, Env: o.env, Token: o.token})
	if err != nil {
		t.Fatal(err)
	}
	return watch(t, n)
}

// watch kills n at the end of the test if it still runs, and logs its
// output if the test failed.
func watch(t testing.TB, n *nodeproc.Node) *proc {
	t.Cleanup(func() {
		n.Close()
		if t.Failed() {
			t.Logf("output of %s:\n--- stdout\n%s\n--- stderr\n%s", strings.Join(n.Cmd.Args, " "),
				nodeproc.Tail(n.Stdout.String()), nodeproc.Tail(n.Stderr.String()))
		}
	})
	return &proc{n}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	port, err := nodeproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// stop sends SIGTERM and requires a clean exit (code 0) within the node's
// shutdown bound.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
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
			t.Fatalf("output did not contain %q within %v; it holds:\n%s", want, within, nodeproc.Tail(buf.String()))
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
	cmd.Env = nodeproc.Env(env...)
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
type reply = nodeproc.Reply

// call sends one request and fails the test if no response came back.
// hdr holds header name/value pairs.
func (p *proc) call(t *testing.T, method, path string, body any, hdr ...string) reply {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	r, err := p.Do(context.Background(), method, path, body, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// want fails the test unless r has status code.
func want(t *testing.T, r reply, code int, what string) {
	t.Helper()
	if r.Status != code {
		t.Fatalf("%s: got %s, want %d", what, r, code)
	}
}

func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
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
