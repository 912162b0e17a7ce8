package loglevel

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestHandler_MatchingRecordsTakeTheRulesLevel(t *testing.T) {
	canceled := func(r slog.Record) bool { return strings.Contains(Attr(r, "error"), "code = Canceled") }
	rules := []Rule{
		{Message: "EndpointWriter lost connection", Match: canceled, Level: slog.LevelInfo},
		{Message: "stopped", Level: slog.LevelDebug},
		{Message: "peer *", Match: func(r slog.Record) bool { return Attr(r, "address") == "10.0.0.1:1" }, Level: slog.LevelInfo},
	}
	tests := []struct {
		name  string
		min   slog.Level
		log   func(*slog.Logger)
		wants string // "" when nothing is logged
	}{
		{"expected close is INFO", slog.LevelInfo, func(l *slog.Logger) {
			l.Error("EndpointWriter lost connection", "error", errors.New("rpc error: code = Canceled desc = closing"))
		}, "level=INFO"},
		{"other errors of that message stay ERROR", slog.LevelInfo, func(l *slog.Logger) {
			l.Error("EndpointWriter lost connection", "error", errors.New("rpc error: code = Unavailable"))
		}, "level=ERROR"},
		{"other messages unchanged", slog.LevelInfo, func(l *slog.Logger) { l.Warn("something", "error", "code = Canceled") }, "level=WARN"},
		{"demoted below the handler's level is dropped", slog.LevelInfo, func(l *slog.Logger) { l.Error("stopped") }, ""},
		{"a message prefix and a condition", slog.LevelInfo, func(l *slog.Logger) {
			l.Error("peer failed to connect", "address", "10.0.0.1:1")
		}, "level=INFO"},
		{"a message prefix, the condition unmet", slog.LevelInfo, func(l *slog.Logger) {
			l.Error("peer failed to connect", "address", "10.0.0.2:1")
		}, "level=ERROR"},
		{"attributes given With still reach the output", slog.LevelInfo, func(l *slog.Logger) {
			l.With("component", "protoactor").Error("EndpointWriter lost connection", "error", "code = Canceled")
		}, "component=protoactor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(slog.New(Handler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.min}), rules...)))
			if got := buf.String(); tt.wants == "" && got != "" || !strings.Contains(got, tt.wants) {
				t.Fatalf("logged %q, want a line with %q", got, tt.wants)
			}
		})
	}
}
