//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// failoverTrials is how many nodes BenchmarkFailover_Kill9ToFirstCall
// kills; SWITCHBOARD_BENCH_FAILOVER_TRIALS overrides it.
const failoverTrials = 20

// failoverGoal is the p99 the benchmark is measured against; slower
// trials are logged in detail.
const failoverGoal = 10 * time.Second

// failoverLast keeps the figures of the last run of the trials: the
// testing package calls a benchmark again with a larger b.N (-benchtime
// 2000x), and the trials, which take minutes, run once per -count.
var failoverLast []time.Duration

// BenchmarkFailover_Kill9ToFirstCall measures how long an account is
// unreachable when the node hosting it is killed: three `switchboard node`
// processes on loopback share PostgreSQL with --gossip-profile local; each
// trial provisions a fresh account (the node that placement puts it on,
// found through /debug/actors?scope=local, is the victim), reads it once
// through a survivor (so the survivor holds a route to the victim),
// SIGKILLs the victim, and times from the kill to the first 200 of GET
// /v1/accounts/{id} through that survivor, retried 5 ms after each failure;
// then a replacement node joins, so that every trial starts from three.
// Reported: p50-s, p99-s and max-s over the trials (goal: p99 <= 10 s);
// each trial is logged. b.N is not used: one run is the whole experiment.
//
//	SWITCHBOARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable \
//	  go test -run '^$' -bench Failover ./cmd/switchboard/
func BenchmarkFailover_Kill9ToFirstCall(b *testing.B) {
	if b.N == 1 || failoverLast == nil {
		failoverLast = runFailoverTrials(b)
	}
	d := slices.Sorted(slices.Values(failoverLast))
	b.ReportMetric(0, "ns/op") // meaningless here: the figures are per trial
	b.ReportMetric(float64(len(d)), "trials")
	b.ReportMetric(failoverPercentile(d, 0.50).Seconds(), "p50-s")
	b.ReportMetric(failoverPercentile(d, 0.99).Seconds(), "p99-s")
	b.ReportMetric(d[len(d)-1].Seconds(), "max-s")
}

// failoverPercentile is the nearest-rank percentile of sorted d.
func failoverPercentile(d []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

func runFailoverTrials(b *testing.B) []time.Duration {
	b.Helper()
	dsn := os.Getenv("SWITCHBOARD_TEST_POSTGRES")
	if dsn == "" {
		b.Skip("SWITCHBOARD_TEST_POSTGRES is not set; the failover benchmark needs a shared PostgreSQL store, e.g. " +
			"SWITCHBOARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable")
	}
	trials := failoverTrials
	if s := os.Getenv("SWITCHBOARD_BENCH_FAILOVER_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("SWITCHBOARD_BENCH_FAILOVER_TRIALS=%q: want a positive count", s)
		}
		trials = n
	}
	bin := switchboardBinary(b)
	run := randomID()
	seq := 0
	start := func(join string) *proc {
		seq++
		return startFailoverNode(b, bin, fmt.Sprintf("n%d", seq), dsn, join)
	}

	nodes := []*proc{start("")}
	seed := failoverGossipAddr(b, nodes[0])
	nodes = append(nodes, start(seed), start(seed))
	failoverWaitSettled(b, nodes, 3)

	var accounts []string
	defer func() {
		// The database is shared: delete what the run created, through a
		// node still running.
		var live *proc
		for _, p := range nodes {
			select {
			case <-p.exited:
			default:
				live = p
			}
		}
		for _, id := range accounts {
			if live == nil {
				b.Errorf("no node left to delete benchmark account %s", id)
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := live.do(ctx, http.MethodDelete, "/v1/accounts/"+id, nil, nil)
			cancel()
			if err != nil || (r.status != http.StatusNoContent && r.status != http.StatusNotFound) {
				b.Errorf("deleting benchmark account %s: %v %v", id, r, err)
			}
		}
	}()

	var out []time.Duration
	var summary, slow []string
	defer func() {
		b.Logf("seconds from SIGKILL to the first 200, by trial: %s", strings.Join(summary, " "))
		for _, l := range slow {
			b.Log(l)
		}
	}()
	for trial := range trials {
		// A fresh account, provisioned through each node in turn; the node
		// that placement put it on is the victim.
		id := fmt.Sprintf("t-failover-%s-%d", run, trial)
		if r := failoverDo(b, nodes[trial%3], http.MethodPut, "/v1/accounts/"+id, map[string]string{"display_name": "failover benchmark"}); r.status != http.StatusCreated {
			b.Fatalf("PUT account %s: %s", id, r)
		}
		accounts = append(accounts, id)
		vi := failoverHostOf(b, nodes, id)
		// The survivors take turns to be the one read through.
		victim, via, other := nodes[vi], nodes[(vi+1+trial%2)%3], nodes[(vi+2-trial%2)%3]
		victimID := failoverLocalMember(b, victim).ID
		if r := failoverDo(b, via, http.MethodGet, "/v1/accounts/"+id, nil); r.status != http.StatusOK {
			b.Fatalf("reading %s through %s before the kill: %s", id, via.addr, r)
		}
		join := failoverGossipAddr(b, via)

		t0 := time.Now()
		victim.kill()
		elapsed, attempts, failures := failoverFirstGet(b, via, id, t0)
		victim.client.CloseIdleConnections()
		out = append(out, elapsed)
		summary = append(summary, fmt.Sprintf("%.2f", elapsed.Seconds()))
		if elapsed > failoverGoal {
			// The testing package keeps ten lines of a benchmark's log:
			// one for the summary, one per slow trial.
			slow = append(slow, fmt.Sprintf("trial %d: killed %s at %s, %s answered after %v (%d attempts; non-200: %v); %s: %s; %s: %s",
				trial, victim.cmd.Args[3], t0.UTC().Format("15:04:05.000"), via.cmd.Args[3], elapsed.Round(time.Millisecond), attempts, failures,
				via.cmd.Args[3], failoverDeadLine(via.stderr.String(), victimID),
				other.cmd.Args[3], failoverDeadLine(other.stderr.String(), victimID)))
		}

		nodes[vi] = start(join)
		failoverWaitSettled(b, nodes, 3)
	}
	return out
}

// failoverDeadLine returns the line of a node's log in which memberlist
// marked member id failed: it tells how many peers confirmed the
// suspicion, which sets the suspicion timeout (memberlist's suspicion
// timeout shrinks from its maximum as confirmations arrive).
func failoverDeadLine(log, id string) string {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "Marking "+id+" as failed") {
			at, _, _ := strings.Cut(line, " level=")
			_, msg, _ := strings.Cut(line, "msg=")
			msg, _, _ = strings.Cut(msg, `" `)
			return strings.TrimPrefix(at, "time=") + " " + msg + `"`
		}
	}
	return "had not marked it failed"
}

// failoverHostOf returns the index of the node whose
// /debug/actors?scope=local lists account id.
func failoverHostOf(b *testing.B, nodes []*proc, id string) int {
	b.Helper()
	host := -1
	for i, p := range nodes {
		var list struct {
			Activations []struct{ ID string } `json:"activations"`
		}
		failoverDecode(b, failoverDo(b, p, http.MethodGet, "/debug/actors?scope=local&kind=account", nil), &list)
		for _, a := range list.Activations {
			if a.ID != id {
				continue
			}
			if host >= 0 {
				b.Fatalf("account %s is active on %s and on %s", id, nodes[host].cmd.Args[3], p.cmd.Args[3])
			}
			host = i
		}
	}
	if host < 0 {
		b.Fatalf("account %s, just written, is active on no node", id)
	}
	return host
}

// failoverFirstGet GETs the account through via until it answers 200, pausing
// 5 ms after each failure, and returns the time since t0, the attempts
// made, and the failures seen by status (0: no response).
func failoverFirstGet(b *testing.B, via *proc, id string, t0 time.Time) (time.Duration, int, map[int]int) {
	b.Helper()
	failures := map[int]int{}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		r, err := via.do(ctx, http.MethodGet, "/v1/accounts/"+id, nil, nil)
		cancel()
		if err == nil && r.status == http.StatusOK {
			return time.Since(t0), attempt, failures
		}
		failures[r.status]++
		if time.Since(t0) > time.Minute {
			b.Fatalf("%s still unreachable through %s a minute after the kill (last: %v %v)", id, via.addr, r, err)
		}
		time.Sleep(5 * time.Millisecond) // retry pause: keeps the loop from starving the nodes of CPU
	}
}

// ---- a cluster of processes ----

// startFailoverNode starts `switchboard node` on PostgreSQL with fast
// gossip timers, joining join if set, and waits until it serves. It is
// killed when the benchmark ends.
func startFailoverNode(b *testing.B, bin, name, dsn, join string) *proc {
	b.Helper()
	for attempt := 1; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		args := []string{"node", "--name", name, "--http", addr, "--gossip", "127.0.0.1:0", "--actor", "127.0.0.1:0", "--sip", "127.0.0.1:0", "--dns", "127.0.0.1:0",
			"--store", dsn, "--gossip-profile", "local"}
		if join != "" {
			args = append(args, "--join", join)
		}
		p := &proc{
			addr:   addr,
			client: &http.Client{Timeout: 20 * time.Second},
			stdout: &syncBuffer{},
			stderr: &syncBuffer{},
			exited: make(chan struct{}),
		}
		p.cmd = exec.Command(bin, args...)
		p.cmd.Env = processEnv()
		p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
		p.cmd.WaitDelay = 5 * time.Second
		if err := p.cmd.Start(); err != nil {
			b.Fatalf("starting %s: %v", bin, err)
		}
		go func() {
			_ = p.cmd.Wait() // the exit status is read from cmd.ProcessState
			close(p.exited)
		}()
		b.Cleanup(func() {
			p.kill()
			p.client.CloseIdleConnections()
			if b.Failed() {
				b.Logf("output of switchboard %s:\n--- stderr\n%s", strings.Join(args, " "), tail(p.stderr.String()))
			}
		})
		err = p.waitServing(30 * time.Second)
		if err == nil {
			return p
		}
		if attempt < 3 && errors.Is(err, errPortTaken) {
			continue
		}
		b.Fatal(err)
	}
}

// failoverClusterJSON is the part of GET /debug/cluster the benchmark reads.
type failoverClusterJSON struct {
	Members []failoverMemberJSON `json:"members"`
	Counts  map[string]int       `json:"counts"`
}

type failoverMemberJSON struct {
	Name      string            `json:"name"`
	ID        string            `json:"id"`
	Status    string            `json:"status"`
	Local     bool              `json:"local"`
	Addresses map[string]string `json:"addresses"`
}

func failoverClusterOf(b *testing.B, p *proc) failoverClusterJSON {
	b.Helper()
	var c failoverClusterJSON
	failoverDecode(b, failoverDo(b, p, http.MethodGet, "/debug/cluster", nil), &c)
	return c
}

// failoverLocalMember is p's own entry in its /debug/cluster.
func failoverLocalMember(b *testing.B, p *proc) failoverMemberJSON {
	b.Helper()
	for _, m := range failoverClusterOf(b, p).Members {
		if m.Local {
			return m
		}
	}
	b.Fatalf("%s does not list itself in /debug/cluster", p.addr)
	return failoverMemberJSON{}
}

// failoverGossipAddr is the gossip address p listens on, for --join.
func failoverGossipAddr(b *testing.B, p *proc) string {
	b.Helper()
	addr := failoverLocalMember(b, p).Addresses["gossip"]
	if addr == "" {
		b.Fatalf("%s does not show its own gossip address in /debug/cluster", p.addr)
	}
	return addr
}

// failoverWaitSettled waits until every node sees exactly n alive members and
// none suspect or draining.
func failoverWaitSettled(b *testing.B, nodes []*proc, n int) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, p := range nodes {
			c := failoverClusterOf(b, p).Counts
			if c["alive"] != n || c["suspect"] != 0 || c["draining"] != 0 {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var views []string
			for _, p := range nodes {
				views = append(views, fmt.Sprintf("%s: %v", p.addr, failoverClusterOf(b, p).Counts))
			}
			b.Fatalf("the cluster did not settle at %d alive members within 30s: %s", n, strings.Join(views, "; "))
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

func failoverDo(b *testing.B, p *proc, method, path string, body any) reply {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := p.do(ctx, method, path, body, nil)
	if err != nil {
		b.Fatalf("%s %s on %s: %v", method, path, p.addr, err)
	}
	return r
}

func failoverDecode(b *testing.B, r reply, v any) {
	b.Helper()
	if r.status != http.StatusOK {
		b.Fatalf("want 200, got %s", r)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		b.Fatalf("decoding %s: %v", r, err)
	}
}
