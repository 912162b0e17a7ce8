package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/events"
)

// withEvents gives f's API an event stream on f's store, with a short
// heartbeat, and returns it.
func withEvents(t *testing.T, f *fixture, clk clock.Clock) *events.Stream {
	t.Helper()
	cfg := events.DefaultConfig()
	cfg.Store, cfg.Node, cfg.Clock = f.store, "n1", clk
	cfg.PollInterval = 5 * time.Millisecond
	s, err := events.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f.api.cfg.Events = s
	f.api.cfg.EventsHeartbeat = 50 * time.Millisecond
	return s
}

// sseFrame is one Server-Sent Events frame: fields, or a comment.
type sseFrame struct {
	id, event, data, comment string
}

// sseStream reads frames from a live response.
type sseStream struct {
	t      *testing.T
	res    *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// openSSE starts GET path with hdr (name, value, ...) and checks the
// stream's headers. The stream is closed when the test ends, and reading
// it fails the test after 10 s.
func (f *fixture) openSSE(t *testing.T, path string, hdr ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sseStream{t: t, res: res, r: bufio.NewReader(res.Body), cancel: cancel}
	t.Cleanup(s.close)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	return s
}

func (s *sseStream) close() {
	s.cancel()
	_ = s.res.Body.Close()
}

// next returns the next frame that is not the opening "retry:" line.
func (s *sseStream) next() sseFrame {
	s.t.Helper()
	for {
		var fr sseFrame
		empty := true
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				s.t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			if line == "" {
				break
			}
			empty = false
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "":
				fr.comment = value
			case "id":
				fr.id = value
			case "event":
				fr.event = value
			case "data":
				fr.data = value
			}
		}
		if !empty && (fr.id != "" || fr.event != "" || fr.data != "" || fr.comment != "") {
			return fr
		}
	}
}

// nextEvent returns the next frame that is not a comment.
func (s *sseStream) nextEvent() sseFrame {
	s.t.Helper()
	for {
		if fr := s.next(); fr.comment == "" {
			return fr
		}
	}
}

// expectSeqs reads events and checks their ids, types and data.
func (s *sseStream) expectSeqs(seqs ...uint64) {
	s.t.Helper()
	for _, want := range seqs {
		fr := s.nextEvent()
		var e events.Event
		if err := json.Unmarshal([]byte(fr.data), &e); err != nil {
			s.t.Fatalf("data %q: %v", fr.data, err)
		}
		if fr.id != strconv.FormatUint(want, 10) || e.Seq != want || fr.event != e.Type {
			s.t.Fatalf("frame id %q event %q seq %d, want id and seq %d, event the type %q", fr.id, fr.event, e.Seq, want, e.Type)
		}
	}
}

func appendEvents(t *testing.T, s *events.Stream, account string, types ...string) {
	t.Helper()
	for _, typ := range types {
		if _, err := s.Append(t.Context(), account, events.Event{Type: typ, User: "alice", Data: json.RawMessage(`{"k":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

// The account stream over real HTTP (issue 10, section 6): the backlog,
// then live events, each frame's id its sequence; after a disconnect,
// Last-Event-ID (or ?after=) resumes with nothing lost; an idle stream
// sends heartbeats.
func TestEvents_SSE_BacklogLiveResumeAndHeartbeat(t *testing.T) {
	f := newFixture(t, "tok")
	f.seed()
	s := withEvents(t, f, clock.Real{})
	appendEvents(t, s, "acme", "call.ringing", "call.answered", "call.ended")

	st := f.openSSE(t, "/v1/accounts/acme/events")
	st.expectSeqs(1, 2, 3)
	appendEvents(t, s, "acme", "context.changed")
	st.expectSeqs(4)
	if fr := st.next(); fr.comment == "" {
		t.Fatalf("an idle stream sent %+v, want a heartbeat comment", fr)
	}
	st.close()

	appendEvents(t, s, "acme", "call.ringing", "call.ended")
	f.openSSE(t, "/v1/accounts/acme/events", "Last-Event-ID", "4").expectSeqs(5, 6)
	f.openSSE(t, "/v1/accounts/acme/events?after=5").expectSeqs(6)
	// The header wins over ?after= (EventSource keeps its first URL).
	f.openSSE(t, "/v1/accounts/acme/events?after=1", "Last-Event-ID", "5").expectSeqs(6)
}

// Filters narrow the stream: type prefixes, user, call.
func TestEvents_SSE_Filters(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	s := withEvents(t, f, clock.Real{})
	for _, e := range []events.Event{
		{Type: "fraud.incident.opened", User: "alice"},
		{Type: "call.ringing", User: "bob", Call: "c1@x"},
		{Type: "fraud.action", User: "bob"},
		{Type: "context.changed", User: "bob", Call: "c1@x"},
	} {
		if _, err := s.Append(t.Context(), "acme", e); err != nil {
			t.Fatal(err)
		}
	}
	f.openSSE(t, "/v1/accounts/acme/events?type=fraud.").expectSeqs(1, 3)
	f.openSSE(t, "/v1/accounts/acme/events?user=bob&type=fraud.,context.").expectSeqs(3, 4)
	f.openSSE(t, "/v1/accounts/acme/events?call="+url.QueryEscape("c1@x")).expectSeqs(2, 4)
}

// "Past [the retention window], the stream says so" (issue 11, section 4):
// the first frame is "event: reset" whose id is where the stream goes on.
func TestEvents_SSE_ResetPastRetention(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	f := newFixture(t, "")
	f.seed()
	s := withEvents(t, f, clk)
	appendEvents(t, s, "acme", "call.ringing", "call.ended")
	clk.Advance(25 * time.Hour)
	appendEvents(t, s, "acme", "call.ringing")
	if n, err := s.Prune(t.Context(), "acme"); n != 2 || err != nil {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	st := f.openSSE(t, "/v1/accounts/acme/events", "Last-Event-ID", "1")
	fr := st.nextEvent()
	var r events.ResetError
	if err := json.Unmarshal([]byte(fr.data), &r); err != nil {
		t.Fatal(err)
	}
	if fr.event != "reset" || fr.id != "2" || r.Reason != events.ResetExpired || r.Next != 3 {
		t.Fatalf("first frame %+v, want event reset, id 2, reason expired, next 3", fr)
	}
	st.expectSeqs(3)
}

// Bad input names its field; another account's stream is 404; no token
// is 401.
func TestEvents_BadInput(t *testing.T) {
	f := newFixture(t, "tok")
	f.seed()
	withEvents(t, f, clock.Real{})
	f.expectBad(t, []badRequest{
		{"bad Last-Event-ID", "GET", "/v1/accounts/acme/events", "", []string{"Last-Event-ID", "abc"}, 400, "Last-Event-ID"},
		{"negative Last-Event-ID", "GET", "/v1/accounts/acme/events", "", []string{"Last-Event-ID", "-1"}, 400, "Last-Event-ID"},
		{"bad after", "GET", "/v1/accounts/acme/events?after=1e3", "", nil, 400, "after"},
		{"after overflow", "GET", "/v1/accounts/acme/events?after=18446744073709551616", "", nil, 400, "after"},
		{"bad type", "GET", "/v1/accounts/acme/events?type=Fraud", "", nil, 400, "type"},
		{"empty type", "GET", "/v1/accounts/acme/events?type=fraud.,", "", nil, 400, "type"},
		{"bad user", "GET", "/v1/accounts/acme/events?user=a%20b", "", nil, 400, "user"},
		{"bad call", "GET", "/v1/accounts/acme/events?call=a%0Ab", "", nil, 400, "call"},
		{"bad account", "GET", "/v1/accounts/Ac_me!/events", "", nil, 400, "account"},
		{"no such account", "GET", "/v1/accounts/nobody/events", "", nil, 404, "account"},
		{"no token", "GET", "/v1/accounts/acme/events", "", []string{"Authorization", ""}, 401, "Authorization"},
		{"webhook bad url", "PUT", "/v1/accounts/acme/webhook", `{"url":"ftp://x"}`, nil, 400, "url"},
		{"webhook short secret", "PUT", "/v1/accounts/acme/webhook", `{"url":"https://crm.example/h","secret":"short"}`, nil, 400, "secret"},
		{"webhook unknown field", "PUT", "/v1/accounts/acme/webhook", `{"url":"https://crm.example/h","notify":1}`, nil, 400, "notify"},
		{"webhook no such account", "PUT", "/v1/accounts/nobody/webhook", `{"url":"https://crm.example/h"}`, nil, 404, "account"},
		{"webhook none", "GET", "/v1/accounts/acme/webhook", "", nil, 404, ""},
	})
}

// The webhook's admin routes: PUT shows the secret once, GET never.
func TestEvents_WebhookRoutes(t *testing.T) {
	f := newFixture(t, "")
	f.seed()
	withEvents(t, f, clock.Real{})
	put := f.must(200, "PUT", "/v1/accounts/acme/webhook", `{"url":"https://crm.example/hook"}`).json(t)
	if secret, _ := put["secret"].(string); len(secret) != 64 || put["url"] != "https://crm.example/hook" {
		t.Fatalf("PUT reply %v: want the url and a drawn secret", put)
	}
	get := f.must(200, "GET", "/v1/accounts/acme/webhook", "").json(t)
	if _, ok := get["secret"]; ok || get["url"] != "https://crm.example/hook" {
		t.Fatalf("GET reply %v: want the url and no secret", get)
	}
	f.must(204, "DELETE", "/v1/accounts/acme/webhook", "")
	f.must(404, "DELETE", "/v1/accounts/acme/webhook", "")
}

// FuzzEventsQuery: the query and Last-Event-ID come from any client;
// parsing never panics, and what it accepts is what the stream can use.
func FuzzEventsQuery(f *testing.F) {
	f.Add("after=3&type=fraud.,call.ringing&user=alice&call=abc%40host", "")
	f.Add("", "42")
	f.Add("after=x", "")
	f.Add("type=%0A", "18446744073709551615")
	f.Fuzz(func(t *testing.T, rawQuery, lastEventID string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/v1/events", RawQuery: rawQuery}, Header: http.Header{}}
		if lastEventID != "" {
			r.Header.Set("Last-Event-ID", lastEventID)
		}
		q, fe := parseEventsQuery(r)
		if fe != nil {
			if fe.field == "" || fe.msg == "" {
				t.Fatalf("an error without field or message: %+v", fe)
			}
			return
		}
		for _, typ := range q.filter.Types {
			if events.CheckType(typ) != nil {
				t.Fatalf("accepted type %q", typ)
			}
		}
		if strings.ContainsAny(q.filter.User+q.filter.Call, "\r\n\x00 ") {
			t.Fatalf("accepted user %q call %q", q.filter.User, q.filter.Call)
		}
		if id := strings.TrimSpace(lastEventID); id != "" {
			if n, err := strconv.ParseUint(id, 10, 64); err != nil || n != q.after {
				t.Fatalf("Last-Event-ID %q gave after %d", lastEventID, q.after)
			}
		}
	})
}
