// Command sip is make bench-sip: the SIP proxying throughput of one
// Switchboard node beside Kamailio's, measured by the same SIPp client.
//
// Each proxy forwards to SIPp servers of its own: initial INVITEs to one
// running testdata/sipp/uas.xml, MESSAGEs to one running uas_message.xml.
// For each method the SIPp client runs the same scenario (uac_invite.xml
// with a short call, or uac_message.xml) with the same flags through both
// proxies, at stepped rates (-r) for a fixed time per step (-m = rate x
// step), alternating which proxy goes first so that the machine's noise
// hits both alike. A step passes when every call succeeded and SIPp kept
// 90% of the asked rate; a proxy's figure is the highest rate it passed
// before its first failing step. The table ends with switchboard/kamailio
// per method (the goal is at least 1.0).
//
// Kamailio 5.6 runs bench/sip/kamailio.cfg: tm stateful proxy, record-route,
// four UDP workers, no database and no digest (the Switchboard side trusts
// the client through a trunk on 127.0.0.1/32). The Switchboard node is
// started with --sip and provisioned over HTTP (account acme, trunk bench,
// feature servers voicemail and sms, routes INVITE -> voicemail and
// MESSAGE -> sms, and a fraud policy whose volume thresholds sit above the
// ladder: every request is still scored by the account's messaging
// supervisor); both proxies get Request-URIs sip:bench@acme.sip.switchboard.test.
//
// With --pprof DIR, the Switchboard node's CPU is profiled for 10 s while
// the client runs again at its top rate, the profile saved in DIR and
// summarized with go tool pprof -top.
//
//	apt-get install sip-tester kamailio
//	make bench-sip                       # builds bin/switchboard first
//	go run ./bench/sip --proxies kamailio --rates 200,400,800
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// Config is what the flags fill.
type Config struct {
	Switchboard string        // the switchboard binary (make bench-sip: ./bin/switchboard)
	Kamailio    string        // the kamailio binary
	KamailioCfg string        // the Kamailio configuration
	Proxies     []string      // which proxies to measure: kamailio, switchboard
	Methods     []string      // INVITE, MESSAGE
	Rates       []int         // the rate ladder, calls per second, ascending
	Step        time.Duration // how long each step offers its rate
	CallLength  time.Duration // INVITE calls: the pause between ACK and BYE
	RecvTimeout time.Duration // a call fails when an answer is this late
	MinRate     float64       // a step fails when SIPp achieved less than this share of its rate
	Pprof       string        // folder for the Switchboard CPU profiles; empty: none
	Domain      string        // Request-URI host, the account's DNS name
	User        string        // Request-URI user
	Keep        bool          // keep the work folder (logs) after the run
}

// DefaultConfig is the run make bench-sip does.
func DefaultConfig() Config {
	return Config{
		Switchboard: "./bin/switchboard",
		Kamailio:    "kamailio",
		KamailioCfg: "bench/sip/kamailio.cfg",
		Proxies:     []string{proxyKamailio, proxySwitchboard},
		Methods:     []string{"INVITE", "MESSAGE"},
		// Doubling, then finer steps where a 2-core machine tops out.
		Rates:       []int{100, 200, 400, 800, 1200, 1600, 2000, 2400, 3200, 4000},
		Step:        5 * time.Second,
		CallLength:  0, // ACK then BYE at once: signalling only
		RecvTimeout: 5 * time.Second,
		MinRate:     0.9,
		Domain:      "acme.sip.switchboard.test",
		User:        "bench",
	}
}

// Validate checks the configuration before anything starts.
func (c Config) Validate() error {
	if len(c.Proxies) == 0 {
		return errors.New("--proxies: name at least one of kamailio, switchboard")
	}
	for _, p := range c.Proxies {
		if p != proxyKamailio && p != proxySwitchboard {
			return fmt.Errorf("--proxies: unknown proxy %q (kamailio, switchboard)", p)
		}
	}
	for _, m := range c.Methods {
		if _, ok := scenarios[m]; !ok {
			return fmt.Errorf("--methods: unknown method %q (INVITE, MESSAGE)", m)
		}
	}
	if len(c.Rates) == 0 || !slices.IsSorted(c.Rates) || c.Rates[0] <= 0 {
		return errors.New("--rates: give positive rates in ascending order")
	}
	if c.Step < time.Second {
		return errors.New("--step: at least 1s")
	}
	if c.MinRate <= 0 || c.MinRate > 1 {
		return errors.New("--min-rate: a share from 0 to 1")
	}
	return nil
}

const (
	proxyKamailio    = "kamailio"
	proxySwitchboard = "switchboard"
)

// scenarios maps a method to its client scenario and the server scenario
// its feature server runs.
var scenarios = map[string]struct{ uac, uas sipp.Scenario }{
	"INVITE":  {sipp.UACInvite, sipp.UAS},
	"MESSAGE": {sipp.UACMessage, sipp.UASMessage},
}

func main() {
	cfg := DefaultConfig()
	var proxies, methods, rates string
	flag.StringVar(&cfg.Switchboard, "switchboard", cfg.Switchboard, "switchboard binary")
	flag.StringVar(&cfg.Kamailio, "kamailio", cfg.Kamailio, "kamailio binary")
	flag.StringVar(&cfg.KamailioCfg, "kamailio-cfg", cfg.KamailioCfg, "Kamailio configuration")
	flag.StringVar(&proxies, "proxies", strings.Join(cfg.Proxies, ","), "proxies to measure: kamailio, switchboard")
	flag.StringVar(&methods, "methods", strings.Join(cfg.Methods, ","), "methods to measure: INVITE, MESSAGE")
	flag.StringVar(&rates, "rates", joinInts(cfg.Rates), "rate ladder, calls per second, ascending")
	flag.DurationVar(&cfg.Step, "step", cfg.Step, "how long each step offers its rate")
	flag.DurationVar(&cfg.CallLength, "call-length", cfg.CallLength, "INVITE calls: pause between ACK and BYE")
	flag.DurationVar(&cfg.RecvTimeout, "recv-timeout", cfg.RecvTimeout, "a call fails when an answer is this late")
	flag.Float64Var(&cfg.MinRate, "min-rate", cfg.MinRate, "a step fails when SIPp achieved less than this share of its rate")
	flag.StringVar(&cfg.Pprof, "pprof", "", "save a 10 s CPU profile of the Switchboard node at its top rate into this folder")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the work folder with the proxies' logs")
	flag.Parse()
	cfg.Proxies = splitList(proxies, strings.ToLower)
	cfg.Methods = splitList(methods, strings.ToUpper)
	var err error
	if cfg.Rates, err = parseInts(rates); err != nil {
		fatal(fmt.Errorf("--rates: %w", err))
	}
	if err := cfg.Validate(); err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		stop()
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-sip:", err)
	os.Exit(1)
}

// proxy is one system under measurement, ready to take calls.
type proxy struct {
	name    string
	addr    string          // SIP over UDP
	http    string          // Switchboard only: its HTTP address, for pprof
	bin     string          // Switchboard only: its binary, for pprof
	servers []*sipp.Process // its feature servers
	stop    func()          // stops the proxy and its feature servers
}

func run(ctx context.Context, cfg Config, out io.Writer) error {
	if _, err := sipp.Lookup(); err != nil {
		return fmt.Errorf("%w (bench-sip needs: apt-get install sip-tester kamailio)", err)
	}
	work, err := os.MkdirTemp("", "bench-sip-")
	if err != nil {
		return err
	}
	if cfg.Keep {
		fmt.Fprintf(out, "work folder (kept): %s\n", work)
	} else {
		defer func() { _ = os.RemoveAll(work) }()
	}

	var proxies []*proxy
	defer func() {
		for _, p := range proxies {
			p.stop()
		}
	}()
	for _, name := range cfg.Proxies {
		var p *proxy
		switch name {
		case proxyKamailio:
			p, err = startKamailio(ctx, cfg, filepath.Join(work, name))
		case proxySwitchboard:
			p, err = startSwitchboard(ctx, cfg, filepath.Join(work, name))
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		proxies = append(proxies, p)
	}

	if err := printHeader(ctx, cfg, out, proxies); err != nil {
		return err
	}
	best := map[string]map[string]int{} // method -> proxy -> highest passing rate
	for _, method := range cfg.Methods {
		b, err := ladder(ctx, cfg, out, method, proxies)
		if err != nil {
			return err
		}
		best[method] = b
		if cfg.Pprof != "" {
			for _, p := range proxies {
				if p.name == proxySwitchboard {
					if err := profile(ctx, cfg, out, method, p, max(b[p.name], cfg.Rates[0])); err != nil {
						return err
					}
				}
			}
		}
	}
	printSummary(cfg, out, best)
	return nil
}

// ---- the measurement ----

// ladder steps the rate up for method through every proxy, alternating
// which goes first, until each has failed a step, and returns each
// proxy's highest passing rate (0: it failed the first step).
func ladder(ctx context.Context, cfg Config, out io.Writer, method string, proxies []*proxy) (map[string]int, error) {
	best := map[string]int{}
	failed := map[string]bool{}
	fmt.Fprintf(out, "\n%-8s %7s", method, "rate/s")
	for _, p := range proxies {
		fmt.Fprintf(out, "  %-*s", columnWidth, p.name)
	}
	fmt.Fprintln(out)
	for i, rate := range cfg.Rates {
		order := slices.Clone(proxies)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		row := map[string]string{}
		for _, p := range order {
			if failed[p.name] {
				row[p.name] = "-"
				continue
			}
			res, err := step(ctx, cfg, method, p, rate, cfg.Step)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err := settle(ctx, proxies); err != nil {
				return nil, err
			}
			ok, verdict := judge(cfg, res, err, rate)
			row[p.name] = verdict
			if ok {
				best[p.name] = rate
			} else {
				failed[p.name] = true
			}
		}
		fmt.Fprintf(out, "%-8s %7d", method, rate)
		for _, p := range proxies {
			fmt.Fprintf(out, "  %-*s", columnWidth, row[p.name])
		}
		fmt.Fprintln(out)
		if len(failed) == len(proxies) {
			break
		}
	}
	return best, nil
}

// columnWidth is the width of a proxy's column in the step table.
const columnWidth = 44

// step runs the method's client scenario through p at rate for d.
func step(ctx context.Context, cfg Config, method string, p *proxy, rate int, d time.Duration) (sipp.Result, error) {
	calls := max(1, int(float64(rate)*d.Seconds()))
	return sipp.RunUAC(ctx, scenarios[method].uac, p.addr, sipp.UACOptions{
		Service:     cfg.User,
		Domain:      cfg.Domain,
		FromUser:    "carrier",
		Calls:       calls,
		Rate:        rate,
		CallLength:  cfg.CallLength,
		RecvTimeout: cfg.RecvTimeout,
	})
}

// settle waits until the feature servers of every proxy are quiet (their
// counts alike in two statistics dumps in a row), so that what a step
// leaves behind, such as retransmissions and the timers of failed
// transactions, does not land in the next step. It gives up waiting after
// settleMax, the length of SIP's longest transaction timer and then some.
func settle(ctx context.Context, proxies []*proxy) error {
	const settleMax = 40 * time.Second
	deadline := time.Now().Add(settleMax)
	tick := time.NewTicker(1100 * time.Millisecond) // SIPp dumps its statistics every second
	defer tick.Stop()
	var last []sipp.Result
	for {
		var now []sipp.Result
		for _, p := range proxies {
			for _, srv := range p.servers {
				r, err := srv.Stats()
				if err != nil {
					r = sipp.Result{Total: -1} // not written yet, or caught mid-write
				}
				now = append(now, sipp.Result{Total: r.Total, Successful: r.Successful, Failed: r.Failed, Retransmissions: r.Retransmissions, OutOfCall: r.OutOfCall})
			}
		}
		if slices.Equal(now, last) || time.Now().After(deadline) {
			return nil
		}
		last = now
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// judge says whether a step passed and how to show it: every call
// successful, none left, and at least MinRate of the rate achieved.
func judge(cfg Config, res sipp.Result, err error, rate int) (bool, string) {
	figures := fmt.Sprintf("%d/%d ok, %.0f/s, %d retrans", res.Successful, res.Total, res.CallsPerSecond, res.Retransmissions)
	switch {
	case err != nil:
		return false, "FAIL " + figures + ": " + firstLine(err.Error())
	case res.Failed > 0 || res.Current > 0 || res.Successful < res.Total:
		return false, fmt.Sprintf("FAIL %s, %d failed", figures, res.Failed)
	case res.CallsPerSecond < cfg.MinRate*float64(rate):
		return false, "FAIL " + figures + ": rate not kept"
	}
	return true, "pass " + figures
}

// profile runs the client at rate through the Switchboard node while
// fetching a 10 s CPU profile from it, saves the profile and prints the
// top of go tool pprof -top.
func profile(ctx context.Context, cfg Config, out io.Writer, method string, p *proxy, rate int) error {
	if err := os.MkdirAll(cfg.Pprof, 0o755); err != nil {
		return err
	}
	const seconds = 10
	file := filepath.Join(cfg.Pprof, fmt.Sprintf("switchboard-%s-%dcps.pprof", strings.ToLower(method), rate))
	fetched := make(chan error, 1)
	go func() {
		fetched <- fetchProfile(ctx, "http://"+p.http+"/debug/pprof/profile?seconds="+strconv.Itoa(seconds), file)
	}()
	res, err := step(ctx, cfg, method, p, rate, seconds*time.Second+2*time.Second)
	ferr := <-fetched
	if err := settle(ctx, []*proxy{p}); err != nil {
		return err
	}
	if ferr != nil {
		return fmt.Errorf("CPU profile of the Switchboard node: %w", ferr)
	}
	_, verdict := judge(cfg, res, err, rate)
	fmt.Fprintf(out, "\nCPU profile of switchboard, %s at %d/s (%s): %s\n", method, rate, verdict, file)
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=20", p.bin, file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof -top %s: %w\n%s", file, err, top)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(top)), "\n") {
		fmt.Fprintln(out, "  "+line)
	}
	return nil
}

func fetchProfile(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, firstLine(string(body)))
	}
	return os.WriteFile(file, body, 0o644)
}

// ---- Kamailio ----

// startKamailio starts the SIPp feature servers and Kamailio in front of
// them, and returns once Kamailio answers OPTIONS.
func startKamailio(ctx context.Context, cfg Config, dir string) (*proxy, error) {
	bin, err := exec.LookPath(cfg.Kamailio)
	if err != nil {
		return nil, fmt.Errorf("no %s binary: apt-get install kamailio", cfg.Kamailio)
	}
	if _, err := os.Stat(cfg.KamailioCfg); err != nil {
		return nil, fmt.Errorf("kamailio configuration: %w (run from the repository root)", err)
	}
	servers, procs, stopServers, err := startFeatureServers(ctx)
	if err != nil {
		return nil, err
	}
	port, err := freePort("udp")
	if err != nil {
		stopServers()
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		stopServers()
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		"-f", cfg.KamailioCfg,
		"-DD", "-E", // foreground, logs on standard error
		"-m", "1024", "-M", "16", "-x", "tlsf",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir,
		"-A", "SB_LISTEN=udp:" + addr,
		"-A", `SB_UAS="sip:` + servers["INVITE"] + `"`,
		"-A", `SB_UAS_MESSAGE="sip:` + servers["MESSAGE"] + `"`,
	}
	d, err := startDaemon(ctx, bin, args, filepath.Join(dir, "kamailio.log"))
	if err != nil {
		stopServers()
		return nil, err
	}
	p := &proxy{name: proxyKamailio, addr: addr, servers: procs, stop: func() { d.stop(); stopServers() }}
	// Kamailio answers OPTIONS for itself (route REQINIT): ready when it does.
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := sipp.RunUAC(ctx, sipp.OptionsProbe, addr, sipp.UACOptions{Domain: addr, RecvTimeout: 500 * time.Millisecond, Timeout: 10 * time.Second})
		if err == nil && res.Successful == 1 {
			return p, nil
		}
		if d.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("kamailio did not answer OPTIONS on %s: %v %s\n%s", addr, err, res, d.logTail())
		}
		<-tick.C
	}
}

// ---- Switchboard ----

// adminToken is the bench node's bearer token (loopback only, one run).
const adminToken = "bench-sip-token"

// startSwitchboard starts the SIPp feature servers and a Switchboard node,
// provisions the node to route to them, and returns once it serves.
func startSwitchboard(ctx context.Context, cfg Config, dir string) (*proxy, error) {
	bin, err := filepath.Abs(cfg.Switchboard)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no switchboard binary at %s: run make build (or make bench-sip)", cfg.Switchboard)
	}
	help, _ := exec.CommandContext(ctx, bin, "node", "--help").CombinedOutput()
	for _, f := range []string{"--sip ", "--dns "} {
		if !bytes.Contains(help, []byte(f)) {
			return nil, fmt.Errorf("%s node has no %sflag: this build has no SIP edge yet", cfg.Switchboard, f)
		}
	}
	servers, procs, stopServers, err := startFeatureServers(ctx)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		stopServers()
		return nil, err
	}
	var ports [3]int // HTTP (TCP), SIP and DNS (UDP and TCP)
	for i, network := range []string{"tcp", "udp+tcp", "udp+tcp"} {
		if ports[i], err = freePort(network); err != nil {
			stopServers()
			return nil, err
		}
	}
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	sipAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	args := []string{"node",
		"--name", "bench",
		"--data", filepath.Join(dir, "data"),
		"--http", httpAddr,
		"--sip", sipAddr,
		"--dns", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2])),
		"--gossip", "127.0.0.1:0",
		"--actor", "127.0.0.1:0",
		"--admin-token", adminToken,
		"--log-level", "warn",
	}
	if bytes.Contains(help, []byte("--sip-flood-limit ")) {
		// The client is one source sending thousands of requests a second.
		args = append(args, "--sip-flood-limit", "-1")
	}
	d, err := startDaemon(ctx, bin, args, filepath.Join(dir, "switchboard.log"))
	if err != nil {
		stopServers()
		return nil, err
	}
	p := &proxy{name: proxySwitchboard, addr: sipAddr, http: httpAddr, bin: bin, servers: procs, stop: func() { d.stop(); stopServers() }}
	if err := waitServing(ctx, httpAddr, d); err != nil {
		p.stop()
		return nil, err
	}
	if err := provision(ctx, httpAddr, servers); err != nil {
		p.stop()
		return nil, fmt.Errorf("provisioning the node: %w\n%s", err, d.logTail())
	}
	return p, nil
}

// waitServing polls GET /healthz until it answers 200 "serving".
func waitServing(ctx context.Context, httpAddr string, d *daemon) error {
	const wait = 30 * time.Second
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		resp, err := httpDo(ctx, http.MethodGet, httpAddr, "/healthz", nil)
		if err == nil {
			var h map[string]string
			if resp.status == http.StatusOK && json.Unmarshal(resp.body, &h) == nil && (h["status"] == "serving" || h["state"] == "serving") {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.status, resp.body)
		} else {
			last = err.Error()
		}
		if d.exited() {
			return fmt.Errorf("the Switchboard node exited before serving:\n%s", d.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the Switchboard node did not answer GET http://%s/healthz with 200 serving within %s (last: %s)\n%s", httpAddr, wait, last, d.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// provision creates what the bench routes through: account acme (DNS name
// acme.<zone>), a trunk trusting 127.0.0.1, a feature server per method
// and the routes to them.
func provision(ctx context.Context, httpAddr string, servers map[string]string) error {
	target := func(addr string) map[string]any {
		return map[string]any{"targets": []map[string]any{{"address": addr, "priority": 1, "weight": 1, "transport": "udp"}}}
	}
	for _, put := range []struct {
		path string
		body any
	}{
		{"/v1/accounts/acme", map[string]any{}},
		{"/v1/accounts/acme/trunks/bench", map[string]any{"sources": []string{"127.0.0.1/32"}}},
		{"/v1/feature-servers/voicemail", target(servers["INVITE"])},
		{"/v1/feature-servers/sms", target(servers["MESSAGE"])},
		{"/v1/accounts/acme/routes", map[string]any{"routes": []map[string]string{
			{"method": "INVITE", "user": "*", "feature": "voicemail"},
			{"method": "MESSAGE", "user": "*", "feature": "sms"},
		}}},
		// Fraud checks stay on (every MESSAGE and INVITE is scored by the
		// account's supervisor, which is what is measured); the volume
		// thresholds sit above any rate of the ladder, and the bench
		// trunk, a new sender, has no history to deviate from.
		{"/v1/accounts/acme/fraud-policy", map[string]any{"indicators": map[string]any{
			"rate_per_minute":   map[string]any{"warning": 1e7, "critical": 2e7},
			"burst_per_second":  map[string]any{"warning": 1e6, "critical": 2e6},
			"same_body":         map[string]any{"warning": 1e6, "critical": 2e6},
			"history_deviation": map[string]any{"enabled": false},
		}}},
	} {
		resp, err := httpDo(ctx, http.MethodPut, httpAddr, put.path, put.body)
		if err != nil {
			return err
		}
		if resp.status != http.StatusOK && resp.status != http.StatusCreated {
			return fmt.Errorf("PUT %s: %d %s", put.path, resp.status, resp.body)
		}
	}
	return nil
}

type httpReply struct {
	status int
	body   []byte
}

func httpDo(ctx context.Context, method, httpAddr, path string, body any) (httpReply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return httpReply{}, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+httpAddr+path, rd)
	if err != nil {
		return httpReply{}, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return httpReply{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return httpReply{status: resp.StatusCode, body: bytes.TrimSpace(b)}, err
}

// ---- processes ----

// startFeatureServers starts one SIPp server per method and returns their
// addresses by method.
func startFeatureServers(ctx context.Context) (map[string]string, []*sipp.Process, func(), error) {
	addrs := map[string]string{}
	var procs []*sipp.Process
	stop := func() {
		for _, p := range procs {
			_, _ = p.Stop()
		}
	}
	for _, method := range []string{"INVITE", "MESSAGE"} {
		p, err := sipp.Start(ctx, scenarios[method].uas, "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, nil, fmt.Errorf("feature server for %s: %w", method, err)
		}
		procs = append(procs, p)
		addrs[method] = p.Addr
	}
	return addrs, procs, stop, nil
}

// daemon is a proxy process whose output goes to a log file.
type daemon struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startDaemon(ctx context.Context, bin string, args []string, logPath string) (*daemon, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	d := &daemon{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // how it ended shows in its log
		close(d.done)
	}()
	go func() { // an interrupted bench stops its proxies too
		select {
		case <-ctx.Done():
			d.stop()
		case <-d.done:
		}
	}()
	return d, nil
}

// stop asks the process to stop (SIGTERM: Kamailio stops its workers, a
// node drains) and kills it if it has not within 20 s.
func (d *daemon) stop() {
	if d.exited() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-d.done:
	case <-t.C:
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// logTail is the end of the process's log, for error messages.
func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	const n = 4000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return fmt.Sprintf("--- end of %s ---\n%s", d.log, b)
}

// freePort returns a port free on 127.0.0.1 for network "tcp", "udp" or
// "udp+tcp" (both at once) a moment ago.
func freePort(network string) (int, error) {
	for range 20 {
		if network == "tcp" {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, err
			}
			port := l.Addr().(*net.TCPAddr).Port
			_ = l.Close()
			return port, nil
		}
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if network == "udp" {
			_ = c.Close()
			return port, nil
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		_ = c.Close()
		if err == nil {
			_ = l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free %s port on 127.0.0.1", network)
}

// ---- output ----

func printHeader(ctx context.Context, cfg Config, out io.Writer, proxies []*proxy) error {
	version, err := sipp.Version(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "bench-sip: %s, %d CPUs; steps of %s, rates %s/s; INVITE calls %s long; pass = all calls successful at >= %.0f%% of the rate\n",
		version, runtime.NumCPU(), cfg.Step, joinInts(cfg.Rates), cfg.CallLength, cfg.MinRate*100)
	for _, p := range proxies {
		fmt.Fprintf(out, "  %s on %s\n", p.name, p.addr)
	}
	return nil
}

func printSummary(cfg Config, out io.Writer, best map[string]map[string]int) {
	fmt.Fprintln(out, "\nhighest rate with no failed call (calls/s):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tkamailio\tswitchboard\tswitchboard/kamailio")
	for _, m := range cfg.Methods {
		k, kok := best[m][proxyKamailio]
		s, sok := best[m][proxySwitchboard]
		ratio := "-"
		if slices.Contains(cfg.Proxies, proxyKamailio) && slices.Contains(cfg.Proxies, proxySwitchboard) {
			switch {
			case k > 0:
				ratio = fmt.Sprintf("%.2f (goal >= 1.0)", float64(s)/float64(k))
			case s > 0:
				ratio = "kamailio failed every step"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m, shown(k, kok, cfg, proxyKamailio), shown(s, sok, cfg, proxySwitchboard), ratio)
	}
	_ = tw.Flush()
	if top := cfg.Rates[len(cfg.Rates)-1]; slices.ContainsFunc(cfg.Methods, func(m string) bool {
		return best[m][proxyKamailio] == top || best[m][proxySwitchboard] == top
	}) {
		fmt.Fprintf(out, "(a proxy passed the top rate %d/s: the figure is a floor; add higher --rates)\n", top)
	}
}

func shown(rate int, ok bool, cfg Config, name string) string {
	switch {
	case !slices.Contains(cfg.Proxies, name):
		return "-"
	case !ok:
		return fmt.Sprintf("<%d", cfg.Rates[0])
	}
	return strconv.Itoa(rate)
}

// ---- small helpers ----

func splitList(s string, norm func(string) string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, norm(f))
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s, strings.TrimSpace) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
