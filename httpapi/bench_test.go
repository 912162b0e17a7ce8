package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// benchAPI returns the API over a system with n live account activations
// (acct00000...).
func benchAPI(b *testing.B, n int) http.Handler {
	b.Helper()
	sys, err := actors.New(actors.Config{Store: persistence.NewMemory(), Zone: "sip.test"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sys.Close() })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := sys.Request(context.Background(), actors.KindAccount, fmt.Sprintf("acct%05d", i), &actorpb.GetAccount{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{Actors: sys, Zone: "sip.test", Node: "n1"})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func benchGet(b *testing.B, h http.Handler, path string, hdr ...string) {
	b.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}

// BenchmarkDebugActorsPage measures one page of /debug/actors (100
// activations from the middle, and the default page of 1,000, gzipped) at
// 1,000 and 20,000 activations, and describing one actor: the time per
// request must not grow with the node's activations.
//
//	go test -run '^$' -bench DebugActors ./httpapi/
func BenchmarkDebugActors(b *testing.B) {
	for _, n := range []int{1000, 20000} {
		h := benchAPI(b, n)
		mid := fmt.Sprintf("acct%05d", n/2)
		b.Run(fmt.Sprintf("page=100/activations=%d", n), func(b *testing.B) {
			benchGet(b, h, "/debug/actors?limit=100&after=account/"+mid)
		})
		b.Run(fmt.Sprintf("page=1000-gzip/activations=%d", n), func(b *testing.B) {
			benchGet(b, h, "/debug/actors?after=account/acct00000", "Accept-Encoding", "gzip")
		})
		b.Run(fmt.Sprintf("describe/activations=%d", n), func(b *testing.B) {
			benchGet(b, h, "/debug/actors/account/"+mid)
		})
	}
}
