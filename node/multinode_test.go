//go:build !race

// Several nodes in one process cannot run under the race detector:
// protoactor-go's remote.Start writes grpclog's global logger while another
// node's gRPC goroutines read it. make test runs this file without -race.

package node

import (
	"net/http"
	"strings"
	"testing"
)

// Two nodes run as values in one process, each with its own store and
// registry, and shut down cleanly (goleak checks that nothing is left).
func TestNode_TwoInOneProcessServeAndShutDown(t *testing.T) {
	a, cancelA, doneA, out := startNode(t, "a", t.TempDir(), true)
	b, cancelB, doneB, _ := startNode(t, "b", t.TempDir(), false)
	if !strings.Contains(out.String(), "alice-demo-1234") {
		t.Fatalf("demo did not print credentials: %q", out.String())
	}
	get := func(n *Node, path string) int {
		res, err := http.Get("http://" + n.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := get(a, "/v1/accounts/acme"); c != 200 {
		t.Fatalf("demo account on a: %d", c)
	}
	if c := get(b, "/v1/accounts/acme"); c != 404 {
		t.Fatalf("b has its own store, yet acme answered %d", c)
	}
	if c := get(b, "/metrics"); c != 200 {
		t.Fatalf("metrics: %d", c)
	}
	cancelA()
	cancelB()
	for _, d := range []<-chan error{doneA, doneB} {
		if err := <-d; err != nil {
			t.Fatalf("Run returned %v after a clean shutdown", err)
		}
	}
	if a.State() != StateDraining {
		t.Fatalf("state after shutdown = %s", a.State())
	}
}
