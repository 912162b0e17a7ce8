package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "switchboard.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = log.Close() }() // the child has its own copy
	servers, procs, stopServers, err := startFeatureServers(ctx)
	if err != nil {
		return nil, err
	}
	n, err := nodeproc.Start(ctx, nodeproc.Options{Binary: bin, Name: "bench", Token: adminToken, Output: log, Args: []string{
		"--data", filepath.Join(dir, "data"),
		"--admin-token", adminToken,
		"--log-level", "warn",
		"--sip-flood-limit", "-1", // the client is one source sending thousands of requests a second
	}})
	if err != nil {
		stopServers()
		return nil, fmt.Errorf("%w\n%s", err, logTail(logPath))
	}
	p := &proxy{name: proxySwitchboard, node: n, bin: bin, pid: n.Cmd.Process.Pid, servers: procs, stop: func() { _ = n.Stop(20 * time.Second); stopServers() }}
	self, err := n.Self(ctx)
	if err == nil {
		p.addr = self.Addresses["sip"]
		err = provision(ctx, n, servers)
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("provisioning the node: %w\n%s", err, logTail(logPath))
	}
	start := time.Now()
	if err := provisionDevices(ctx, cfg, n, devices); err != nil {
		p.stop()
		return nil, fmt.Errorf("provisioning %d devices: %w\n%s", len(devices), err, logTail(logPath))
	}
	p.provisioned = time.Since(start)
	return p, nil
}

// provisionDevices creates the devices' groups, then the devices with
// their passwords, over HTTP with cfg.Workers requests in flight (there is
// no bulk endpoint: a device is one PUT).
func provisionDevices(ctx context.Context, cfg Config, n *nodeproc.Node, devices []device) error {
	var groups []string
	for i, d := range devices {
		if i == 0 || d.group != devices[i-1].group {
			groups = append(groups, d.group)
		}
	}
	if err := parallelPuts(ctx, cfg.Workers, len(groups), func(i int) (string, any) {
		return "/v1/accounts/acme/groups/" + groups[i], map[string]any{}
	}, n); err != nil {
		return err
	}
	return parallelPuts(ctx, cfg.Workers, len(devices), func(i int) (string, any) {
		d := devices[i]
		return "/v1/accounts/acme/devices/" + d.name, map[string]any{"group": d.group, "password": d.password}
	}, n)
}

// parallelPuts sends the n PUTs put(i) gives with workers in flight and
// returns the first failure.
func parallelPuts(ctx context.Context, workers, n int, put func(i int) (string, any), node *nodeproc.Node) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				path, body := put(i)
				if err := httpPut(ctx, node, path, body); err != nil {
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
	return context.Cause(ctx)
}

// provision creates what the bench routes through: account acme (DNS name
// acme.<zone>), a trunk trusting 127.0.0.1, a feature server per method
// and the routes to them; and it lifts the call capacity of the node's
// pool (500 concurrent calls per node unless configured) above what the
// memory row holds open, as Kamailio has no such bound.
func provision(ctx context.Context, n *nodeproc.Node, servers map[string]string) error {
	var pools struct {
		Pools []struct {
			Name string `json:"name"`
		} `json:"pools"`
	}
	if err := n.GetJSON(ctx, "/v1/pools", &pools); err != nil {
		return err
	}
	if len(pools.Pools) == 0 {
		return fmt.Errorf("GET /v1/pools: no pool, want the node's")
	}
	for _, p := range pools.Pools {
		if err := httpPut(ctx, n, "/v1/pools/"+p.Name, map[string]any{"call_capacity_per_node": 1_000_000}); err != nil {
			return err
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
		if err := httpPut(ctx, n, put.path, put.body); err != nil {
			return err
		}
	}
	return nil
}

// httpPut PUTs body (as JSON) to path and wants 200 or 201.
func httpPut(ctx context.Context, n *nodeproc.Node, path string, body any) error {
	r, err := n.Do(ctx, http.MethodPut, path, body, nil)
	if err == nil && r.Status != http.StatusOK && r.Status != http.StatusCreated {
		err = fmt.Errorf("PUT %s: %s", path, r)
	}
	return err
}
