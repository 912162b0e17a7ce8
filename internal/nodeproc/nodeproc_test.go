package nodeproc

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// TestStartCmd_ExitBeforeServing: a node that exits before it serves is an
// error at once (not after ReadyWithin) that shows its output, and one that
// found its HTTP port taken is ErrPortTaken, which Start retries.
func TestStartCmd_ExitBeforeServing(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		portTaken    bool
	}{
		{"any failure", "echo no store here >&2; exit 3", false},
		{"port taken", "echo listen tcp 127.0.0.1:1: bind: address already in use >&2; exit 1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := StartCmd(context.Background(), exec.Command("sh", "-c", tc.script), "127.0.0.1:1", "")
			if err == nil {
				t.Fatal("no error for a process that exited")
			}
			if took := time.Since(start); took > ReadyWithin/2 {
				t.Errorf("took %v to notice the exit", took)
			}
			if errors.Is(err, ErrPortTaken) != tc.portTaken {
				t.Errorf("errors.Is(%v, ErrPortTaken) = %t, want %t", err, !tc.portTaken, tc.portTaken)
			}
			if !tc.portTaken && (!strings.Contains(err.Error(), "no store here") || !strings.Contains(err.Error(), "exit status 3")) {
				t.Errorf("error %q does not show the output and the exit status", err)
			}
		})
	}
}

// TestPoll_ReportsTheLastState: Poll returns once cond holds, and names
// what it waited for and the last state seen when it never does.
func TestPoll_ReportsTheLastState(t *testing.T) {
	n := 0
	if err := Poll(context.Background(), time.Minute, "third call", func() (bool, string) { n++; return n == 3, "" }); err != nil || n != 3 {
		t.Fatalf("Poll: %v after %d calls, want nil after 3", err, n)
	}
	err := Poll(context.Background(), 3*PollInterval, "never", func() (bool, string) { return false, "still 7" })
	if err == nil || !strings.Contains(err.Error(), "never") || !strings.Contains(err.Error(), "still 7") {
		t.Fatalf("Poll: %v; want an error naming what and the last state", err)
	}
}
