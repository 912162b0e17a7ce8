package sipp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultBehaviors is what every run passes as -default_behaviors: all of
// SIPp's default behaviours (a BYE or CANCEL for an aborted call, 200 to
// an unexpected BYE or CANCEL, ...) except aborting a call on an
// unexpected message, which is counted and otherwise ignored.
const DefaultBehaviors = "all,-abortunexp"

// SIPp's exit statuses (sipp -h).
const (
	exitAllSuccessful = 0   // all calls successful
	exitSomeFailed    = 1   // at least one call failed
	exitNoCalls       = 99  // normal exit without calls processed
	exitBind          = 254 // -2: fatal error binding a socket
)

// bindAttempts is how many sets of free ports a run tries before giving
// up: a port found free can be taken by another process before SIPp binds it.
const bindAttempts = 3

// ErrTimeout is returned when a client run hits its global -timeout.
var ErrTimeout = errors.New("sipp: the run hit its global timeout")

// UACOptions set one client run; the zero value places one call.
type UACOptions struct {
	Service  string            // -s: Request-URI and To user (default "service", SIPp's own)
	Domain   string            // -set domain: Request-URI, From and To host (default: the target's host)
	FromUser string            // -set from_user: the From user (default "sipp")
	Vars     map[string]string // -set for the scenario's other <Global> variables, e.g. "expect"

	AuthUser     string // -au: digest user name (default: Service, SIPp's own)
	AuthPassword string // -ap: digest password (default "password", SIPp's own)
	AuthURI      string // -auth_uri: the digest uri is "sip:"+AuthURI (default: the Request-URI, see defaultAuthURI)
	Users        string // -inf: an injection file (WriteUsers) for the *_users scenarios; -auth_uri as with AuthPassword

	Calls       int           // -m: calls to place (default 1)
	Rate        int           // -r: new calls per second (default 10, SIPp's own)
	Limit       int           // -l: most calls open at once (default SIPp's: 3 x rate x call length)
	CallLength  time.Duration // -d: the scenarios' <pause/> (default 0)
	RecvTimeout time.Duration // -recv_timeout: a call fails when what it waits for is this late (default 10 s)
	Timeout     time.Duration // -timeout: the whole run, then it fails (default 30 s + 2 x Calls/Rate + CallLength)

	LocalIP       string   // -i: address SIPp binds and advertises (default 127.0.0.1)
	TraceMessages bool     // -trace_msg: every message into Result.Messages
	Args          []string // more SIPp arguments, placed after the others
}

// defaults used when a UACOptions field is zero.
const (
	defaultFromUser    = "sipp"
	defaultCalls       = 1
	defaultRecvTimeout = 10 * time.Second
	defaultLocalIP     = "127.0.0.1"
	defaultMaxForwards = "70"
	controlIP          = "127.0.0.1" // SIPp's remote-control socket never leaves the host
)

// RunUAC runs a client scenario against target ("host:port") until its
// calls are done and returns their counts. Calls that fail are not an
// error (Result.Failed counts them); an error means SIPp could not run,
// was stopped by ctx, or hit its global timeout (ErrTimeout), and comes
// with whatever Result SIPp left.
func RunUAC(ctx context.Context, scenario Scenario, target string, opts UACOptions) (Result, error) {
	bin, err := Lookup()
	if err != nil {
		return Result{}, err
	}
	path, err := scenario.Path()
	if err != nil {
		return Result{}, err
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return Result{}, fmt.Errorf("sipp: target %q: want host:port: %w", target, err)
	}
	opts.setDefaults(host)
	args, err := opts.args(scenario)
	if err != nil {
		return Result{}, err
	}
	dir, err := os.MkdirTemp("", "sipp-"+scenario.Name()+"-")
	if err != nil {
		return Result{}, fmt.Errorf("sipp: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	var res Result
	for attempt := 1; ; attempt++ {
		files := newRunFiles(dir, attempt)
		base, _, err := baseArgs(path, opts.LocalIP, 0, files)
		if err != nil {
			return Result{}, err
		}
		full := append(append([]string{target}, base...), args...)
		if opts.TraceMessages {
			full = append(full, "-trace_msg", "-message_file", files.messages)
		}
		full = append(full, opts.Args...)

		cmd := command(ctx, bin, dir, full)
		stderr, err := os.Create(files.stderr)
		if err != nil {
			return Result{}, fmt.Errorf("sipp: %w", err)
		}
		cmd.Stdout, cmd.Stderr = io.Discard, stderr
		runErr := cmd.Run()
		_ = stderr.Close()

		res = files.result(cmd, opts.TraceMessages)
		switch {
		case ctx.Err() != nil:
			return res, fmt.Errorf("sipp: %s stopped: %w", scenario.Name(), ctx.Err())
		case res.ExitCode == exitBind && attempt < bindAttempts:
			continue // a port found free was taken meanwhile
		case strings.Contains(res.Output, "timed out after"):
			return res, fmt.Errorf("%w (%s after %s): %s", ErrTimeout, scenario.Name(), opts.Timeout, res)
		case res.ExitCode == exitAllSuccessful, res.ExitCode == exitSomeFailed:
			return res, nil
		case res.ExitCode == exitNoCalls:
			return res, fmt.Errorf("sipp: %s processed no call:\n%s", scenario.Name(), res.Output)
		default:
			return res, fmt.Errorf("sipp: %s: %v:\n%s", scenario.Name(), runErr, res.Output)
		}
	}
}

// setDefaults fills in the zero fields; host is the target's host.
func (o *UACOptions) setDefaults(host string) {
	o.Domain = cmp.Or(o.Domain, host)
	o.FromUser = cmp.Or(o.FromUser, defaultFromUser)
	o.LocalIP = cmp.Or(o.LocalIP, defaultLocalIP)
	if o.Calls <= 0 {
		o.Calls = defaultCalls
	}
	if o.RecvTimeout <= 0 {
		o.RecvTimeout = defaultRecvTimeout
	}
	if o.Timeout <= 0 {
		rate := o.Rate
		if rate <= 0 {
			rate = 10
		}
		o.Timeout = 30*time.Second + 2*time.Duration(o.Calls)*time.Second/time.Duration(rate) + o.CallLength
	}
}

// args turns the options into SIPp arguments for scenario, checking that
// every <Global> the scenario declares is set and nothing else is.
func (o *UACOptions) args(scenario Scenario) ([]string, error) {
	globals, err := scenario.Globals()
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, name := range globals {
		switch name {
		case "domain":
			vars[name] = o.Domain
		case "from_user":
			vars[name] = o.FromUser
		case "max_forwards":
			vars[name] = defaultMaxForwards
		}
	}
	for name, value := range o.Vars {
		if !slices.Contains(globals, name) {
			return nil, fmt.Errorf("sipp: scenario %s declares no variable %q (it has %v): SIPp would refuse -set %s", scenario, name, globals, name)
		}
		vars[name] = value
	}
	var args []string
	for _, name := range globals {
		value, ok := vars[name]
		if !ok {
			return nil, fmt.Errorf("sipp: scenario %s needs -set %s: put it in UACOptions.Vars", scenario, name)
		}
		args = append(args, "-set", name, value)
	}
	if o.Service != "" {
		args = append(args, "-s", o.Service)
	}
	if o.AuthUser != "" {
		args = append(args, "-au", o.AuthUser)
	}
	if o.Users != "" {
		args = append(args, "-inf", o.Users)
	}
	if o.AuthPassword != "" || o.Users != "" {
		if o.AuthPassword != "" {
			args = append(args, "-ap", o.AuthPassword)
		}
		uri := o.AuthURI
		if uri == "" {
			if uri, err = o.defaultAuthURI(scenario); err != nil {
				return nil, err
			}
		}
		args = append(args, "-auth_uri", uri)
	}
	args = append(args,
		"-m", strconv.Itoa(o.Calls),
		"-recv_timeout", strconv.FormatInt(o.RecvTimeout.Milliseconds(), 10),
		"-timeout", strconv.FormatInt(int64((o.Timeout+time.Second-1)/time.Second), 10),
		"-timeout_error",
	)
	if o.Rate > 0 {
		args = append(args, "-r", strconv.Itoa(o.Rate))
	}
	if o.Limit > 0 {
		args = append(args, "-l", strconv.Itoa(o.Limit))
	}
	if o.CallLength > 0 {
		args = append(args, "-d", strconv.FormatInt(o.CallLength.Milliseconds(), 10))
	}
	return args, nil
}

// defaultAuthURI is the Request-URI of the request the scenario
// authenticates, without "sip:" (SIPp adds it): the registrar domain for
// REGISTER, the callee's URI otherwise. RFC 2617 3.2.2 has the digest uri
// repeat the Request-URI; SIPp's own default, its peer's ip:port, would not.
func (o *UACOptions) defaultAuthURI(scenario Scenario) (string, error) {
	registers, err := scenario.registers()
	if err != nil {
		return "", err
	}
	if registers {
		return o.Domain, nil
	}
	return cmp.Or(o.Service, "service") + "@" + o.Domain, nil
}

// runFiles are the files one SIPp run writes into its folder.
type runFiles struct {
	stats, errors, screens, messages, stderr string
}

func newRunFiles(dir string, attempt int) runFiles {
	name := func(s string) string { return filepath.Join(dir, fmt.Sprintf("%d-%s", attempt, s)) }
	return runFiles{
		stats:    name("stats.csv"),
		errors:   name("errors.log"),
		screens:  name("screens.log"),
		messages: name("messages.log"),
		stderr:   name("stderr.log"),
	}
}

// baseArgs are the arguments of every run: the scenario, free ports on ip
// (sipPort when non-zero), the default behaviours, and the files; and the
// SIP port they give.
func baseArgs(scenarioPath, ip string, sipPort int, f runFiles) ([]string, int, error) {
	var err error
	if sipPort == 0 {
		if sipPort, err = freeUDPPort(ip); err != nil {
			return nil, 0, err
		}
	}
	mediaPort, err := freeMediaPort(ip)
	if err != nil {
		return nil, 0, err
	}
	ctrlPort, err := freeUDPPort(controlIP)
	if err != nil {
		return nil, 0, err
	}
	return []string{
		"-sf", scenarioPath,
		"-i", ip, "-p", strconv.Itoa(sipPort), "-bind_local",
		"-mi", ip, "-mp", strconv.Itoa(mediaPort),
		"-ci", controlIP, "-cp", strconv.Itoa(ctrlPort),
		"-nostdin",
		"-default_behaviors", DefaultBehaviors,
		"-trace_stat", "-stf", f.stats, "-fd", "1",
		"-trace_err", "-error_file", f.errors,
		"-trace_screen", "-screen_file", f.screens,
		"-max_log_size", strconv.Itoa(maxLogSize),
	}, sipPort, nil
}

// maxLogSize bounds each of SIPp's logs (errors, messages).
const maxLogSize = 64 << 20

// Limits on what a Result carries of SIPp's files.
const (
	outputTail = 16 << 10
	errorsHead = 16 << 10
)

// result reads what a finished run left.
func (f runFiles) result(cmd *exec.Cmd, withMessages bool) Result {
	var r Result
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
		if r.ExitCode < 0 {
			r.ExitCode = -1 // killed by a signal
		}
	}
	_ = parseStatsFile(f.stats, &r) // a run that died early has no row: zero counts
	stderr, _ := os.ReadFile(f.stderr)
	screens, _ := os.ReadFile(f.screens)
	r.Output = tail(string(stderr), outputTail/2) + tail(string(screens), outputTail/2)
	if b, err := os.ReadFile(f.errors); err == nil {
		r.Errors = head(string(b), errorsHead)
	}
	if withMessages {
		if b, err := os.ReadFile(f.messages); err == nil {
			r.Messages = string(b)
		}
	}
	return r
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n..."
}

// command is SIPp with its arguments, run in dir (SIPp may drop files in
// its working directory). Cancelling ctx interrupts it, which still
// writes its statistics, and kills it five seconds later.
func command(ctx context.Context, bin, dir string, args []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(interruptSignal) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
