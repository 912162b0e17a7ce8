package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// row is one line of the table: a client scenario, run alike through
// every proxy.
type row struct {
	name    string        // what --methods names it
	uac     sipp.Scenario // the client scenario
	devices bool          // from devices (digest, deviceIP, the injection file), else from the trunk
	method  string        // the method whose 200 ends a call's response time
}

// rows are the table's rows in the order they run.
var rows = []row{
	{"INVITE-trunk", sipp.UACInvite, false, "INVITE"},
	{"INVITE-auth", sipp.UACInviteAuthUsers, true, "INVITE"},
	{"REGISTER", sipp.RegisterAuthUsers, true, "REGISTER"},
	{"MESSAGE-trunk", sipp.UACMessage, false, "MESSAGE"},
	{"MESSAGE-auth", sipp.UACMessageAuthUsers, true, "MESSAGE"},
}

// aliases keep the row names of earlier versions working.
var aliases = map[string]string{"INVITE": "INVITE-trunk", "MESSAGE": "MESSAGE-trunk"}

// rowNamed finds a row by name or alias, in any case.
func rowNamed(name string) (row, bool) {
	if a, ok := aliases[strings.ToUpper(name)]; ok {
		name = a
	}
	i := slices.IndexFunc(rows, func(r row) bool { return strings.EqualFold(r.name, name) })
	if i < 0 {
		return row{}, false
	}
	return rows[i], true
}

// rowList is the rows' names, in order.
func rowList() []string {
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.name
	}
	return names
}

func rowNames() string { return strings.Join(rowList(), ", ") }

// deviceIP is the address the devices' SIPp binds: not the trunk's
// 127.0.0.1, which both proxies trust without digest.
const deviceIP = "127.0.0.2"

// rowWidth is the width of the row name column.
const rowWidth = 13

// ladder steps the rate up for the row through every proxy, alternating
// which goes first, until each has failed a step, and returns each
// proxy's highest passing rate (0: it failed the first step).
func ladder(ctx context.Context, cfg Config, out io.Writer, r row, proxies []*proxy) (map[string]int, error) {
	best := map[string]int{}
	failed := map[string]bool{}
	fmt.Fprintf(out, "\n%-*s %7s", rowWidth, r.name, "rate/s")
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
			res, err := step(ctx, cfg, r, p, rate, cfg.Step)
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
		fmt.Fprintf(out, "%-*s %7d", rowWidth, r.name, rate)
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

// step runs the row's client scenario through p at rate for d (at least
// one call).
func step(ctx context.Context, cfg Config, r row, p *proxy, rate int, d time.Duration) (sipp.Result, error) {
	calls := max(1, int(float64(rate)*d.Seconds()))
	return runRow(ctx, cfg, r, p, sipp.UACOptions{Calls: calls, Rate: rate, CallLength: cfg.CallLength})
}

// runRow runs the row's client scenario through p with o's counts, rate
// and call length: from the trunk's address as the carrier, or from the
// devices' address as the next device of p's injection file.
func runRow(ctx context.Context, cfg Config, r row, p *proxy, o sipp.UACOptions) (sipp.Result, error) {
	o.Service, o.Domain, o.RecvTimeout = cfg.User, cfg.Domain, cfg.RecvTimeout
	if r.devices {
		o.Users, o.LocalIP = p.users, deviceIP
	} else {
		o.FromUser = "carrier"
	}
	return sipp.RunUAC(ctx, r.uac, p.addr, o)
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
func profile(ctx context.Context, cfg Config, out io.Writer, r row, p *proxy, rate int) error {
	if err := os.MkdirAll(cfg.Pprof, 0o755); err != nil {
		return err
	}
	const seconds = 10
	file := filepath.Join(cfg.Pprof, fmt.Sprintf("switchboard-%s-%dcps.pprof", strings.ToLower(r.name), rate))
	fetched := make(chan error, 1)
	go func() {
		fetched <- fetchProfile(ctx, p.node, "/debug/pprof/profile?seconds="+strconv.Itoa(seconds), file)
	}()
	res, err := step(ctx, cfg, r, p, rate, seconds*time.Second+2*time.Second)
	ferr := <-fetched
	if err := settle(ctx, []*proxy{p}); err != nil {
		return err
	}
	if ferr != nil {
		return fmt.Errorf("CPU profile of the Switchboard node: %w", ferr)
	}
	_, verdict := judge(cfg, res, err, rate)
	fmt.Fprintf(out, "\nCPU profile of switchboard, %s at %d/s (%s): %s\n", r.name, rate, verdict, file)
	top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=20", p.bin, file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go tool pprof -top %s: %w\n%s", file, err, top)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(top)), "\n") {
		fmt.Fprintln(out, "  "+line)
	}
	return nil
}

func fetchProfile(ctx context.Context, n *nodeproc.Node, path, file string) error {
	r, err := n.Do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("GET %s: %d: %s", path, r.Status, firstLine(string(r.Body)))
	}
	return os.WriteFile(file, r.Body, 0o644)
}
