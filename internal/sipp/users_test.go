package sipp

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/credential"
)

// TestUACInviteAuthUsers_EachCallIsTheNextDevice: with an injection file
// of two devices, the calls alternate between them: From user and digest
// username are the call's device, and the digest response is computed
// from that device's password; ResponseTimes gives one time per call.
func TestUACInviteAuthUsers_EachCallIsTheNextDevice(t *testing.T) {
	t.Parallel()
	const realm = "switchboard.test"
	users := []User{{"d0", "password zero"}, {"d1", "password one"}}
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := WriteUsers(file, users); err != nil {
		t.Fatal(err)
	}
	uas := StartUAS(t, UASAuth, "127.0.0.1:0")
	res := runUAC(t, UACInviteAuthUsers, uas.Addr, UACOptions{
		Service: "voicemail", Domain: testDomain, Users: file,
		Calls: 4, Rate: 20, TraceMessages: true,
	})
	wantAll(t, "uac_invite_auth_users", res, 4)

	auths := proxyAuthRE.FindAllStringSubmatch(res.Messages, -1)
	if len(auths) != 4 {
		t.Fatalf("%d Proxy-Authorization headers, want 4:\n%s", len(auths), res.Messages)
	}
	for i, m := range auths {
		u := users[i%2]
		p := map[string]string{}
		for _, kv := range digestParamRE.FindAllStringSubmatch(m[1], -1) {
			p[kv[1]] = kv[2]
		}
		if p["username"] != u.Name {
			t.Errorf("call %d: digest username %q, want %q (the injection file's line %d)", i, p["username"], u.Name, i%2+1)
		}
		if want := "sip:voicemail@" + testDomain; p["uri"] != want {
			t.Errorf("call %d: digest uri %q, want the Request-URI %q", i, p["uri"], want)
		}
		ha1 := hex.EncodeToString(credential.Derive(u.Name, realm, u.Password).MD5)
		want := md5hex(strings.Join([]string{ha1, p["nonce"], p["nc"], p["cnonce"], p["qop"], md5hex("INVITE:" + p["uri"])}, ":"))
		if p["response"] != want {
			t.Errorf("call %d: digest response %s, want %s from %s's password", i, p["response"], want, u.Name)
		}
	}
	if !strings.Contains(res.Messages, "From: <sip:d1@"+testDomain+">") {
		t.Errorf("no call from d1, the injection file's second device:\n%s", res.Messages)
	}

	times, err := ResponseTimes(res.Messages, "INVITE")
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 4 {
		t.Fatalf("ResponseTimes: %d times, want one per call (4): %v", len(times), times)
	}
	for _, d := range times {
		if d <= 0 || d > 5*time.Second {
			t.Errorf("response time %s: want a positive time under the receive timeout", d)
		}
	}
}

func TestRegisterAuthUsers_AgainstRegistrar_RFC3261_22_4(t *testing.T) {
	t.Parallel()
	const user, password = "alice", "correct horse battery"
	for _, tc := range []struct {
		name     string
		password string
		ok       bool
	}{
		{"register", password, true},
		{"register with a wrong password", "wrong horse battery", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "users.csv")
			if err := WriteUsers(file, []User{{user, tc.password}}); err != nil {
				t.Fatal(err)
			}
			reg := StartUAS(t, RegistrarAuth, "127.0.0.1:0", "-set", "user", user, "-set", "password", password)
			res := runUAC(t, RegisterAuthUsers, reg.Addr, UACOptions{
				Domain: testDomain, Users: file, Calls: 2, Rate: 20, RecvTimeout: time.Second,
			})
			if tc.ok {
				wantAll(t, "register_auth_users", res, 2)
				return
			}
			if res.Failed != 2 {
				t.Errorf("wrong password: %s; want 2 failed calls", res)
			}
		})
	}
}

func TestWriteUsers_RefusesWhatSIPpWouldSplit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := WriteUsers(filepath.Join(dir, "a"), []User{{"a;b", "pw"}}); err == nil {
		t.Error("a name with ';' was written")
	}
	if err := WriteUsers(filepath.Join(dir, "b"), nil); err == nil {
		t.Error("an empty injection file was written")
	}
	if err := WriteUsers(filepath.Join(dir, "c"), []User{{"a", "p1"}, {"b", "p2"}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "SEQUENTIAL\na;p1\nb;p2\n"; got != want {
		t.Errorf("injection file %q, want %q", got, want)
	}
}

// TestResponseTimes_FirstSentToThe200OfTheMethod reads a trace in SIPp
// 3.6's format: a call's time runs from its first message sent to the
// 200 whose CSeq names the method (not the 407 before it, not the 200 of
// its BYE); a call with no such 200 has no time; SIPp's note of an
// unexpected message, which carries no time, is no message of the call.
func TestResponseTimes_FirstSentToThe200OfTheMethod(t *testing.T) {
	t.Parallel()
	msg := func(stamp, dir, first, callID, cseq string) string {
		return traceSeparator + " 2026-12-07 " + stamp + "\n" + dir + "\n\n" + first + "\nVia: SIP/2.0/UDP 127.0.0.1:5060\nCall-ID: " + callID + "\nCSeq: " + cseq + "\nContent-Length: 0\n\n"
	}
	const sent, recv = "UDP message sent (306 bytes):", "UDP message received [210] bytes :"
	trace := msg("06:52:41.100000", sent, "INVITE sip:a@b SIP/2.0", "1-x", "1 INVITE") +
		msg("06:52:41.100300", recv, "SIP/2.0 407 Proxy Authentication Required", "1-x", "1 INVITE") +
		msg("06:52:41.100400", sent, "INVITE sip:a@b SIP/2.0", "1-x", "2 INVITE") +
		msg("06:52:41.101000", sent, "INVITE sip:a@b SIP/2.0", "2-x", "1 INVITE") +
		traceSeparator + "\nUnexpected UDP message received:\n\nSIP/2.0 180 Ringing\nCall-ID: 2-x\nCSeq: 1 INVITE\n\n" +
		msg("06:52:41.101250", recv, "SIP/2.0 200 OK", "1-x", "2 INVITE") +
		msg("06:52:41.102000", recv, "SIP/2.0 200 OK", "3-x", "2 INVITE") + // not started here
		msg("06:52:41.103000", recv, "SIP/2.0 200 OK", "1-x", "3 BYE") +
		msg("06:52:41.104000", recv, "SIP/2.0 200 OK", "2-x", "1 BYE") // 2-x never got its INVITE answered
	times, err := ResponseTimes(trace, "INVITE")
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 1 || times[0] != 1250*time.Microsecond {
		t.Errorf("ResponseTimes = %v, want [1.25ms]", times)
	}
	if _, err := ResponseTimes(traceSeparator+" yesterday\n"+sent+"\n", "INVITE"); err == nil {
		t.Error("a separator with no time was read")
	}
}
