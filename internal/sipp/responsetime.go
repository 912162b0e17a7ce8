package sipp

import (
	"fmt"
	"strings"
	"time"
)

// ResponseTimes reads a client run's message trace (Result.Messages, from
// UACOptions.TraceMessages) and returns, for each call that got one, the
// time from the call's first message sent to the first 200 received for
// method (the CSeq's method): INVITE to its 200 after any challenge,
// REGISTER to the 200 after the 401, MESSAGE to its 200. The times come
// in the order the calls started.
//
// SIPp's own response times (rtd, -trace_rtt) count whole milliseconds,
// too coarse for a proxy on the loopback; its message trace stamps each
// message in microseconds as it is sent or received.
func ResponseTimes(messages, method string) ([]time.Duration, error) {
	type call struct {
		start time.Time
		took  time.Duration
		done  bool
	}
	calls := map[string]*call{}
	var order []*call
	for chunk := range strings.SplitSeq(messages, "\n"+traceSeparator) {
		chunk = strings.TrimPrefix(chunk, traceSeparator)
		stampLine, rest, ok := strings.Cut(chunk, "\n")
		if !ok {
			continue
		}
		direction, msg, _ := strings.Cut(rest, "\n")
		// "UDP message sent (561 bytes):", "UDP message received [210] bytes :";
		// not "Unexpected UDP message received:", which has no time.
		sent := strings.Contains(direction, "message sent (")
		if !sent && !strings.Contains(direction, "message received [") {
			continue // not a message in order (SIPp's notes)
		}
		at, err := time.Parse(traceStamp, strings.Join(strings.Fields(strings.Trim(stampLine, "- ")), " "))
		if err != nil {
			return nil, fmt.Errorf("sipp: message trace: time %q: %w", stampLine, err)
		}
		msg = strings.TrimLeft(msg, "\r\n")
		first, _, _ := strings.Cut(msg, "\n")
		id, cseq := header(msg, "Call-ID"), header(msg, "CSeq")
		if id == "" {
			continue
		}
		c := calls[id]
		if c == nil {
			if !sent {
				continue // an answer to a call this trace did not start
			}
			c = &call{start: at}
			calls[id] = c
			order = append(order, c)
		}
		fields := strings.Fields(cseq)
		if !sent && !c.done && strings.HasPrefix(first, "SIP/2.0 200") && len(fields) == 2 && fields[1] == method {
			c.done = true
			c.took = at.Sub(c.start)
		}
	}
	var times []time.Duration
	for _, c := range order {
		if c.done {
			times = append(times, c.took)
		}
	}
	return times, nil
}

// The message trace's separator line, "-----...----- 2026-12-07 06:52:41.178222".
const (
	traceSeparator = "-----------------------------------------------"
	traceStamp     = "2006-01-02 15:04:05.999999"
)

// header is the value of the first header named name (or its compact
// form for Call-ID) in msg, "" when it has none.
func header(msg, name string) string {
	for line := range strings.SplitSeq(msg, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break // the body
		}
		n, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n = strings.TrimSpace(n)
		if strings.EqualFold(n, name) || (name == "Call-ID" && n == "i") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
