package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// The integration API (issue 11, sections 3, 4 and 6), app tokens only:
//
//	GET   /v1/calls?user=&since=&limit=&after=   calls:read
//	      {"calls": [{<call>..., "role": "caller"|"callee", "cursor"}], "next": "<cursor>"}
//	      a user's ended calls, newest first, from the user's index (one
//	      page read). user defaults to the token's user and is required
//	      for an account-wide token; since is RFC 3339; limit 1-200
//	      (default 50); after is the previous page's "next".
//	GET   /v1/calls/{id}/context                 calls:read
//	      {"call", "live", "apps": {"crm": {...}}, "version", "writers"}, ETag "<version>"
//	PATCH /v1/calls/{id}/context                 context:write
//	      Content-Type: application/merge-patch+json (RFC 7396), into the
//	      token's app's namespace; optional If-Match "<version>" (412 when
//	      stale); 413 over 64 KiB per app per call; 400 naming the member
//	      ("body/a/b", a JSON Pointer after "body") for bad depth or keys.
//	      Answers the new context and ETag.
//	GET   /v1/events                             events:read
//	      the account's stream (see events.go), call.* and context.*
//	      events only, narrowed to the token's user when it has one.
//
// Another account's call, or for a user-scoped token a call the user is
// not a party of, is 404 like a call that does not exist.

const (
	defaultCallsLimit = 50
	maxCallsLimit     = 200
)

func (s *server) listUserCalls(w http.ResponseWriter, r *http.Request, app actors.App) {
	q := r.URL.Query()
	user := q.Get("user")
	switch {
	case user == "" && app.User == "":
		badInput(w, badField("user", "user is required: the device whose calls to list"))
		return
	case user == "":
		user = app.User
	case app.User != "" && user != app.User:
		writeError(w, http.StatusForbidden, "user", "this app token acts for "+app.User+" only")
		return
	}
	if badInput(w, checkID("user", user)) {
		return
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			badInput(w, badField("since", "since must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", v))
			return
		}
		since = t
	}
	limit := defaultCallsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxCallsLimit {
			badInput(w, badField("limit", "limit must be a whole number from 1 to %d", maxCallsLimit))
			return
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !actors.ValidCallsCursor(after) {
		badInput(w, badField("after", "after must be the \"next\" of a previous page"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	calls, err := s.cfg.Apps.ListUserCalls(ctx, app.Account, user, since, after, limit)
	if err != nil {
		s.storeUnavailable(w, "listing calls", err)
		return
	}
	out := each(calls, func(c actors.UserCall) map[string]any {
		m := actors.CallJSON(c.Record)
		m["role"], m["cursor"] = c.Role, c.Cursor
		return m
	})
	body := map[string]any{"calls": out}
	if len(calls) == limit {
		body["next"] = calls[len(calls)-1].Cursor
	}
	writeJSON(w, http.StatusOK, body)
}

// callID reads and checks the {id} of a call route.
func callID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !actors.ValidCallID(id) {
		badInput(w, badField("id", "a call id is 1 to 128 characters from A-Z, a-z, 0-9 and .-_@+~!%%* (a SIP Call-ID, or the h-<hex> name of a longer one)"))
		return "", false
	}
	return id, true
}

func (s *server) getCallContext(w http.ResponseWriter, r *http.Request, app actors.App) {
	id, ok := callID(w, r)
	if !ok {
		return
	}
	rep, ok := askAs[*actorpb.ContextReply](s, w, r, actors.KindCallContext, id, &actorpb.GetContext{Account: app.Account, User: app.User})
	if !ok || replyError(w, rep.Error) {
		return
	}
	writeContext(w, rep)
}

func writeContext(w http.ResponseWriter, rep *actorpb.ContextReply) {
	setETag(w, rep.Version)
	writeBody(w, http.StatusOK, append(rep.View, '\n'))
}

func (s *server) patchCallContext(w http.ResponseWriter, r *http.Request, app actors.App) {
	id, ok := callID(w, r)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaMergePatch {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type", "a context patch is a JSON merge patch (RFC 7396): send Content-Type: "+mediaMergePatch)
		return
	}
	var match *uint64
	if h := strings.TrimSpace(r.Header.Get("If-Match")); h != "" && h != "*" {
		v, err := strconv.ParseUint(strings.Trim(h, `"`), 10, 64)
		if err != nil {
			badInput(w, badField("If-Match", "If-Match must be the context's version as returned in ETag, e.g. \"3\""))
			return
		}
		match = &v
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body", "the patch is larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
			return
		}
		badInput(w, badField("body", "reading body: %v", err))
		return
	}
	rep, ok := askAs[*actorpb.ContextReply](s, w, r, actors.KindCallContext, id, &actorpb.PatchContext{
		Account: app.Account, User: app.User, App: app.Name, Patch: body, IfMatch: match})
	if !ok {
		return
	}
	switch rep.Refusal {
	case actorpb.ContextRefusal_CONTEXT_REFUSAL_STALE:
		setETag(w, rep.Version)
		writeError(w, http.StatusPreconditionFailed, "If-Match", rep.Error.GetMessage())
		return
	case actorpb.ContextRefusal_CONTEXT_REFUSAL_TOO_LARGE:
		writeError(w, http.StatusRequestEntityTooLarge, rep.Error.GetField(), rep.Error.GetMessage())
		return
	}
	if replyError(w, rep.Error) {
		return
	}
	writeContext(w, rep)
}

// appEventTypes are the event types an app token may read.
var appEventTypes = []string{"call.", "context."}

func (s *server) appEvents(w http.ResponseWriter, r *http.Request, app actors.App) {
	q, fe := parseEventsQuery(r)
	if badInput(w, fe) {
		return
	}
	if app.User != "" {
		if q.filter.User != "" && q.filter.User != app.User {
			writeError(w, http.StatusForbidden, "user", "this app token acts for "+app.User+" only")
			return
		}
		q.filter.User = app.User
	}
	if len(q.filter.Types) == 0 {
		q.filter.Types = appEventTypes
	}
	for _, t := range q.filter.Types {
		if !strings.HasPrefix(t, "call.") && !strings.HasPrefix(t, "context.") {
			writeError(w, http.StatusForbidden, "type", "an app token reads call.* and context.* events only, not "+t)
			return
		}
	}
	s.streamEvents(w, r, app.Account, q)
}
