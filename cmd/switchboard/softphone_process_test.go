package main

// Real softphones against a real node, with the node's default settings:
// baresip (Debian's 1.0, on libre) registers and calls, finding the node
// through the node's own DNS responder as a phone finds its domain, and
// sipsak registers asking for Expires: 15. Under CI=true a missing tool
// fails these tests; elsewhere they skip saying how to install it.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
)

// requireTool returns the path of command name, from Debian package pkg.
// Without it the test is skipped with how to install it, except under
// CI=true, where a skipped test would hide that the phones went untested.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s is not on PATH; install the Debian package: apt-get install --no-install-recommends %s", name, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// softphone is one running baresip.
type softphone struct {
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// baresipModules is where Debian's baresip-core puts its modules.
var baresipModules = []string{"/usr/lib/baresip/modules", "/usr/lib/x86_64-linux-gnu/baresip/modules", "/usr/local/lib/baresip/modules"}

// startBaresip runs baresip as device dev of account, with a config of its
// own in a temporary folder: the node's DNS responder as its only DNS
// server (no outbound proxy, no /etc/hosts), G.711 and a sine wave as the
// microphone. params are added to the account line (";answermode=auto");
// commands are run once it is up (-e).
func startBaresip(t *testing.T, bin string, n *sipNode, account, dev, params string, commands ...string) *softphone {
	t.Helper()
	modules := ""
	for _, m := range baresipModules {
		if _, err := os.Stat(filepath.Join(m, "account.so")); err == nil {
			modules = m
			break
		}
	}
	if modules == "" {
		t.Fatalf("baresip is installed but its modules are in none of %q", baresipModules)
	}
	dir := t.TempDir()
	config := strings.Join([]string{
		"poll_method poll",
		"sip_listen 127.0.0.1:" + freePort(t),
		"dns_server " + n.dns,
		"module_path " + modules,
		"module g711.so",
		"module ausine.so",
		"module_app account.so",
		"module_app menu.so",
		// ausine makes 48 kHz stereo only; baresip resamples for G.711.
		"audio_source ausine,440",
		"audio_player nil,nil",
		"audio_alert nil,nil",
		"ausrc_srate 48000",
		"auplay_srate 48000",
		"ausrc_channels 2",
		"",
	}, "\n")
	// The account line of a phone given only its domain and password.
	accounts := fmt.Sprintf("<sip:%s@%s.%s>;auth_pass=%s-password-1;regint=600%s\n", dev, account, sipZone, dev, params)
	for name, body := range map[string]string{"config": config, "accounts": accounts} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-f", dir}
	for _, c := range commands {
		args = append(args, "-e", c)
	}
	p := &softphone{name: dev, cmd: exec.Command(bin, args...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting baresip: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("output of baresip %s:\n%s", dev, nodeproc.Tail(p.out.String()))
		}
	})
	return p
}

// stop sends SIGTERM (baresip hangs up and unregisters) and waits for the
// exit, killing it after 10 s.
func (p *softphone) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// bindingsJSON is the reply of GET .../groups/{g}/bindings.
type bindingsJSON struct {
	Bindings []struct {
		Device    string `json:"device"`
		Contact   string `json:"contact"`
		ExpiresIn int    `json:"expires_in"`
		UserAgent string `json:"user_agent"`
	} `json:"bindings"`
}

// waitBinding polls the API until device dev of account has a binding
// whose User-Agent contains agent, and returns its expires_in.
func waitBinding(t *testing.T, n *sipNode, account, dev, agent string) int {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		b := decode[bindingsJSON](t, n.call(t, http.MethodGet, "/v1/accounts/"+account+"/groups/hq/bindings", nil))
		for _, x := range b.Bindings {
			if x.Device == dev && strings.Contains(x.UserAgent, agent) {
				return x.ExpiresIn
			}
		}
		select {
		case <-deadline.C:
			t.Fatalf("no binding of %s by %q within 20 s: %+v", dev, agent, b.Bindings)
		case <-tick.C:
		}
	}
}

// TestSoftphone_BaresipRegistersAndCallsWithDefaults: baresip 1.0 failed
// to register ("Register: Function not implemented") when challenged with
// SHA-256 beside MD5, the old default. Offered MD5 alone, two baresips
// register, their bindings show in the API, and alice calls bob, who
// answers automatically, through the node.
func TestSoftphone_BaresipRegistersAndCallsWithDefaults(t *testing.T) {
	t.Parallel()
	bin := requireTool(t, "baresip", "baresip")
	n := sipEndpoints(t, startNode(t, nodeOptions{args: []string{"--name", "soft1", "--data", t.TempDir()}}), "soft1")
	account := "phones" + randomID()
	provisionSIPAccount(t, n, account, "")

	bob := startBaresip(t, bin, n, account, "bob", ";answermode=auto")
	waitBinding(t, n, account, "bob", "baresip")
	alice := startBaresip(t, bin, n, account, "alice", "", "/dial sip:bob@"+account+"."+sipZone)
	waitBinding(t, n, account, "alice", "baresip")
	for _, p := range []*softphone{alice, bob} {
		if s := p.out.String(); strings.Contains(s, "Function not implemented") {
			t.Fatalf("baresip %s could not answer the challenge:\n%s", p.name, nodeproc.Tail(s))
		}
	}

	waitOutput(t, bob.out, "Call established: sip:alice@", 20*time.Second)
	waitOutput(t, alice.out, "Call established: sip:bob@", 20*time.Second)
	// alice hangs up as she quits; bob sees the BYE come through.
	alice.stop(t)
	waitOutput(t, bob.out, "session closed", 20*time.Second)
}

// TestSoftphone_SipsakExpires15RaisedToMinimum: sipsak asks for
// Expires: 15 and gave up on 423; by default the node registers it for
// the 60 s minimum and tells it so in the 200.
func TestSoftphone_SipsakExpires15RaisedToMinimum(t *testing.T) {
	t.Parallel()
	bin := requireTool(t, "sipsak", "sipsak")
	n := sipEndpoints(t, startNode(t, nodeOptions{args: []string{"--name", "soft2", "--data", t.TempDir()}}), "soft2")
	account := "sipsak" + randomID()
	provisionSIPAccount(t, n, account, "")
	domain := account + "." + sipZone

	sipsak := func() (int, string) {
		t.Helper()
		// -p (the node, as outbound proxy) before -s, or sipsak resolves
		// the account's domain, which only the node's DNS knows.
		cmd := exec.Command(bin, "-U", "-C", "sip:alice@127.0.0.1:"+freePort(t), "-p", n.sip, "-s", "sip:alice@"+domain,
			"-u", "alice", "-a", "alice-password-1", "-x", "15", "-vvv")
		cmd.WaitDelay = 5 * time.Second
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := sipsak(); code != 0 || !strings.Contains(out, "expires=60") {
		t.Fatalf("sipsak -x 15 exited %d, want 0 and a 200 with expires=60:\n%s", code, out)
	}
	if in := waitBinding(t, n, account, "alice", "sipsak"); in <= 15 || in > 60 {
		t.Fatalf("binding expires in %d s, want the 60 s minimum", in)
	}

	// An account that asks for strict RFC 3261 answers 423, and sipsak
	// gives up.
	n.put(t, "/v1/accounts/"+account, map[string]any{"strict_min_expires": true})
	if code, out := sipsak(); code == 0 || !strings.Contains(out, "423 Interval Too Brief") {
		t.Fatalf("sipsak -x 15 under strict_min_expires exited %d, want a failure on 423:\n%s", code, out)
	}
}
