package node

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/events"
)

// A node serves its accounts' event streams: an event appended through
// Node.Events reaches an open SSE response, and a node shutting down ends
// that response instead of waiting out its shutdown timeout for it.
func TestNode_EventStreamServedAndEndedAtShutdown(t *testing.T) {
	n, cancel, done, _ := startNode(t, "ev", t.TempDir(), true)
	ctx, stop := context.WithTimeout(t.Context(), 10*time.Second)
	defer stop()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTPAddr()+"/v1/accounts/acme/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET events: %d %s", res.StatusCode, b)
	}
	if _, err := n.Events().Append(t.Context(), "acme", events.Event{Type: "call.ringing", Call: "c1"}); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(res.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if strings.HasPrefix(line, "id: 1") {
			break
		}
	}

	start := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %v with a stream open", d)
	}
	if _, err := io.Copy(io.Discard, r); err != nil && ctx.Err() != nil {
		t.Fatalf("the stream did not end at shutdown: %v", err)
	}
}
