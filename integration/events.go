package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// localQuery is a local event stream request: where to resume and what
// to select.
type localQuery struct {
	after     uint64
	fromStart bool
	types     []string
	user      string
	call      string
}

// parseLocalQuery reads Last-Event-ID (or ?after=; the header wins) and
// the filters ?type= (comma-separated prefixes), ?user=, ?call=, as the
// server does.
func parseLocalQuery(r *http.Request) (localQuery, string, string) {
	q := localQuery{fromStart: true}
	v := r.URL.Query()
	for _, src := range []struct{ field, val string }{
		{"after", v.Get("after")},
		{"Last-Event-ID", r.Header.Get("Last-Event-ID")},
	} {
		s := strings.TrimSpace(src.val)
		if s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return q, src.field, src.field + " must be an event id as sent in the stream's \"id:\" lines (a sequence number such as 42)"
		}
		q.after, q.fromStart = n, false
	}
	if t := v.Get("type"); t != "" {
		for _, p := range strings.Split(t, ",") {
			if p = strings.TrimSpace(p); p != "" {
				q.types = append(q.types, p)
			}
		}
	}
	q.user, q.call = v.Get("user"), v.Get("call")
	return q, "", ""
}

// match reports whether q selects f. Resets and the proxy's own frames
// always go out.
func (q localQuery) match(f frame) bool {
	if f.Event == "reset" || strings.HasPrefix(f.Event, "proxy.") {
		return true
	}
	if len(q.types) > 0 && !slices.ContainsFunc(q.types, func(t string) bool { return strings.HasPrefix(f.Event, t) }) {
		return false
	}
	if q.user == "" && q.call == "" {
		return true
	}
	var e struct {
		User string `json:"user"`
		Call string `json:"call"`
	}
	if json.Unmarshal([]byte(f.Data), &e) != nil {
		return false
	}
	return (q.user == "" || e.User == q.user) && (q.call == "" || e.Call == q.call)
}

// resetFrame tells a local subscriber that events after after, up to and
// including lost, are not in the proxy's buffer. Its layout is the
// server's (events.ResetError and a message); its id is lost so that a
// reconnect after it does not repeat it.
func resetFrame(after, lost uint64) frame {
	data, _ := json.Marshal(map[string]any{
		"after":   after,
		"next":    lost + 1,
		"reason":  "expired",
		"message": fmt.Sprintf("events %d to %d are no longer in the proxy's buffer; continuing after %d", after+1, lost, lost),
	})
	return frame{ID: strconv.FormatUint(lost, 10), Event: "reset", Data: string(data)}
}

// events serves GET /v1/events to a local app from the proxy's buffer:
// every app shares the proxy's one stream from the server.
func (p *Proxy) events(w http.ResponseWriter, r *http.Request) {
	q, field, msg := parseLocalQuery(r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, field, msg)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	p.hub.subscribed(1)
	defer p.hub.subscribed(-1)

	off, gap, lost := p.hub.startAt(q.after, q.fromStart)
	if gap && writeFrame(w, resetFrame(q.after, lost)) != nil {
		return
	}
	last := q.after
	hb := time.NewTimer(p.cfg.Heartbeat)
	defer hb.Stop()
	for {
		frames, next, wake, trimmed, lost := p.hub.read(off)
		// An app that read too slowly, and the buffer moved past it, gets a reset.
		if trimmed && lost > last && writeFrame(w, resetFrame(last, lost)) != nil {
			return
		}
		for _, f := range frames {
			if n, ok := f.seq(); ok {
				last = n
			}
			if q.match(f) && writeFrame(w, f) != nil {
				return
			}
		}
		if (len(frames) > 0 || trimmed) && rc.Flush() != nil {
			return
		}
		off = next
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-hb.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			hb.Reset(p.cfg.Heartbeat)
		}
	}
}
