package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one entry of an account's stream.
type Event struct {
	// Seq is the event's place in its account's stream: 1, 2, 3, ...
	// without gaps. Assigned by Append.
	Seq uint64 `json:"seq"`
	// Account owns the stream. Set by Append.
	Account string `json:"account"`
	// Type names what happened, dotted, most general first:
	// "fraud.incident.opened", "call.ringing", "context.changed". Filters
	// match it by prefix. See CheckType for the rule.
	Type string `json:"type"`
	// Time is when it happened; Append sets it from the clock when zero.
	Time time.Time `json:"time"`
	// ID is unique across streams, for de-duplication by webhook
	// receivers (a delivery may repeat). Append draws a random one when
	// empty.
	ID string `json:"id"`
	// Call and User are the call id and the user (device) the event is
	// about, when it is about one; subscribers filter on them.
	Call string `json:"call,omitempty"`
	User string `json:"user,omitempty"`
	// Data is the event's JSON payload, stored compacted. Optional.
	Data json.RawMessage `json:"data,omitempty"`
}

// Limits on an event's fields. The type rule keeps an SSE "event:" line
// and a metric-free log line safe; ids are bounded like the store's keys.
const (
	maxTypeLen = 64
	maxIDLen   = 256
)

// CheckType reports whether t is a valid event type: 1 to 64 characters of
// lower-case letters, digits, '.', '_' and '-', starting with a letter or
// digit.
func CheckType(t string) error {
	if t == "" || len(t) > maxTypeLen {
		return fmt.Errorf("%w: type %q must be 1 to %d characters, e.g. \"call.ringing\"", ErrInvalid, t, maxTypeLen)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("%w: type %q may hold only a-z, 0-9, '.', '_' and '-', starting with a letter or digit", ErrInvalid, t)
		}
	}
	return nil
}

// checkAccount enforces the account rule of the store keys built from it:
// 1 to 128 bytes of printable UTF-8 without '/'.
func checkAccount(a string) error {
	if a == "" || len(a) > 128 || strings.ContainsRune(a, '/') || !printable(a) {
		return fmt.Errorf("%w: account %q must be 1 to 128 printable characters without '/'", ErrInvalid, a)
	}
	return nil
}

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// normalize checks e's fields and compacts its data.
func (e *Event) normalize(maxBytes int) error {
	if err := CheckType(e.Type); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"id", e.ID}, {"call", e.Call}, {"user", e.User}} {
		if len(f.v) > maxIDLen || !printable(f.v) {
			return fmt.Errorf("%w: %s %q must be at most %d printable characters", ErrInvalid, f.name, f.v, maxIDLen)
		}
	}
	if len(e.Data) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Data); err != nil {
			return fmt.Errorf("%w: data is not JSON: %v", ErrInvalid, err)
		}
		e.Data = buf.Bytes()
		if bytes.Equal(e.Data, []byte("null")) {
			e.Data = nil
		}
	}
	if n := len(e.Data) + len(e.Type) + len(e.ID) + len(e.Call) + len(e.User); n > maxBytes {
		return fmt.Errorf("%w: event of %d bytes is over the %d allowed; put a reference in data instead", ErrTooLarge, n, maxBytes)
	}
	return nil
}

// Filter selects events. The zero Filter selects every event; each set
// field narrows the selection (and).
type Filter struct {
	// Types are type prefixes: "fraud." selects every fraud event,
	// "call.ringing" that type (and any "call.ringing..."). Any one
	// matching selects the event.
	Types []string
	// User and Call select events about that user or that call.
	User, Call string
}

// Match reports whether f selects e.
func (f Filter) Match(e Event) bool {
	if f.User != "" && e.User != f.User || f.Call != "" && e.Call != f.Call {
		return false
	}
	return len(f.Types) == 0 || slices.ContainsFunc(f.Types, func(t string) bool { return strings.HasPrefix(e.Type, t) })
}
