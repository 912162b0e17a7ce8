package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/sipp"
)

// featureServers are the server scenarios a proxy forwards to, by method.
var featureServers = []struct {
	method   string
	scenario sipp.Scenario
}{{"INVITE", sipp.UAS}, {"MESSAGE", sipp.UASMessage}}

// startFeatureServers starts one SIPp server per method and returns their
// addresses by method, and the servers in featureServers' order.
func startFeatureServers(ctx context.Context) (map[string]string, []*sipp.Process, func(), error) {
	addrs := map[string]string{}
	var procs []*sipp.Process
	stop := func() {
		for _, p := range procs {
			_, _ = p.Stop()
		}
	}
	for _, f := range featureServers {
		p, err := sipp.Start(ctx, f.scenario, "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, nil, fmt.Errorf("feature server for %s: %w", f.method, err)
		}
		procs = append(procs, p)
		addrs[f.method] = p.Addr
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

// logTail is the end of a process's log, for error messages.
func logTail(log string) string {
	b, _ := os.ReadFile(log)
	const n = 4000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return fmt.Sprintf("--- end of %s ---\n%s", log, b)
}

// rssBytes is the resident set of process pid (VmRSS in /proc/PID/status).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("resident memory of process %d: %w (bench-sip reads /proc: Linux only)", pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("resident memory of process %d: no VmRSS line in /proc/%d/status", pid, pid)
}

// clockTicks is the unit of /proc/PID/stat's times (sysconf(_SC_CLK_TCK)),
// 100 on every Linux architecture Go builds for.
const clockTicks = 100

// cpuTime is the CPU time process pid has used, user and system
// (utime + stime in /proc/PID/stat).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time of process %d: %w (bench-sip reads /proc: Linux only)", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("CPU time of process %d: /proc/%d/stat unreadable: %q", pid, pid, b)
	}
	// rest starts at field 3 (state): utime is field 14, stime 15.
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("CPU time of process %d: /proc/%d/stat fields %q %q", pid, pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

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

// head is the start of s, at most n bytes.
func head(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
