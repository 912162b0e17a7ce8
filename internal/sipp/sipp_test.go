package sipp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/leaktest"
)

// TestMain fails the package if a test leaves a goroutine behind (a
// server's process waiter).
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// statsCSV is a -trace_stat file as SIPp 3.6.1 writes it (its header is
// copied from a real run), with made-up counts: a periodic row, then the
// row at exit.
const statsCSV = "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;CallRate(P);CallRate(C);IncomingCall(P);IncomingCall(C);OutgoingCall(P);OutgoingCall(C);TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);FailedCannotSendMessage(P);FailedCannotSendMessage(C);FailedMaxUDPRetrans(P);FailedMaxUDPRetrans(C);FailedTcpConnect(P);FailedTcpConnect(C);FailedTcpClosed(P);FailedTcpClosed(C);FailedUnexpectedMessage(P);FailedUnexpectedMessage(C);FailedCallRejected(P);FailedCallRejected(C);FailedCmdNotSent(P);FailedCmdNotSent(C);FailedRegexpDoesntMatch(P);FailedRegexpDoesntMatch(C);FailedRegexpShouldntMatch(P);FailedRegexpShouldntMatch(C);FailedRegexpHdrNotFound(P);FailedRegexpHdrNotFound(C);FailedOutboundCongestion(P);FailedOutboundCongestion(C);FailedTimeoutOnRecv(P);FailedTimeoutOnRecv(C);FailedTimeoutOnSend(P);FailedTimeoutOnSend(C);FailedTestDoesntMatch(P);FailedTestDoesntMatch(C);FailedTestShouldntMatch(P);FailedTestShouldntMatch(C);FailedStrcmpDoesntMatch(P);FailedStrcmpDoesntMatch(C);FailedStrcmpShouldntMatch(P);FailedStrcmpShouldntMatch(C);OutOfCallMsgs(P);OutOfCallMsgs(C);DeadCallMsgs(P);DeadCallMsgs(C);Retransmissions(P);Retransmissions(C);AutoAnswered(P);AutoAnswered(C);Warnings(P);Warnings(C);FatalErrors(P);FatalErrors(C);WatchdogMajor(P);WatchdogMajor(C);WatchdogMinor(P);WatchdogMinor(C);CallLength(P);CallLength(C);CallLengthStDev(P);CallLengthStDev(C);\n" +
	"2026-11-29\t01:05:51.998424\t1795914351.998424;2026-11-29\t01:05:51.998424\t1795914351.998424;2026-11-29\t01:05:52.998424\t1795914352.998424;00:00:00;00:00:02;500;0;500;0;0;0;500;500;3;0;497;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;00:00:00:000000;00:00:00:004000;00:00:00:000000;00:00:00:000000;\n" +
	"2026-11-29\t01:05:51.998424\t1795914351.998424;2026-11-29\t01:05:54.004706\t1795914354.004706;2026-11-29\t01:05:54.004862\t1795914354.004862;00:00:00;00:00:02;500;0;498.504;0;0;0;1000;1000;0;0;996;0;4;0;0;0;0;0;0;0;0;0;1;0;0;0;0;0;0;0;0;0;0;0;0;0;3;0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;7;0;0;0;0;0;0;0;0;0;0;00:00:00:000000;00:00:00:004000;00:00:00:000000;00:00:00:000000;\n"

func TestParseStats_LastRowWins(t *testing.T) {
	var r Result
	if err := parseStats(statsCSV, &r); err != nil {
		t.Fatal(err)
	}
	want := Result{
		Total: 1000, Successful: 996, Failed: 4, Current: 0, CallsPerSecond: 498.504,
		Elapsed: 2006438 * time.Microsecond, Retransmissions: 7, TimeoutOnRecv: 3, Unexpected: 1, OutOfCall: 0,
	}
	if r != want {
		t.Errorf("parseStats:\n got %#v\nwant %#v", r, want)
	}
}

func TestParseStats_RejectsWhatSIPpNeverWrites(t *testing.T) {
	header, _, _ := strings.Cut(statsCSV, "\n")
	for _, tc := range []struct {
		name, text string
		want       error
	}{
		{"empty", "", errNoStats},
		{"header only", header + "\n", errNoStats},
		{"no such column", "TotalCallCreated;CurrentCall\n1;0\n", nil},
		{"not a number", strings.Replace(statsCSV, ";996;", ";x;", 1), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Result
			err := parseStats(tc.text, &r)
			if err == nil {
				t.Fatalf("parseStats accepted %q", tc.text)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("parseStats = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestScenarios_CommittedAndDocumented checks the scenarios: each
// constant here names a file in testdata/sipp, each file there has a
// header naming it and saying what it proves, and the <Global> variables
// are the ones RunUAC expects.
func TestScenarios_CommittedAndDocumented(t *testing.T) {
	known := []Scenario{UACInvite, UACInviteAuth, UACCancel, UACExpect, UACMessage, UACMessageAuth, OptionsProbe,
		RegisterAuth, Unregister, UAS, UAS503, UASRing, UASMessage, UASAuth, RegistrarAuth}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "testdata", "sipp", "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[Scenario]bool{}
	for _, f := range files {
		onDisk[Scenario(f)] = true
	}
	for _, s := range known {
		path, err := s.Path()
		if err != nil || !onDisk[Scenario(path)] {
			t.Errorf("constant %q names no file in testdata/sipp (%v)", s, err)
		}
	}
	globals := map[string][]string{
		UACInvite.Name(): {"domain", "from_user"}, UACExpect.Name(): {"domain", "from_user", "expect", "max_forwards"},
		RegisterAuth.Name(): {"domain"}, UAS.Name(): nil, RegistrarAuth.Name(): {"user", "password"},
	}
	for _, f := range files {
		s := Scenario(f)
		t.Run(s.Name(), func(t *testing.T) {
			text, err := s.read()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, s.Name()+".xml: ") || !strings.Contains(text, "Proves") {
				t.Errorf("%s has no header comment naming it and saying what it proves", s)
			}
			got, err := s.Globals()
			if err != nil {
				t.Fatal(err)
			}
			if want, ok := globals[s.Name()]; ok && !slices.Equal(got, want) {
				t.Errorf("Globals() = %v, want %v", got, want)
			}
		})
	}
}

func TestScenarioPath_MissingFileIsAnError(t *testing.T) {
	if _, err := Scenario("testdata/sipp/no_such.xml").Path(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Path() of a missing scenario = %v, want os.ErrNotExist", err)
	}
	abs, err := UAS.Path()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Scenario(abs).Path(); err != nil || got != abs {
		t.Errorf("Path() of an absolute path = %q, %v; want it unchanged", got, err)
	}
}

func TestUACOptionsArgs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario Scenario
		opts     UACOptions
		want     []string // consecutive arguments that must appear
		wantErr  string
	}{
		{
			name: "defaults fill the declared globals", scenario: UACInvite,
			want: []string{"-set", "domain", "10.0.0.9", "-set", "from_user", "sipp", "-m", "1", "-recv_timeout", "10000"},
		},
		{
			name: "max_forwards defaults to 70", scenario: UACExpect,
			opts: UACOptions{Vars: map[string]string{"expect": "404"}},
			want: []string{"-set", "expect", "404", "-set", "max_forwards", "70"},
		},
		{
			name: "a declared global left unset", scenario: UACExpect,
			wantErr: "needs -set expect",
		},
		{
			name: "a variable the scenario does not declare", scenario: UACInvite,
			opts:    UACOptions{Vars: map[string]string{"expect": "404"}},
			wantErr: `declares no variable "expect"`,
		},
		{
			name: "digest uri of an INVITE is its Request-URI", scenario: UACInviteAuth,
			opts: UACOptions{Service: "bob", Domain: "acme.sip.switchboard.test", AuthUser: "alice", AuthPassword: "pw"},
			want: []string{"-au", "alice", "-ap", "pw", "-auth_uri", "bob@acme.sip.switchboard.test"},
		},
		{
			name: "digest uri of a REGISTER is the registrar", scenario: RegisterAuth,
			opts: UACOptions{Service: "alice", Domain: "acme.sip.switchboard.test", AuthPassword: "pw"},
			want: []string{"-s", "alice", "-ap", "pw", "-auth_uri", "acme.sip.switchboard.test"},
		},
		{
			name: "rate, limit, length and timeout", scenario: UACMessage,
			opts: UACOptions{Calls: 500, Rate: 100, Limit: 50, CallLength: 20 * time.Millisecond, Timeout: 1500 * time.Millisecond},
			want: []string{"-m", "500", "-recv_timeout", "10000", "-timeout", "2", "-timeout_error", "-r", "100", "-l", "50", "-d", "20"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.setDefaults("10.0.0.9")
			args, err := opts.args(tc.scenario)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("args() error = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !containsRun(args, tc.want) {
				t.Errorf("args() = %q, want it to contain %q", args, tc.want)
			}
		})
	}
}

func containsRun(args, run []string) bool {
	for i := 0; i+len(run) <= len(args); i++ {
		if slices.Equal(args[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

// recordingTB records what Require does instead of stopping the test.
type recordingTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordingTB) Helper()           {}
func (r *recordingTB) Fatal(args ...any) { r.fatal = fmt.Sprint(args...) }
func (r *recordingTB) Skip(args ...any)  { r.skip = fmt.Sprint(args...) }

func TestRequire_SkipsWithoutSIPpAndFailsUnderCI(t *testing.T) {
	missing := func() (string, error) { return "", ErrNotInstalled }
	for _, tc := range []struct {
		name       string
		ci         bool
		fail, skip bool
	}{
		{"developer machine", false, false, true},
		{"CI", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			require(rec, missing, tc.ci)
			if (rec.fatal != "") != tc.fail || (rec.skip != "") != tc.skip {
				t.Fatalf("require: fatal %q, skip %q; want fatal %v, skip %v", rec.fatal, rec.skip, tc.fail, tc.skip)
			}
			if msg := rec.fatal + rec.skip; !strings.Contains(msg, "install the Debian package sip-tester") {
				t.Errorf("require said %q, want how to install sipp", msg)
			}
		})
	}
	found := func() (string, error) { return "/usr/bin/sipp", nil }
	rec := &recordingTB{TB: t}
	if got := require(rec, found, true); got != "/usr/bin/sipp" || rec.fatal != "" || rec.skip != "" {
		t.Errorf("require with sipp installed = %q (fatal %q, skip %q)", got, rec.fatal, rec.skip)
	}
}

func TestUDPBound_SeesABoundPortAndItsRelease(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if !udpBound("127.0.0.1", port) {
		t.Errorf("udpBound(127.0.0.1, %d) = false while bound", port)
	}
	_ = c.Close()
	if udpBound("127.0.0.1", port) {
		t.Errorf("udpBound(127.0.0.1, %d) = true after close", port)
	}
}

func TestFreeMediaPort_LeavesRoomForVideo(t *testing.T) {
	p, err := freeMediaPort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if udpBound("127.0.0.1", p) || udpBound("127.0.0.1", p+2) {
		t.Errorf("freeMediaPort = %d, but %d or %d is bound", p, p, p+2)
	}
}
