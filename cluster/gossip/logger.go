package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// memberlistLogger returns the *log.Logger that memberlist writes to: each
// line goes to l at the level of its "[LEVEL] " prefix, and [DEBUG] lines
// are dropped (memberlist logs every failed join attempt and dynamic port at
// DEBUG; Run logs what matters once).
func memberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(logWriter{l}, "", 0)
}

type logWriter struct{ l *slog.Logger }

var logLevels = []struct {
	prefix []byte
	level  slog.Level
	drop   bool
}{
	{[]byte("[DEBUG] "), slog.LevelDebug, true},
	{[]byte("[INFO] "), slog.LevelInfo, false},
	{[]byte("[WARN] "), slog.LevelWarn, false},
	{[]byte("[ERR] "), slog.LevelError, false},
	{[]byte("[ERROR] "), slog.LevelError, false},
}

// closedConn is in memberlist's errors of sending on its own transport
// after Shutdown closed it ("Failed to send gossip to ...: use of closed
// network connection"): an ordinary drain, logged at INFO.
var closedConn = []byte("use of closed network connection")

// Write logs one line; log.Logger calls it once per Printf.
func (w logWriter) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	level := slog.LevelWarn // an unprefixed line: assume it matters
	for _, ll := range logLevels {
		if bytes.HasPrefix(line, ll.prefix) {
			if ll.drop {
				return len(p), nil
			}
			level = ll.level
			line = line[len(ll.prefix):]
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("memberlist: "))
	if level == slog.LevelError && bytes.Contains(line, closedConn) {
		level = slog.LevelInfo // our own transport closed under it: a leave, or shutdown
	}
	w.l.Log(context.Background(), level, string(line), slog.String("library", "memberlist"))
	return len(p), nil
}
