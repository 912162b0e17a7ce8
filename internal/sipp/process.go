package sipp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Process is a SIPp scenario running in the background as a server,
// started by Start or StartUAS. Its methods are safe for concurrent use.
type Process struct {
	Addr string // "ip:port" where it listens for SIP over UDP

	scenario Scenario
	dir      string
	files    runFiles
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited

	stopOnce sync.Once
	result   Result
	stopErr  error
}

// How long Start waits for SIPp to bind its port, and how long Stop
// waits after each of its signals.
const (
	bindTimeout   = 15 * time.Second
	softStopGrace = 2 * time.Second
	interruptWait = 5 * time.Second
	bindPoll      = 20 * time.Millisecond
)

// ErrExited is returned by Start when SIPp exits before it binds its port.
var ErrExited = errors.New("sipp: the server exited before it was listening")

// StartUAS starts scenario as a server listening on listenAddr (an
// "ip:port"; port 0 picks a free one, see Process.Addr), with more SIPp
// arguments after the usual ones, and returns once its port is bound. It
// is stopped when the test ends (Stop may be called earlier, to read its
// counts); when the test failed, its output is logged. Without sipp the
// test is skipped, or fails under CI=true (see Require).
func StartUAS(tb testing.TB, scenario Scenario, listenAddr string, args ...string) *Process {
	tb.Helper()
	Require(tb)
	p, err := Start(context.Background(), scenario, listenAddr, args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		res, err := p.Stop()
		if err != nil {
			tb.Errorf("stopping the SIPp server %s on %s: %v", scenario.Name(), p.Addr, err)
		}
		if tb.Failed() {
			tb.Logf("SIPp server %s on %s: %s\n%s\n%s", scenario.Name(), p.Addr, res, res.Output, res.Errors)
		}
	})
	return p
}

// Start starts scenario as a server listening on listenAddr ("ip:port";
// port 0 picks a free one), with more SIPp arguments after the usual
// ones, and returns once its port is bound. It runs until Stop, or until
// ctx ends (then it is interrupted); the caller must call Stop either way.
func Start(ctx context.Context, scenario Scenario, listenAddr string, args ...string) (*Process, error) {
	bin, err := Lookup()
	if err != nil {
		return nil, err
	}
	path, err := scenario.Path()
	if err != nil {
		return nil, err
	}
	ip, portText, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return nil, fmt.Errorf("sipp: listen address %q: want ip:port: %w", listenAddr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("sipp: listen address %q: %w", listenAddr, err)
	}
	dir, err := os.MkdirTemp("", "sipp-"+scenario.Name()+"-")
	if err != nil {
		return nil, fmt.Errorf("sipp: %w", err)
	}
	for attempt := 1; ; attempt++ {
		p, err := start(ctx, bin, path, scenario, dir, attempt, ip, port, args)
		if err == nil {
			return p, nil
		}
		var bindErr *bindError
		if errors.As(err, &bindErr) && port == 0 && attempt < bindAttempts {
			continue // the free port was taken meanwhile: another one
		}
		_ = os.RemoveAll(dir)
		return nil, err
	}
}

// bindError is a server that exited with SIPp's bind failure status.
type bindError struct{ err error }

func (e *bindError) Error() string { return e.err.Error() }
func (e *bindError) Unwrap() error { return e.err }

func start(ctx context.Context, bin, path string, scenario Scenario, dir string, attempt int, ip string, port int, args []string) (*Process, error) {
	files := newRunFiles(dir, attempt)
	base, port, err := baseArgs(path, ip, port, files)
	if err != nil {
		return nil, err
	}
	stderr, err := os.Create(files.stderr)
	if err != nil {
		return nil, fmt.Errorf("sipp: %w", err)
	}
	defer func() { _ = stderr.Close() }() // the child has its own copy
	cmd := command(ctx, bin, dir, append(base, args...))
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sipp: starting %s: %w", scenario.Name(), err)
	}
	p := &Process{
		Addr:     net.JoinHostPort(ip, strconv.Itoa(port)),
		scenario: scenario,
		dir:      dir,
		files:    files,
		cmd:      cmd,
		done:     make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait() // the exit status is read from cmd.ProcessState
		close(p.done)
	}()

	deadline := time.NewTimer(bindTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(bindPoll)
	defer tick.Stop()
	for !udpBound(ip, port) {
		select {
		case <-p.done:
			res := files.result(cmd, false)
			err := fmt.Errorf("%w: %s on %s, exit %d:\n%s", ErrExited, scenario.Name(), p.Addr, res.ExitCode, res.Output)
			if res.ExitCode == exitBind {
				return nil, &bindError{err}
			}
			return nil, err
		case <-deadline.C:
			p.kill()
			return nil, fmt.Errorf("sipp: %s did not bind %s within %s", scenario.Name(), p.Addr, bindTimeout)
		case <-tick.C:
		}
	}
	return p, nil
}

// Stats returns the server's counts as of its last statistics dump (SIPp
// writes one a second) without stopping it.
func (p *Process) Stats() (Result, error) {
	var r Result
	if err := parseStatsFile(p.files.stats, &r); err != nil {
		return Result{}, fmt.Errorf("sipp: %s statistics: %w", p.scenario.Name(), err)
	}
	return r, nil
}

// Stop stops the server and returns its final counts: it asks SIPp to
// finish its open calls, interrupts it after two seconds (a call waiting
// for a message that never comes would keep it forever) and kills it five
// seconds after that. It may be called more than once.
func (p *Process) Stop() (Result, error) {
	p.stopOnce.Do(func() {
		if !p.exited() {
			_ = p.cmd.Process.Signal(softStopSignal)
			if !p.waitExit(softStopGrace) {
				_ = p.cmd.Process.Signal(interruptSignal)
				if !p.waitExit(interruptWait) {
					p.kill()
				}
			}
		}
		p.result = p.files.result(p.cmd, false)
		if err := parseStatsFile(p.files.stats, &p.result); err != nil {
			p.stopErr = fmt.Errorf("sipp: %s on %s left no statistics (exit %d): %w\n%s", p.scenario.Name(), p.Addr, p.result.ExitCode, err, p.result.Output)
		}
		_ = os.RemoveAll(p.dir)
	})
	return p.result, p.stopErr
}

func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Process) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

func (p *Process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func parseStatsFile(path string, r *Result) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return parseStats(string(b), r)
}
