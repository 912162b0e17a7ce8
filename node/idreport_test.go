package node

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// TestNode_Issue9_ReportsStoredIdsThatBreakTheLabelRuleAtStart: issue 9,
// hole 5. Accounts and feature servers stored before account and feature
// ids had to be one DNS label are logged when the node starts, before it
// serves.
func TestNode_Issue9_ReportsStoredIdsThatBreakTheLabelRuleAtStart(t *testing.T) {
	dir := t.TempDir()
	s, err := persistence.OpenBadger(dir, persistence.DefaultBadgerConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"acct/acme", "acct/bfs.beta", "acct/bfs.beta/grp/hq", "feat/sms.gw", "feat/vm"} {
		if _, err := s.Put(context.Background(), k, nil, persistence.MustNotExist); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Name, cfg.HTTPAddr, cfg.DataDir = "ids", "127.0.0.1:0", dir
	cfg.GossipAddr, cfg.ActorAddr, cfg.GossipProfile = "127.0.0.1:0", "127.0.0.1:0", "local"
	cfg.SIPAddr, cfg.DNSAddr = "127.0.0.1:0", "127.0.0.1:0"
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for n.State() != StateServing {
		if time.Now().After(deadline) {
			t.Fatal("the node never served")
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	var bad []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "breaks the DNS label rule") {
			bad = append(bad, line)
		}
	}
	if len(bad) != 2 || !strings.Contains(bad[0], "id=bfs.beta") || !strings.Contains(bad[1], "id=sms.gw") {
		t.Fatalf("start-up report: %q\nall logs:\n%s", bad, logs.String())
	}
}
