package node

import (
	"context"
	"net"
	"strings"
	"testing"
)

// freeAddr is a loopback TCP address free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// A step of New that fails releases what the steps before it acquired:
// here the DNS responder's address is taken, so New fails after it has
// opened the store, bound HTTP and started the actor system and its
// remoting. All of them are released (the leak check of TestMain sees
// their goroutines), and a node started next on the same folder and
// addresses starts.
func TestNew_FailedStepReleasesWhatCameBefore(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	taken := udp.LocalAddr().String()
	dir, httpAddr, actorAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	cfg := DefaultConfig()
	cfg.Name, cfg.DataDir, cfg.HTTPAddr, cfg.ActorAddr = "f", dir, httpAddr, actorAddr
	cfg.GossipAddr, cfg.GossipProfile, cfg.SIPAddr, cfg.DNSAddr = "127.0.0.1:0", "local", "127.0.0.1:0", taken
	cfg.Out = &syncBuffer{}
	if n, err := New(context.Background(), cfg); err == nil {
		_ = n.Close()
		t.Fatalf("New with DNS address %s taken succeeded", taken)
	} else if !strings.Contains(err.Error(), "DNS") {
		t.Fatalf("New failed with %v, want the DNS responder's error", err)
	}
	udp.Close()

	cfg.DNSAddr = "127.0.0.1:0"
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New on the folder and addresses of the failed one: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}
