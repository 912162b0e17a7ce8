// Command sip is make bench-sip: one Switchboard node beside Kamailio 5.6,
// measured by the same SIPp client: the highest rate each proxies without
// a failed call, the response time at half that rate, and the memory an
// active call costs.
//
// # Rows
//
// Each row is one SIPp client scenario, run with the same flags through
// both proxies:
//
//	INVITE-trunk   uac_invite.xml from the trusted trunk (127.0.0.1): INVITE, 200, ACK, BYE
//	INVITE-auth    uac_invite_auth_users.xml from devices (127.0.0.2): INVITE, 407, INVITE with digest, 200, ACK, BYE
//	REGISTER       register_auth_users.xml from devices: REGISTER, 401, REGISTER with digest, 200
//	MESSAGE-trunk  uac_message.xml from the trunk: MESSAGE, 200
//	MESSAGE-auth   uac_message_auth_users.xml from devices: MESSAGE, 407, MESSAGE with digest, 200
//
// (--methods INVITE and MESSAGE name the trunk rows, as before.) The device
// rows take a device per call, in turn, from a SIPp injection file of
// --devices devices (1,000) with their passwords; MD5 digest, which
// Switchboard offers unless told otherwise and SIPp 3.6 answers.
//
// Each proxy forwards to SIPp servers of its own: initial INVITEs to one
// running testdata/sipp/uas.xml, MESSAGEs to one running uas_message.xml;
// REGISTER ends at the proxy's registrar. The Switchboard node is started
// by internal/nodeproc and provisioned over HTTP: account acme, trunk bench
// (127.0.0.1/32), the devices in groups of --group-size (5) with their
// passwords, feature servers voicemail and sms, routes INVITE -> voicemail
// and MESSAGE -> sms, a fraud policy whose volume thresholds sit above the
// ladder (every request is still scored by the account's supervisor), and
// its pool's call capacity raised to 1,000,000 a node (the default, 500
// concurrent calls, would refuse the memory row; Kamailio has no such
// bound).
// Kamailio runs bench/sip/kamailio.cfg: tm stateful proxy, record-route,
// four UDP workers; for devices the auth module with the devices' HA1s in
// an htable loaded at start from a db_text file this command writes (no
// database server), and registrar with usrloc in memory. Both get
// Request-URIs sip:bench@acme.sip.switchboard.test, and challenge in realm
// acme.sip.switchboard.test.
//
// # Throughput
//
// For each row the client runs at stepped rates (-r) for a fixed time per
// step (-m = rate x step), alternating which proxy goes first so that the
// machine's noise hits both alike. A step passes when every call
// succeeded and SIPp kept 90% of the asked rate; a proxy's figure is the
// highest rate it passed before its first failing step, and the ladder
// goes on until both have failed (its top is a warning: a floor). The
// table gives switchboard/kamailio per row (the goal is at least 1.0).
//
// # Response time
//
// Then, per row, each proxy runs the scenario at half its own figure (the
// knee) with SIPp's message trace, at most --latency-calls calls, and the
// table gives p50 and p99 of the time from a call's first request to the
// 200 that ends it (INVITE: to the 200 of the INVITE, after the 407 for
// devices; REGISTER: to the 200 after the 401; MESSAGE: to its 200), from
// the trace's microsecond stamps (SIPp's own rtd counts whole
// milliseconds). --latency-at common runs both at half the lower knee
// instead.
//
// # Memory
//
// Last, each proxy is started afresh and holds --memory-calls (10,000)
// INVITE-trunk calls open at once (--memory-rate 500 a second, each call
// held until all are up and 20 s more). Switchboard: the growth of its
// resident set (VmRSS) from before the calls to when its feature server
// has them all, per call. Kamailio, here with the dialog module tracking
// each call (Switchboard tracks its calls too): the growth of its shared
// memory in use (kamcmd core.shmmem real_used), per call. The ratio is
// switchboard/kamailio bytes per call.
//
// # Growth
//
// --growth runs only the growth table, Switchboard alone: for
// --growth-devices (1,000, 10,000, 50,000) devices in one account in
// groups of --group-size, and for one group of --growth-group (2,000)
// devices, a fresh node provisioned over HTTP (--workers PUTs in flight;
// the time it took is printed) and left to go idle (under 5% of a core,
// at most a minute), then --growth-ops REGISTERs (their groups cold), the
// same REGISTERs again (warm) and as many INVITE-auth calls at
// --growth-rate (100/s), the devices in shuffled order: p50 and p99
// response time, CPU per operation (utime+stime of the node's process from
// /proc/PID/stat over the run, divided by the operations) and the node's
// resident set after.
//
// With --pprof DIR, the Switchboard node's CPU is profiled for 10 s while
// the client runs again at its top rate, per row, the profile saved in DIR
// and summarized with go tool pprof -top.
//
//	apt-get install sip-tester kamailio
//	make bench-sip                       # builds bin/switchboard first
//	make bench-sip BENCH_SIP_FLAGS="--methods INVITE-auth,REGISTER --memory-calls 0"
//	make bench-sip BENCH_SIP_FLAGS=--growth
//	go run ./bench/sip --proxies kamailio --rates 200,400,800 --memory-calls 0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// Config is what the flags fill.
type Config struct {
	Switchboard string        // the switchboard binary (make bench-sip: ./bin/switchboard)
	Kamailio    string        // the kamailio binary
	KamailioCfg string        // the Kamailio configuration
	Proxies     []string      // which proxies to measure: kamailio, switchboard
	Methods     []string      // which rows, by name (see rows) or alias
	Rates       []int         // the rate ladder, calls per second, ascending
	Step        time.Duration // how long each step offers its rate
	CallLength  time.Duration // INVITE calls: the pause between ACK and BYE
	RecvTimeout time.Duration // a call fails when an answer is this late
	MinRate     float64       // a step fails when SIPp achieved less than this share of its rate
	Pprof       string        // folder for the Switchboard CPU profiles; empty: none
	Domain      string        // Request-URI host, the account's DNS name and digest realm
	User        string        // Request-URI user
	Keep        bool          // keep the work folder (logs) after the run

	Devices   int // devices the device rows take turns with
	GroupSize int // devices per group
	Workers   int // provisioning PUTs in flight

	LatencyAt    string // "own": each proxy at half its own knee; "common": both at half the lower
	LatencyCalls int    // most calls a response-time run places; 0: no response times

	MemoryCalls int           // calls held open at once for the memory row; 0: no memory row
	MemoryRate  int           // calls per second while they are set up
	MemoryHold  time.Duration // how long each call stays up after the last one is set up

	Growth        bool  // run the growth table instead
	GrowthDevices []int // account sizes, devices in groups of GroupSize
	GrowthGroup   int   // the size of the one-group case; 0: none
	GrowthRate    int   // operations per second
	GrowthOps     int   // operations per row and size
}

// DefaultConfig is the run make bench-sip does.
func DefaultConfig() Config {
	return Config{
		Switchboard: "./bin/switchboard",
		Kamailio:    "kamailio",
		KamailioCfg: "bench/sip/kamailio.cfg",
		Proxies:     []string{proxyKamailio, proxySwitchboard},
		Methods:     rowList(),
		// Doubling, then finer steps, up to where neither proxy passes on
		// a 2-core machine (a proxy passing the top is a warning).
		Rates:       []int{100, 200, 400, 800, 1200, 1600, 2000, 2400, 3200, 4000, 4800, 5600, 6400, 7200, 8000, 9600, 11200, 12800},
		Step:        5 * time.Second,
		CallLength:  0, // ACK then BYE at once: signalling only
		RecvTimeout: 5 * time.Second,
		MinRate:     0.9,
		Domain:      "acme.sip.switchboard.test",
		User:        "bench",

		Devices:   1000,
		GroupSize: 5,  // a household or a small office
		Workers:   16, // enough to keep a node's HTTP API busy on 2 cores
		LatencyAt: "own",
		// A trace of 5,000 calls is about 20 MB, under SIPp's log bound.
		LatencyCalls: 5000,

		MemoryCalls: 10000,
		MemoryRate:  500, // both proxies pass it with room to spare
		MemoryHold:  20 * time.Second,

		GrowthDevices: []int{1000, 10000, 50000},
		GrowthGroup:   2000,
		GrowthRate:    100, // moderate, well under either row's knee: the time per operation, not queueing
		GrowthOps:     1000,
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
		if _, ok := rowNamed(m); !ok {
			return fmt.Errorf("--methods: unknown row %q (%s; INVITE and MESSAGE name the trunk rows)", m, rowNames())
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
	if c.Devices < 1 || c.GroupSize < 1 || c.Workers < 1 {
		return errors.New("--devices, --group-size, --workers: at least 1")
	}
	if c.LatencyAt != "own" && c.LatencyAt != "common" {
		return fmt.Errorf("--latency-at: %q is neither own nor common", c.LatencyAt)
	}
	if c.LatencyCalls < 0 || c.MemoryCalls < 0 || c.GrowthGroup < 0 {
		return errors.New("--latency-calls, --memory-calls, --growth-group: 0 or more")
	}
	if c.MemoryCalls > 0 && (c.MemoryRate < 1 || c.MemoryHold < time.Second) {
		return errors.New("--memory-rate: at least 1; --memory-hold: at least 1s")
	}
	if c.Growth {
		if len(c.GrowthDevices) == 0 && c.GrowthGroup == 0 {
			return errors.New("--growth: give --growth-devices or --growth-group")
		}
		for _, n := range c.GrowthDevices {
			if n < 1 {
				return errors.New("--growth-devices: positive sizes")
			}
		}
		if c.GrowthRate < 1 || c.GrowthOps < 1 {
			return errors.New("--growth-rate, --growth-ops: at least 1")
		}
		if !slices.Contains(c.Proxies, proxySwitchboard) {
			return errors.New("--growth measures the Switchboard node: keep switchboard in --proxies")
		}
	}
	return nil
}

const (
	proxyKamailio    = "kamailio"
	proxySwitchboard = "switchboard"
)

func main() {
	cfg := DefaultConfig()
	var proxies, methods, rates, growthDevices string
	flag.StringVar(&cfg.Switchboard, "switchboard", cfg.Switchboard, "switchboard binary")
	flag.StringVar(&cfg.Kamailio, "kamailio", cfg.Kamailio, "kamailio binary")
	flag.StringVar(&cfg.KamailioCfg, "kamailio-cfg", cfg.KamailioCfg, "Kamailio configuration")
	flag.StringVar(&proxies, "proxies", strings.Join(cfg.Proxies, ","), "proxies to measure: kamailio, switchboard")
	flag.StringVar(&methods, "methods", strings.Join(cfg.Methods, ","), "rows to measure: "+rowNames()+" (INVITE and MESSAGE: the trunk rows)")
	flag.StringVar(&rates, "rates", joinInts(cfg.Rates), "rate ladder, calls per second, ascending")
	flag.DurationVar(&cfg.Step, "step", cfg.Step, "how long each step offers its rate")
	flag.DurationVar(&cfg.CallLength, "call-length", cfg.CallLength, "INVITE calls: pause between ACK and BYE")
	flag.DurationVar(&cfg.RecvTimeout, "recv-timeout", cfg.RecvTimeout, "a call fails when an answer is this late")
	flag.Float64Var(&cfg.MinRate, "min-rate", cfg.MinRate, "a step fails when SIPp achieved less than this share of its rate")
	flag.StringVar(&cfg.Pprof, "pprof", "", "save a 10 s CPU profile of the Switchboard node at its top rate into this folder")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the work folder with the proxies' logs")
	flag.IntVar(&cfg.Devices, "devices", cfg.Devices, "devices in the account, taking turns in the device rows")
	flag.IntVar(&cfg.GroupSize, "group-size", cfg.GroupSize, "devices per group")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "provisioning requests in flight")
	flag.StringVar(&cfg.LatencyAt, "latency-at", cfg.LatencyAt, "response times at half the knee: own (each proxy's) or common (the lower)")
	flag.IntVar(&cfg.LatencyCalls, "latency-calls", cfg.LatencyCalls, "most calls per response-time run; 0: no response times")
	flag.IntVar(&cfg.MemoryCalls, "memory-calls", cfg.MemoryCalls, "calls held open at once for the memory row; 0: no memory row")
	flag.IntVar(&cfg.MemoryRate, "memory-rate", cfg.MemoryRate, "memory row: calls set up per second")
	flag.DurationVar(&cfg.MemoryHold, "memory-hold", cfg.MemoryHold, "memory row: how long calls stay up after the last is set up")
	flag.BoolVar(&cfg.Growth, "growth", false, "run the growth table (Switchboard alone) instead")
	flag.StringVar(&growthDevices, "growth-devices", joinInts(cfg.GrowthDevices), "growth: account sizes, devices in groups of --group-size")
	flag.IntVar(&cfg.GrowthGroup, "growth-group", cfg.GrowthGroup, "growth: devices in the one-group case; 0: none")
	flag.IntVar(&cfg.GrowthRate, "growth-rate", cfg.GrowthRate, "growth: operations per second")
	flag.IntVar(&cfg.GrowthOps, "growth-ops", cfg.GrowthOps, "growth: operations per row and size")
	flag.Parse()
	cfg.Proxies = splitList(proxies, strings.ToLower)
	cfg.Methods = splitList(methods, strings.TrimSpace)
	var err error
	if cfg.Rates, err = parseInts(rates); err != nil {
		fatal(fmt.Errorf("--rates: %w", err))
	}
	if cfg.GrowthDevices, err = parseInts(growthDevices); err != nil {
		fatal(fmt.Errorf("--growth-devices: %w", err))
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
	name        string
	addr        string          // SIP over UDP
	pid         int             // its process
	node        *nodeproc.Node  // Switchboard only: its process, for pprof
	bin         string          // Switchboard only: its binary, for pprof
	ctl         string          // Kamailio only: its kamcmd socket
	users       string          // the SIPp injection file of its devices
	provisioned time.Duration   // Switchboard only: how long its devices took to provision
	servers     []*sipp.Process // its feature servers: INVITE's, then MESSAGE's
	stop        func()          // stops the proxy and its feature servers
}

// device is one device of the account: its name, group and password.
type device struct{ name, group, password string }

// makeDevices returns n devices d00000, d00001, ... in groups of
// groupSize, g00000, g00001, ..., each with a password of its own.
func makeDevices(n, groupSize int) []device {
	devices := make([]device, n)
	for i := range devices {
		name := fmt.Sprintf("d%05d", i)
		devices[i] = device{name: name, group: fmt.Sprintf("g%05d", i/groupSize), password: "bench-" + name + "-secret"}
	}
	return devices
}

// writeUsers writes the devices as the SIPp injection file the device
// rows take turns from, in the order given.
func writeUsers(path string, devices []device) error {
	users := make([]sipp.User, len(devices))
	for i, d := range devices {
		users[i] = sipp.User{Name: d.name, Password: d.password}
	}
	return sipp.WriteUsers(path, users)
}

// startProxy starts the named proxy in dir, with devices (none: trunk
// only) and, for Kamailio, dialog tracking.
func startProxy(ctx context.Context, cfg Config, name, dir string, devices []device, dialog bool) (*proxy, error) {
	var p *proxy
	var err error
	switch name {
	case proxyKamailio:
		p, err = startKamailio(ctx, cfg, dir, kamailioOptions{devices: devices, dialog: dialog})
	default:
		p, err = startSwitchboard(ctx, cfg, dir, devices)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
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
	if cfg.Growth {
		return growth(ctx, cfg, work, out)
	}

	var selected []row
	for _, m := range cfg.Methods {
		r, _ := rowNamed(m)
		if !slices.ContainsFunc(selected, func(s row) bool { return s.name == r.name }) {
			selected = append(selected, r)
		}
	}
	var devices []device
	users := filepath.Join(work, "users.csv")
	if slices.ContainsFunc(selected, func(r row) bool { return r.devices }) {
		devices = makeDevices(cfg.Devices, cfg.GroupSize)
		if err := writeUsers(users, devices); err != nil {
			return err
		}
	}

	var proxies []*proxy
	stopAll := func() {
		for _, p := range proxies {
			p.stop()
		}
		proxies = nil
	}
	defer func() { stopAll() }()
	for _, name := range cfg.Proxies {
		p, err := startProxy(ctx, cfg, name, filepath.Join(work, name), devices, false)
		if err != nil {
			return err
		}
		p.users = users
		proxies = append(proxies, p)
	}

	if err := printHeader(ctx, cfg, out, proxies, len(devices)); err != nil {
		return err
	}
	best := map[string]map[string]int{}          // row -> proxy -> highest passing rate
	latencies := map[string]map[string]latency{} // row -> proxy -> response times
	for _, r := range selected {
		b, err := ladder(ctx, cfg, out, r, proxies)
		if err != nil {
			return err
		}
		best[r.name] = b
		if cfg.LatencyCalls > 0 {
			if latencies[r.name], err = measureLatency(ctx, cfg, r, proxies, b); err != nil {
				return err
			}
		}
		if cfg.Pprof != "" {
			for _, p := range proxies {
				if p.name == proxySwitchboard {
					if err := profile(ctx, cfg, out, r, p, max(b[p.name], cfg.Rates[0])); err != nil {
						return err
					}
				}
			}
		}
	}
	stopAll() // the memory row starts its own
	printSummary(cfg, out, selected, best)
	if cfg.LatencyCalls > 0 {
		printLatency(cfg, out, selected, latencies)
	}
	if cfg.MemoryCalls > 0 {
		return memory(ctx, cfg, work, out)
	}
	return nil
}
