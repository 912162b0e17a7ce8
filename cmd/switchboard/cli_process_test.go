//go:build unix

package main

import (
	"net"
	"strings"
	"testing"
	"time"
)

// switchboard --version prints the version, as switchboard version does.
func TestProcess_VersionFlag(t *testing.T) {
	t.Parallel()
	flag := runToExit(t, 10*time.Second, nil, "--version")
	sub := runToExit(t, 10*time.Second, nil, "version")
	if flag.code != 0 || sub.code != 0 || flag.stdout != sub.stdout || strings.TrimSpace(flag.stdout) == "" {
		t.Fatalf("--version: %d %q %q; version: %d %q", flag.code, flag.stdout, flag.stderr, sub.code, sub.stdout)
	}
}

// A listen address another program holds stops the node with one line
// that names the flag to change.
func TestProcess_AddressTakenNamesTheFlag(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"http", "sip", "dns", "gossip", "actor"} {
		t.Run(flag, func(t *testing.T) {
			addr := holdAddr(t, flag == "sip" || flag == "dns")
			cmd := []string{"node", "--data", t.TempDir()}
			for _, f := range []string{"http", "sip", "dns", "gossip", "actor"} {
				a := "127.0.0.1:0"
				if f == flag {
					a = addr
				}
				cmd = append(cmd, "--"+f, a)
			}
			res := runToExit(t, 30*time.Second, nil, cmd...)
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			last := lines[len(lines)-1]
			want := "switchboard: --" + flag + " " + addr + ": address already in use; choose a free one with --" + flag
			if res.code != 1 || !strings.HasPrefix(last, want) {
				t.Fatalf("exit %d, last line %q; want exit 1 and a line starting %q", res.code, last, want)
			}
		})
	}
}

// holdAddr binds a loopback port for the rest of the test: UDP (the SIP
// edge and the DNS responder bind UDP first) or TCP.
func holdAddr(t *testing.T, udp bool) string {
	t.Helper()
	if udp {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String()
}
