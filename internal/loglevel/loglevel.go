// Package loglevel holds the slog handlers that set the level of what a
// library logs: AtLeast keeps a chatty library to its warnings, and the
// rule handler logs, at the level they deserve, records a library logs too
// high: an expected event (a peer that left closing its connection) is
// INFO, not ERROR. It is the one home of such rules; the rules themselves
// live with whoever hands the library its logger.
package loglevel

import (
	"context"
	"log/slog"
	"strings"
)

// Rule matches a record by its message and, optionally, a condition, and
// gives the level the record is logged at instead.
type Rule struct {
	Message string                 // the record's message; a trailing "*" matches any message it starts
	Match   func(slog.Record) bool // nil: every record with Message
	Level   slog.Level             // the level a matching record is logged at
}

func (r Rule) matches(rec slog.Record) bool {
	prefix, wild := strings.CutSuffix(r.Message, "*")
	if wild && !strings.HasPrefix(rec.Message, prefix) || !wild && rec.Message != r.Message {
		return false
	}
	return r.Match == nil || r.Match(rec)
}

// Attr is the text of a record's attribute key ("" when it has none).
func Attr(rec slog.Record, key string) string {
	var v string
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// Handler returns h with rules applied: a record matching a rule is
// logged at the rule's level (and dropped when h does not log that level);
// others go to h unchanged.
func Handler(h slog.Handler, rules ...Rule) slog.Handler {
	return handler{h: h, rules: rules}
}

type handler struct {
	h     slog.Handler
	rules []Rule
}

func (f handler) Enabled(ctx context.Context, l slog.Level) bool { return f.h.Enabled(ctx, l) }

func (f handler) Handle(ctx context.Context, r slog.Record) error {
	for _, rule := range f.rules {
		if rule.matches(r) {
			if !f.h.Enabled(ctx, rule.Level) {
				return nil
			}
			r.Level = rule.Level
			break
		}
	}
	return f.h.Handle(ctx, r)
}

func (f handler) WithAttrs(a []slog.Attr) slog.Handler {
	return handler{h: f.h.WithAttrs(a), rules: f.rules}
}

func (f handler) WithGroup(n string) slog.Handler {
	return handler{h: f.h.WithGroup(n), rules: f.rules}
}

// AtLeast passes to h the records at min and above: how a library that
// logs routine events at INFO is kept to its warnings.
func AtLeast(h slog.Handler, min slog.Level) slog.Handler { return atLeast{h: h, min: min} }

type atLeast struct {
	h   slog.Handler
	min slog.Level
}

func (f atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.h.Enabled(ctx, l)
}
func (f atLeast) Handle(ctx context.Context, r slog.Record) error { return f.h.Handle(ctx, r) }
func (f atLeast) WithAttrs(a []slog.Attr) slog.Handler {
	return atLeast{h: f.h.WithAttrs(a), min: f.min}
}
func (f atLeast) WithGroup(n string) slog.Handler { return atLeast{h: f.h.WithGroup(n), min: f.min} }
