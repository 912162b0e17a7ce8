package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/events"
)

// Account event streams (issue 10, section 6; issue 11, section 4):
//
//	GET    /v1/accounts/{a}/events   Server-Sent Events, admin token
//	PUT    /v1/accounts/{a}/webhook  {"url": ..., "secret": ...} (secret optional: drawn)
//	GET    /v1/accounts/{a}/webhook  {"url", "delivered"}; never the secret
//	DELETE /v1/accounts/{a}/webhook
//
// The stream: "id:" is the event's sequence in its account, "event:" its
// type, "data:" its JSON (as a webhook's body). It resumes after the
// Last-Event-ID header or ?after= (the header wins: EventSource sends it
// on reconnect while the URL keeps its first ?after=). Filters: ?type=
// (comma-separated type prefixes, e.g. "fraud.,call.ringing"), ?user=,
// ?call=. A resume point past the retention window, or past the stream's
// end, is answered first by "event: reset" whose id is where the stream
// goes on from, so a reconnect after it does not repeat it. A comment line
// goes out every EventsHeartbeat so that proxies keep the response open.

// maxTypeFilters bounds ?type= to a handful of prefixes.
const maxTypeFilters = 16

// eventsQuery is a parsed stream request: where to resume and what to
// select.
type eventsQuery struct {
	after  uint64
	filter events.Filter
}

// parseEventsQuery reads the resume point and the filters of a stream
// request. Every value comes from the client; a bad one is named.
func parseEventsQuery(r *http.Request) (eventsQuery, *fieldError) {
	var q eventsQuery
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
			return q, badField(src.field, "%s must be an event id as sent in the stream's \"id:\" lines (a sequence number such as 42), not %q", src.field, src.val)
		}
		q.after = n // the header, read last, wins
	}
	if t := v.Get("type"); t != "" {
		parts := strings.Split(t, ",")
		if len(parts) > maxTypeFilters {
			return q, badField("type", "at most %d type prefixes, comma-separated", maxTypeFilters)
		}
		for _, p := range parts {
			p = strings.TrimSpace(p)
			if events.CheckType(p) != nil {
				return q, badField("type", "%q is not an event type or type prefix: use a-z, 0-9, '.', '_' and '-', e.g. \"fraud.\" or \"call.ringing\"", p)
			}
			q.filter.Types = append(q.filter.Types, p)
		}
	}
	q.filter.User = v.Get("user")
	if fe := checkOptionalID("user", q.filter.User); fe != nil {
		return q, fe
	}
	if c := v.Get("call"); c != "" {
		if len(c) > 256 || strings.IndexFunc(c, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return q, badField("call", "call must be a Call-ID: at most 256 characters without spaces or control characters")
		}
		q.filter.Call = c
	}
	return q, nil
}

// accountEvents serves GET /v1/accounts/{a}/events.
func (s *server) accountEvents(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	q, fe := parseEventsQuery(r)
	if !ok || badInput(w, fe) || !s.accountExists(w, r, ids[0]) {
		return
	}
	s.streamEvents(w, r, ids[0], q)
}

// accountExists asks the account's actor for the account and writes the
// 404 (or 503) when it cannot be had. One actor request per call.
func (s *server) accountExists(w http.ResponseWriter, r *http.Request, account string) bool {
	rep, ok := askAs[*actorpb.AccountReply](s, w, r, actors.KindAccount, account, &actorpb.GetAccount{})
	return ok && !replyError(w, rep.GetError())
}

// streamEvents streams account's events selected by q to w as Server-Sent
// Events until the client goes away or the node's stream closes. The
// caller has authorized the request and decided the account: the admin
// route takes it from the path; an app token's route (GET /v1/events)
// takes it from the token and narrows q.filter to the token's user.
func (s *server) streamEvents(w http.ResponseWriter, r *http.Request, account string, q eventsQuery) {
	if !s.eventsServed(w) {
		return
	}
	sub, err := s.cfg.Events.Subscribe(r.Context(), account, q.after, q.filter)
	if err != nil {
		s.log.Warn("subscribing to events", "account", account, "err", err)
		unavailable(w, "the event stream is unavailable; retry")
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// retry: how long EventSource waits before it reconnects.
	if _, err := fmt.Fprint(w, "retry: 1000\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	for {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.EventsHeartbeat)
		e, err := sub.Next(ctx)
		cancel()
		var reset *events.ResetError
		switch {
		case err == nil:
			data, merr := json.Marshal(e)
			if merr != nil {
				return
			}
			_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data)
		case errors.As(err, &reset):
			data, _ := json.Marshal(struct {
				*events.ResetError
				Message string `json:"message"`
			}{reset, reset.Error()})
			_, err = fmt.Fprintf(w, "id: %d\nevent: reset\ndata: %s\n\n", reset.Next-1, data)
		case r.Context().Err() != nil:
			return // the client went away
		case errors.Is(err, context.DeadlineExceeded):
			_, err = fmt.Fprint(w, ": heartbeat\n\n")
		case errors.Is(err, events.ErrClosed):
			return // the node is shutting down; the client reconnects elsewhere
		default:
			s.log.Warn("reading events", "account", account, "after", sub.Cursor(), "err", err)
			_, err = fmt.Fprint(w, "event: error\ndata: {\"error\":\"the event stream failed; reconnect with Last-Event-ID\"}\n\n")
			_ = rc.Flush()
			return
		}
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}

// ---- webhooks ----

type webhookIn struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

type webhookOut struct {
	URL string `json:"url"`
	// Secret is shown in the reply to PUT only.
	Secret    string `json:"secret,omitempty"`
	Delivered uint64 `json:"delivered"`
}

func (s *server) putWebhook(w http.ResponseWriter, r *http.Request) {
	var in webhookIn
	ids, ok := s.pathBody(w, r, &in, "a")
	if !ok {
		return
	}
	if err := events.CheckWebhookURL(in.URL); err != nil {
		writeError(w, http.StatusBadRequest, "url", strings.TrimPrefix(err.Error(), events.ErrInvalid.Error()+": "))
		return
	}
	if !s.eventsServed(w) || !s.accountExists(w, r, ids[0]) {
		return
	}
	hook, err := s.cfg.Events.SetWebhook(r.Context(), ids[0], in.URL, in.Secret)
	if errors.Is(err, events.ErrInvalid) {
		writeError(w, http.StatusBadRequest, "secret", strings.TrimPrefix(err.Error(), events.ErrInvalid.Error()+": "))
		return
	}
	if !s.eventsOK(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, webhookOut{URL: hook.URL, Secret: hook.Secret, Delivered: hook.Delivered})
}

func (s *server) getWebhook(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	if !ok || !s.eventsServed(w) {
		return
	}
	hook, err := s.cfg.Events.GetWebhook(r.Context(), ids[0])
	if !s.eventsOK(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, webhookOut{URL: hook.URL, Delivered: hook.Delivered})
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	ids, ok := pathIDs(w, r, "a")
	if !ok || !s.eventsServed(w) {
		return
	}
	if s.eventsOK(w, s.cfg.Events.DeleteWebhook(r.Context(), ids[0])) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// eventsServed writes a 404 when this node has no event stream.
func (s *server) eventsServed(w http.ResponseWriter) bool {
	if s.cfg.Events == nil {
		writeError(w, http.StatusNotFound, "", "this node serves no event streams")
		return false
	}
	return true
}

// eventsOK writes the reply for a failed webhook call and reports whether
// err was nil.
func (s *server) eventsOK(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, events.ErrNoWebhook):
		writeError(w, http.StatusNotFound, "", "this account has no webhook; PUT one with {\"url\": \"https://...\"}")
	default:
		s.log.Warn("webhook request failed", "err", err)
		unavailable(w, "the event store did not answer; retry")
	}
	return false
}

// defaultEventsHeartbeat is Config.EventsHeartbeat's default: under the
// 30-60 s idle timeouts common in proxies and load balancers.
const defaultEventsHeartbeat = 15 * time.Second
