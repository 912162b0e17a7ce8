package sipp

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Result is what one SIPp run did, from its statistics file.
type Result struct {
	Total           int           // calls created (TotalCallCreated)
	Successful      int           // calls that reached the end of the scenario
	Failed          int           // calls that failed, whatever the cause
	Current         int           // calls still open when SIPp exited
	CallsPerSecond  float64       // calls created per second over the run (CallRate(C))
	Elapsed         time.Duration // from SIPp's start to its last statistics dump
	Retransmissions int           // messages SIPp sent again (Retransmissions(C))
	TimeoutOnRecv   int           // calls failed on a receive timeout (FailedTimeoutOnRecv(C))
	Unexpected      int           // calls failed on an unexpected message (FailedUnexpectedMessage(C))
	OutOfCall       int           // messages that matched no call (OutOfCallMsgs(C))

	ExitCode int    // SIPp's exit status: 0 all calls successful, 1 some failed
	Output   string // the end of SIPp's standard error and its final screens
	Errors   string // the start of SIPp's error log (-trace_err), if any
	Messages string // every message sent and received, when UACOptions.TraceMessages
}

// String is a one-line summary for logs and test failures.
func (r Result) String() string {
	return fmt.Sprintf("%d calls: %d successful, %d failed, %d open; %.1f calls/s over %s; %d retransmissions; exit %d",
		r.Total, r.Successful, r.Failed, r.Current, r.CallsPerSecond, r.Elapsed.Round(time.Millisecond), r.Retransmissions, r.ExitCode)
}

// errNoStats is returned when SIPp left no statistics row: it stopped
// before its first dump.
var errNoStats = errors.New("sipp: the statistics file has no data row")

// parseStats reads the last row of a -trace_stat file (";"-separated, a
// header row, then one row per -fd period and one at exit) into r.
func parseStats(text string, r *Result) error {
	var lines []string
	for line := range strings.SplitSeq(text, "\n") {
		if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) < 2 {
		return errNoStats
	}
	header := strings.Split(lines[0], ";")
	row := strings.Split(lines[len(lines)-1], ";")
	col := make(map[string]string, len(header))
	for i, name := range header {
		if i < len(row) {
			col[name] = strings.TrimSpace(row[i])
		}
	}
	ints := []struct {
		name string
		dst  *int
	}{
		{"TotalCallCreated", &r.Total},
		{"SuccessfulCall(C)", &r.Successful},
		{"FailedCall(C)", &r.Failed},
		{"CurrentCall", &r.Current},
		{"Retransmissions(C)", &r.Retransmissions},
		{"FailedTimeoutOnRecv(C)", &r.TimeoutOnRecv},
		{"FailedUnexpectedMessage(C)", &r.Unexpected},
		{"OutOfCallMsgs(C)", &r.OutOfCall},
	}
	for _, f := range ints {
		v, ok := col[f.name]
		if !ok {
			return fmt.Errorf("sipp: the statistics file has no column %s", f.name)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("sipp: statistics column %s: %w", f.name, err)
		}
		*f.dst = n
	}
	rate, err := strconv.ParseFloat(col["CallRate(C)"], 64)
	if err != nil {
		return fmt.Errorf("sipp: statistics column CallRate(C): %w", err)
	}
	r.CallsPerSecond = rate
	start, err1 := stamp(col["StartTime"])
	now, err2 := stamp(col["CurrentTime"])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	r.Elapsed = now.Sub(start)
	return nil
}

// stamp reads SIPp's time columns, "2026-11-29\t01:05:51.998424\t1795914351.998424":
// the last field is Unix time in seconds with microseconds.
func stamp(v string) (time.Time, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return time.Time{}, fmt.Errorf("sipp: empty time in the statistics file")
	}
	secs, err := strconv.ParseFloat(fields[len(fields)-1], 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("sipp: time %q in the statistics file: %w", v, err)
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(math.Round(frac*1e6))*1e3), nil
}
