package integration

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkProxy_PatchToLocalEvent measures issue 11's "latency from a
// PATCH to the event reaching a proxy's local subscriber" against the
// fake server: an HTTP PATCH at the server, its context.changed event on
// the server's stream, the proxy's one upstream connection, its buffer,
// and a local SSE subscriber over loopback. Reports p50 and p99 (goal:
// p99 <= 50 ms with the real server).
func BenchmarkProxy_PatchToLocalEvent(b *testing.B) {
	fake := newFakeServer(b)
	fake.addCall("c1")
	h := startProxy(b, fake, nil)
	s := h.subscribe("")
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest(http.MethodPatch, fake.srv.URL+"/v1/calls/c1/context", strings.NewReader(`{"n":1}`))
		req.Header.Set("Authorization", "Bearer "+fake.token)
		req.Header.Set("Content-Type", "application/merge-patch+json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("PATCH at the server: %v %v", err, resp)
		}
		resp.Body.Close()
		for {
			f := s.next(b, true)
			if f.Event == "context.changed" {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
