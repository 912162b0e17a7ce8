package events_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/events"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// receiver is a webhook endpoint that checks signatures, answers 500 to
// the requests it is told to fail, and records what it accepted.
type receiver struct {
	t        *testing.T
	srv      *httptest.Server
	secret   string
	fail     atomic.Int32 // answer 500 to this many more requests
	inflight atomic.Int32
	maxIn    atomic.Int32

	mu       sync.Mutex
	accepted []events.Event
	failed   []uint64 // seqs answered 500
	badSig   int
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	n := r.inflight.Add(1)
	defer r.inflight.Add(-1)
	for m := r.maxIn.Load(); n > m && !r.maxIn.CompareAndSwap(m, n); m = r.maxIn.Load() {
	}
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !events.Verify(r.secret, body, req.Header.Get(events.HeaderSignature)) {
		r.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e events.Event
	if err := json.Unmarshal(body, &e); err != nil {
		r.t.Errorf("webhook body is not an event: %v", err)
		return
	}
	if got := req.Header.Get(events.HeaderEventID); got != e.ID {
		r.t.Errorf("%s %q, body id %q", events.HeaderEventID, got, e.ID)
	}
	if got := req.Header.Get(events.HeaderEventSeq); got != strconv.FormatUint(e.Seq, 10) {
		r.t.Errorf("%s %q, body seq %d", events.HeaderEventSeq, got, e.Seq)
	}
	if r.fail.Add(-1) >= 0 {
		r.failed = append(r.failed, e.Seq)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	r.accepted = append(r.accepted, e)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) got() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.accepted...)
}

func fastWebhooks(c *events.Config) {
	c.Webhook.FirstBackoff = 10 * time.Millisecond
	c.Webhook.MaxBackoff = 40 * time.Millisecond
	c.Webhook.Timeout = 2 * time.Second
	c.Webhook.LeaseTTL = 5 * time.Second
}

// "A webhook receiver sees each event once, after a simulated 500" (issue
// 10, tests): the failed delivery is retried with backoff, every event
// arrives once, in order, signed with the account's secret.
func TestWebhook_RetriedAfter500_EachEventOnceInOrderSigned(t *testing.T) {
	const secret = "a-secret-of-enough-length"
	rcv := newReceiver(t, secret)
	rcv.fail.Store(1)
	store := persistence.NewMemory()
	s := newStream(t, store, "n", fastWebhooks)
	if _, err := s.SetWebhook(t.Context(), "acme", rcv.srv.URL+"/hook", secret); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	appended := appendN(t, s, "acme", 3)
	eventually(t, "three deliveries", func() bool { return len(rcv.got()) >= 3 })
	got := rcv.got()
	if len(got) != 3 {
		t.Fatalf("%d deliveries accepted, want 3 (each once)", len(got))
	}
	for i, e := range got {
		if e.ID != appended[i].ID || e.Seq != uint64(i+1) {
			t.Fatalf("delivery %d: seq %d id %s, want seq %d id %s", i, e.Seq, e.ID, i+1, appended[i].ID)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.failed) != 1 || rcv.failed[0] != 1 || rcv.badSig != 0 {
		t.Fatalf("failed %v, bad signatures %d; want event 1 failed once, none unsigned", rcv.failed, rcv.badSig)
	}
	eventually(t, "the cursor saved", func() bool {
		w, err := s.GetWebhook(t.Context(), "acme")
		return err == nil && w.Delivered == 3
	})
}

// Two nodes append to one account and both run deliveries: one node at a
// time delivers (never two requests in flight), in sequence order, each
// event once.
func TestWebhook_TwoNodes_OneDeliversAtATimeInOrder(t *testing.T) {
	const secret = "another-long-enough-secret"
	rcv := newReceiver(t, secret)
	store := persistence.NewMemory()
	a := newStream(t, store, "a", fastWebhooks)
	b := newStream(t, store, "b", fastWebhooks)
	if _, err := a.SetWebhook(t.Context(), "acme", rcv.srv.URL, secret); err != nil {
		t.Fatal(err)
	}
	run(t, a)
	run(t, b)
	const n = 30
	var wg sync.WaitGroup
	for _, s := range []*events.Stream{a, b} {
		wg.Go(func() { appendN(t, s, "acme", n/2) })
	}
	wg.Wait()
	eventually(t, "every delivery", func() bool { return len(rcv.got()) >= n })
	for i, e := range rcv.got() {
		if e.Seq != uint64(i+1) {
			t.Fatalf("delivery %d has seq %d: out of order or repeated", i, e.Seq)
		}
	}
	if m := rcv.maxIn.Load(); m != 1 {
		t.Fatalf("%d deliveries were in flight at once, want 1", m)
	}
}

// A node that died holding an account's delivery lease is replaced once
// the lease runs out: another node's sweep takes the deliveries over from
// the saved cursor.
func TestWebhook_DeadNodesLease_TakenOverBySweep(t *testing.T) {
	const secret = "yet-another-long-secret"
	rcv := newReceiver(t, secret)
	store := persistence.NewMemory()
	writer := newStream(t, store, "writer", nil) // never runs: appends only
	if _, err := writer.SetWebhook(t.Context(), "acme", rcv.srv.URL, secret); err != nil {
		t.Fatal(err)
	}
	appendN(t, writer, "acme", 2)
	// The dead node's lease, expired.
	it, err := store.Get(t.Context(), "evhook/acme")
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	_ = json.Unmarshal(it.Value, &rec)
	rec["owner"], rec["until"] = "dead~00000000", time.Now().Add(-time.Second)
	raw, _ := json.Marshal(rec)
	if _, err := store.Put(t.Context(), "evhook/acme", raw, it.Version); err != nil {
		t.Fatal(err)
	}
	survivor := newStream(t, store, "survivor", func(c *events.Config) {
		fastWebhooks(c)
		c.SweepEvery = 20 * time.Millisecond
	})
	run(t, survivor)
	eventually(t, "the survivor's deliveries", func() bool { return len(rcv.got()) >= 2 })
	if got := rcv.got(); got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("delivered %d, %d", got[0].Seq, got[1].Seq)
	}
}

// Setting a webhook starts it at the head: earlier events are not sent.
// Setting it again keeps the cursor.
func TestSetWebhook_StartsAtHeadAndKeepsCursor(t *testing.T) {
	s := newStream(t, persistence.NewMemory(), "n", nil)
	appendN(t, s, "acme", 4)
	w, err := s.SetWebhook(t.Context(), "acme", "https://crm.example/hook", "")
	if err != nil {
		t.Fatal(err)
	}
	if w.Delivered != 4 || len(w.Secret) != 64 {
		t.Fatalf("webhook %+v: want cursor 4 and a drawn 64-hex-digit secret", w)
	}
	appendN(t, s, "acme", 1)
	w2, err := s.SetWebhook(t.Context(), "acme", "https://crm.example/other", "replacement-secret-16")
	if err != nil || w2.Delivered != 4 || w2.URL != "https://crm.example/other" {
		t.Fatalf("SetWebhook again = %+v, %v", w2, err)
	}
	if err := s.DeleteWebhook(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebhook(t.Context(), "acme"); !errors.Is(err, events.ErrNoWebhook) {
		t.Fatalf("GetWebhook after delete = %v", err)
	}
}

func TestSetWebhook_BadInput(t *testing.T) {
	s := newStream(t, persistence.NewMemory(), "n", nil)
	for name, in := range map[string][2]string{
		"relative url":   {"/hook", ""},
		"ftp url":        {"ftp://x.example/hook", ""},
		"no host":        {"https:///hook", ""},
		"credentials":    {"https://u:p@x.example/hook", ""},
		"fragment":       {"https://x.example/hook#f", ""},
		"short secret":   {"https://x.example/hook", "short"},
		"control secret": {"https://x.example/hook", "sixteen-chars-\n-long"},
		"huge url":       {"https://x.example/" + strings.Repeat("a", 3000), ""},
	} {
		if _, err := s.SetWebhook(t.Context(), "acme", in[0], in[1]); !errors.Is(err, events.ErrInvalid) {
			t.Errorf("%s: SetWebhook = %v, want ErrInvalid", name, err)
		}
	}
}

// Verify accepts exactly Sign's output for the same secret and body.
func TestSignVerify(t *testing.T) {
	body := []byte(`{"seq":1}`)
	sig := events.Sign("k-k-k-k-k-k-k-k-k", body)
	if !events.Verify("k-k-k-k-k-k-k-k-k", body, sig) {
		t.Fatal("Verify refused Sign's signature")
	}
	for name, c := range map[string]struct {
		secret, header string
		body           []byte
	}{
		"other secret": {"other", sig, body},
		"other body":   {"k-k-k-k-k-k-k-k-k", sig, []byte(`{"seq":2}`)},
		"no scheme":    {"k-k-k-k-k-k-k-k-k", strings.TrimPrefix(sig, "sha256="), body},
		"truncated":    {"k-k-k-k-k-k-k-k-k", sig[:len(sig)-2], body},
		"empty":        {"k-k-k-k-k-k-k-k-k", "", body},
	} {
		if events.Verify(c.secret, c.body, c.header) {
			t.Errorf("%s: Verify accepted it", name)
		}
	}
}

// FuzzVerify: the signature header comes from the network (a receiver
// parses it); Verify never panics and accepts only the right signature.
func FuzzVerify(f *testing.F) {
	f.Add("secret-0123456789", []byte(`{"seq":1}`), events.Sign("secret-0123456789", []byte(`{"seq":1}`)))
	f.Add("s", []byte{}, "sha256=")
	f.Add("s", []byte("x"), "sha256=zz")
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string) {
		ok := events.Verify(secret, body, header)
		h := strings.TrimSpace(header)
		want := strings.HasPrefix(h, "sha256=") && strings.EqualFold(h, events.Sign(secret, body))
		if ok != want {
			t.Fatalf("Verify(%q, %q, %q) = %v, want %v", secret, body, header, ok, want)
		}
	})
}
