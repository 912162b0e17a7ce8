package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// adminToken is the bench node's bearer token (loopback only, one run).
const adminToken = "bench-sip-token"

// startSwitchboard starts the SIPp feature servers and a Switchboard node,
// provisions the node to route to them and the devices (see
// provisionDevices), and returns once it serves.
func startSwitchboard(ctx context.Context, cfg Config, dir string, devices []device) (*proxy, error) {
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
	p := &proxy{name: proxySwitchboard, addr: sipAddr, http: httpAddr, bin: bin, pid: d.cmd.Process.Pid, servers: procs, stop: func() { d.stop(); stopServers() }}
	if err := waitServing(ctx, httpAddr, d); err != nil {
		p.stop()
		return nil, err
	}
	if err := provision(ctx, httpAddr, servers); err != nil {
		p.stop()
		return nil, fmt.Errorf("provisioning the node: %w\n%s", err, d.logTail())
	}
	start := time.Now()
	if err := provisionDevices(ctx, cfg, httpAddr, devices); err != nil {
		p.stop()
		return nil, fmt.Errorf("provisioning %d devices: %w\n%s", len(devices), err, d.logTail())
	}
	p.provisioned = time.Since(start)
	return p, nil
}

// provisionDevices creates the devices' groups, then the devices with
// their passwords, over HTTP with cfg.Workers requests in flight (there is
// no bulk endpoint: a device is one PUT).
func provisionDevices(ctx context.Context, cfg Config, httpAddr string, devices []device) error {
	var groups []string
	for i, d := range devices {
		if i == 0 || d.group != devices[i-1].group {
			groups = append(groups, d.group)
		}
	}
	if err := parallelPuts(ctx, cfg.Workers, len(groups), func(i int) (string, any) {
		return "/v1/accounts/acme/groups/" + groups[i], map[string]any{}
	}, httpAddr); err != nil {
		return err
	}
	return parallelPuts(ctx, cfg.Workers, len(devices), func(i int) (string, any) {
		d := devices[i]
		return "/v1/accounts/acme/devices/" + d.name, map[string]any{"group": d.group, "password": d.password}
	}, httpAddr)
}

// parallelPuts sends the n PUTs put(i) gives with workers in flight and
// returns the first failure.
func parallelPuts(ctx context.Context, workers, n int, put func(i int) (string, any), httpAddr string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				path, body := put(i)
				resp, err := httpDo(ctx, http.MethodPut, httpAddr, path, body)
				if err == nil && resp.status != http.StatusOK && resp.status != http.StatusCreated {
					err = fmt.Errorf("PUT %s: %d %s", path, resp.status, resp.body)
				}
				if err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
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
// and the routes to them; and it lifts the call capacity of the node's
// pool (500 concurrent calls per node unless configured) above what the
// memory row holds open, as Kamailio has no such bound.
func provision(ctx context.Context, httpAddr string, servers map[string]string) error {
	resp, err := httpDo(ctx, http.MethodGet, httpAddr, "/v1/pools", nil)
	if err != nil {
		return err
	}
	var pools struct {
		Pools []struct {
			Name string `json:"name"`
		} `json:"pools"`
	}
	if resp.status != http.StatusOK || json.Unmarshal(resp.body, &pools) != nil || len(pools.Pools) == 0 {
		return fmt.Errorf("GET /v1/pools: %d %s: want the node's pool", resp.status, resp.body)
	}
	for _, p := range pools.Pools {
		resp, err := httpDo(ctx, http.MethodPut, httpAddr, "/v1/pools/"+p.Name, map[string]any{"call_capacity_per_node": 1_000_000})
		if err != nil {
			return err
		}
		if resp.status != http.StatusOK && resp.status != http.StatusCreated {
			return fmt.Errorf("PUT /v1/pools/%s: %d %s", p.Name, resp.status, resp.body)
		}
	}
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

// httpClient keeps a connection per provisioning worker.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

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
	resp, err := httpClient.Do(req)
	if err != nil {
		return httpReply{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return httpReply{status: resp.StatusCode, body: bytes.TrimSpace(b)}, err
}
