package sipp

import (
	"context"
	"crypto/md5" //nolint:gosec // RFC 2617 digest, what SIPp answers with
	"encoding/hex"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/credential"
)

// These tests run the committed scenarios against each other, SIPp to
// SIPp on the loopback: they check the scenarios (each pair ends every
// call successfully, each refusal fails the calls it should) and this
// package's handling of ports, counts and exit statuses.

const (
	testDomain = "acme.sip.switchboard.test"
	testCalls  = 5
)

// runUAC runs a client scenario and fails the test if SIPp itself failed.
func runUAC(t *testing.T, s Scenario, target string, opts UACOptions) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, err := RunUAC(ctx, s, target, opts)
	if err != nil {
		t.Fatalf("%s against %s: %v\n%s\n%s", s.Name(), target, err, res.Output, res.Errors)
	}
	return res
}

// wantAll checks that all of n calls succeeded.
func wantAll(t *testing.T, side string, res Result, n int) {
	t.Helper()
	if res.Total != n || res.Successful != n || res.Failed != 0 {
		t.Errorf("%s: %s; want %d successful calls and no failure\n%s\n%s", side, res, n, res.Output, res.Errors)
	}
}

// TestScenarioPairs_EveryCallSucceeds runs each client scenario against
// the server scenario written for it: every call ends successfully on
// both sides.
func TestScenarioPairs_EveryCallSucceeds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		uac, uas Scenario
		opts     UACOptions
	}{
		{
			name: "RFC3261_13_basic_call", uac: UACInvite, uas: UAS,
			opts: UACOptions{Service: "voicemail", FromUser: "alice", CallLength: 10 * time.Millisecond},
		},
		{
			name: "RFC3428_message", uac: UACMessage, uas: UASMessage,
			opts: UACOptions{Service: "bob", FromUser: "alice"},
		},
		{
			name: "RFC3261_9_cancel", uac: UACCancel, uas: UASRing,
			opts: UACOptions{Service: "bob", CallLength: 20 * time.Millisecond},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			uas := StartUAS(t, tc.uas, "127.0.0.1:0")
			opts := tc.opts
			opts.Domain, opts.Calls, opts.Rate = testDomain, testCalls, 50
			res := runUAC(t, tc.uac, uas.Addr, opts)
			wantAll(t, tc.uac.Name(), res, testCalls)
			if res.ExitCode != exitAllSuccessful {
				t.Errorf("exit status %d, want %d", res.ExitCode, exitAllSuccessful)
			}
			server, err := uas.Stop()
			if err != nil {
				t.Fatal(err)
			}
			wantAll(t, tc.uas.Name(), server, testCalls)
		})
	}
}

// TestUAS503_FailsCallsAndMatchesExpect: a refused call is a failed call
// to uac_invite (its failure count is what a benchmark reads), and a
// successful one to uac_expect when the refusal is the one expected, a
// failed one when it is not.
func TestUAS503_FailsCallsAndMatchesExpect(t *testing.T) {
	t.Parallel()
	uas := StartUAS(t, UAS503, "127.0.0.1:0")
	base := UACOptions{Service: "bob", Domain: testDomain, Calls: 3, Rate: 50, RecvTimeout: time.Second}

	res := runUAC(t, UACInvite, uas.Addr, base)
	if res.Failed != 3 || res.Successful != 0 || res.ExitCode != exitSomeFailed {
		t.Errorf("uac_invite against uas_503: %s; want 3 failed calls and exit %d", res, exitSomeFailed)
	}

	expect := base
	expect.Vars = map[string]string{"expect": "503"}
	wantAll(t, "uac_expect 503", runUAC(t, UACExpect, uas.Addr, expect), 3)

	expect.Vars = map[string]string{"expect": "404"}
	if res := runUAC(t, UACExpect, uas.Addr, expect); res.Failed != 3 {
		t.Errorf("uac_expect 404 against uas_503: %s; want 3 failed calls", res)
	}
}

// TestOptionsProbe_AnsweredDuringCalls_RFC3261_11_2: every server
// scenario answers OPTIONS, even while it is in the middle of calls, so a
// proxy probing its feature servers disturbs nothing.
func TestOptionsProbe_AnsweredDuringCalls_RFC3261_11_2(t *testing.T) {
	t.Parallel()
	for _, s := range []Scenario{UAS, UASMessage, UAS503, UASRing} {
		t.Run(s.Name(), func(t *testing.T) {
			uas := StartUAS(t, s, "127.0.0.1:0")
			var wg sync.WaitGroup
			var calls Result
			var callsErr error
			if s == UAS {
				// Calls held open for 300 ms while the probes arrive.
				wg.Go(func() {
					calls, callsErr = RunUAC(t.Context(), UACInvite, uas.Addr, UACOptions{
						Service: "bob", Domain: testDomain, Calls: 4, Rate: 20, CallLength: 300 * time.Millisecond,
					})
				})
			}
			probes := runUAC(t, OptionsProbe, uas.Addr, UACOptions{Domain: uas.Addr, Calls: 6, Rate: 30})
			wg.Wait()
			wantAll(t, "uac_options", probes, 6)
			if s == UAS {
				if callsErr != nil {
					t.Fatalf("uac_invite beside the probes: %v\n%s", callsErr, calls.Output)
				}
				wantAll(t, "uac_invite beside the probes", calls, 4)
			}
		})
	}
}

func TestRegisterAuth_AgainstRegistrar_RFC3261_22_4(t *testing.T) {
	t.Parallel()
	const user, password = "alice", "correct horse battery"
	for _, tc := range []struct {
		name     string
		scenario Scenario
		password string
		ok       bool
	}{
		{"register", RegisterAuth, password, true},
		{"unregister", Unregister, password, true},
		{"register with a wrong password", RegisterAuth, "wrong horse battery", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := StartUAS(t, RegistrarAuth, "127.0.0.1:0", "-set", "user", user, "-set", "password", password)
			res := runUAC(t, tc.scenario, reg.Addr, UACOptions{
				Service: user, Domain: testDomain, AuthPassword: tc.password,
				Calls: 2, Rate: 20, RecvTimeout: time.Second,
			})
			server, err := reg.Stop()
			if err != nil {
				t.Fatal(err)
			}
			if tc.ok {
				wantAll(t, tc.scenario.Name(), res, 2)
				wantAll(t, "registrar", server, 2)
				return
			}
			if res.Failed != 2 || server.Failed != 2 {
				t.Errorf("wrong password: client %s, registrar %s; want 2 failed calls on each side", res, server)
			}
		})
	}
}

var proxyAuthRE = regexp.MustCompile(`(?m)^Proxy-Authorization: Digest ([^\r\n]*)`)
var digestParamRE = regexp.MustCompile(`(\w+)="?([^",]*)"?`)

// TestUACInviteAuth_DigestResponse_RFC2617_3_2_2 checks the digest SIPp
// computes against HA1 from the credential package, the one Switchboard
// stores, and that its uri is the Request-URI (RunUAC's -auth_uri).
func TestUACInviteAuth_DigestResponse_RFC2617_3_2_2(t *testing.T) {
	t.Parallel()
	const user, password, realm = "alice", "correct horse battery", "switchboard.test"
	uas := StartUAS(t, UASAuth, "127.0.0.1:0")
	res := runUAC(t, UACInviteAuth, uas.Addr, UACOptions{
		Service: "voicemail", Domain: testDomain, FromUser: user,
		AuthUser: user, AuthPassword: password, TraceMessages: true,
	})
	wantAll(t, "uac_invite_auth", res, 1)

	m := proxyAuthRE.FindStringSubmatch(res.Messages)
	if m == nil {
		t.Fatalf("no Proxy-Authorization among the messages:\n%s", res.Messages)
	}
	p := map[string]string{}
	for _, kv := range digestParamRE.FindAllStringSubmatch(m[1], -1) {
		p[kv[1]] = kv[2]
	}
	if p["username"] != user || p["realm"] != realm || p["algorithm"] != "MD5" {
		t.Errorf("Proxy-Authorization %q: want username %s, realm %s, algorithm MD5", m[1], user, realm)
	}
	if want := "sip:voicemail@" + testDomain; p["uri"] != want {
		t.Errorf("digest uri %q, want the Request-URI %q", p["uri"], want)
	}
	ha1 := hex.EncodeToString(credential.Derive(user, realm, password).MD5)
	ha2 := md5hex("INVITE:" + p["uri"])
	want := md5hex(strings.Join([]string{ha1, p["nonce"], p["nc"], p["cnonce"], p["qop"], ha2}, ":"))
	if p["response"] != want {
		t.Errorf("digest response %s, want %s from credential.Derive's HA1", p["response"], want)
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s)) //nolint:gosec // RFC 2617 digest
	return hex.EncodeToString(sum[:])
}

func TestRunUAC_NoAnswerIsAFailedCallNotAHang(t *testing.T) {
	t.Parallel()
	Require(t)
	// A port nothing listens on (taken, then released).
	port, err := freeUDPPort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	start := time.Now()
	res, err := RunUAC(t.Context(), UACMessage, target, UACOptions{RecvTimeout: 500 * time.Millisecond, Timeout: 20 * time.Second})
	if err != nil && !errors.Is(err, ErrTimeout) {
		t.Fatalf("RunUAC: %v", err)
	}
	if res.Failed != 1 || res.Successful != 0 {
		t.Errorf("a MESSAGE to nobody: %s (err %v); want 1 failed call", res, err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("a MESSAGE to nobody took %s to fail, want about its receive timeout", d)
	}
}

func TestStart_ReleasesItsPortOnStop(t *testing.T) {
	t.Parallel()
	Require(t)
	p, err := Start(t.Context(), UAS, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ip, portText, _ := net.SplitHostPort(p.Addr)
	port, _ := strconv.Atoi(portText)
	if port == 0 || !udpBound(ip, port) {
		t.Fatalf("Start returned %s, not a bound port", p.Addr)
	}
	if _, err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if udpBound(ip, port) {
		t.Errorf("%s still bound after Stop", p.Addr)
	}
	if _, err := p.Stop(); err != nil {
		t.Errorf("a second Stop: %v", err)
	}
}
