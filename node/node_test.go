package node

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/leaktest"
	"github.com/switchboard-pbx/switchboard/internal/syncbuf"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"public bind without token", func(c *Config) { c.HTTPAddr = "0.0.0.0:8080" }, "admin token"},
		{"public bind with token", func(c *Config) { c.HTTPAddr = "0.0.0.0:8080"; c.AdminToken = "t" }, ""},
		{"bad http", func(c *Config) { c.HTTPAddr = "8080" }, "--http"},
		{"mysql store", func(c *Config) { c.StoreURL = "mysql://x" }, "postgres://"},
		{"bad zone", func(c *Config) { c.Zone = "a..b" }, "--zone"},
		{"no store", func(c *Config) { c.DataDir = "" }, "--data"},
		{"short lease", func(c *Config) { c.LeaseTTL, c.LeaseRenew = 2*time.Second, 100*time.Millisecond }, ""},
		{"lease renewed too rarely", func(c *Config) { c.LeaseTTL, c.LeaseRenew = 5*time.Second, 3*time.Second }, "--lease-renew"},
		{"no lease", func(c *Config) { c.LeaseTTL = 0 }, "--lease-ttl"},
		{"no call length limit", func(c *Config) { c.MaxCallDuration = 0 }, ""},
		{"negative call length", func(c *Config) { c.MaxCallDuration = -time.Second }, "--max-call-duration"},
		{"negative sweep grace", func(c *Config) { c.CallSweepGrace = -time.Second }, "--call-sweep-grace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// syncBuffer is written by goroutines while the test reads it.
type syncBuffer = syncbuf.Buffer

func startNode(t *testing.T, name, dir string, demo bool) (*Node, context.CancelFunc, <-chan error, *syncBuffer) {
	t.Helper()
	return startNodeWith(t, name, dir, demo, nil)
}

// startNodeWith is startNode with the Config changed by mod.
func startNodeWith(t *testing.T, name, dir string, demo bool, mod func(*Config)) (*Node, context.CancelFunc, <-chan error, *syncBuffer) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name, cfg.HTTPAddr, cfg.DataDir, cfg.Demo = name, "127.0.0.1:0", dir, demo
	cfg.GossipAddr, cfg.ActorAddr, cfg.GossipProfile = "127.0.0.1:0", "127.0.0.1:0", "local"
	cfg.SIPAddr, cfg.DNSAddr = "127.0.0.1:0", "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	out := &syncBuffer{}
	cfg.Out = out
	ctx, cancel := context.WithCancel(context.Background())
	n, err := New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		done <- n.Run(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	deadline := time.Now().Add(10 * time.Second)
	for n.State() != StateServing {
		if time.Now().After(deadline) {
			t.Fatalf("node %s never served", name)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	return n, cancel, done, out
}

func TestNode_DataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	_, cancel, done, _ := startNode(t, "a", dir, true)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n, _, _, _ := startNode(t, "a2", dir, false)
	res, err := http.Get("http://" + n.HTTPAddr() + "/v1/accounts/acme/devices/bob")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("device after restart: %d", res.StatusCode)
	}
}

// A fresh node lists its SIP and DNS series at 0 before any traffic, so
// that a dashboard's rate() and an alert on them work from the start.
func TestNode_MetricsListedAtZeroBeforeTraffic(t *testing.T) {
	n, _, _, _ := startNode(t, "m", t.TempDir(), false)
	res, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, series := range []string{
		`switchboard_sip_requests_total{method="INVITE"} 0`,
		`switchboard_sip_responses_total{code="401",method="REGISTER"} 0`,
		`switchboard_sip_calls_total{disposition="completed"} 0`,
		`switchboard_sip_auth_failures_total{reason="bad_response"} 0`,
		`switchboard_sip_dropped_total{reason="banned"} 0`,
		`switchboard_sip_probes_total{result="failed"} 0`,
		`switchboard_sip_fraud_checks_total{kind="message",verdict="refuse"} 0`,
		`switchboard_sip_queued_messages_total{result="delivered"} 0`,
		`switchboard_dns_queries_total{qtype="A",rcode="NOERROR"} 0`,
		`switchboard_dns_queries_total{qtype="SRV",rcode="NXDOMAIN"} 0`,
	} {
		if !strings.Contains(string(body), "\n"+series+"\n") {
			t.Errorf("/metrics of a fresh node lacks %s", series)
		}
	}
}
