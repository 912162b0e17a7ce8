package sipedge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/accountview"
	"github.com/switchboard-pbx/switchboard/internal/memstat"
	"github.com/switchboard-pbx/switchboard/sipedge"
)

// viewCounter counts the account snapshots the edge reads: one per
// REGISTER the edge handles, none for a retransmission its transaction
// answers.
type viewCounter struct {
	sipedge.Accounts
	views atomic.Int64
}

func (c *viewCounter) Account(ctx context.Context, account string) (*accountview.Account, error) {
	c.views.Add(1)
	return c.Accounts.Account(ctx, account)
}

// startCountedRegistrar is an edge in front of registrarActors, counting
// the account snapshots it reads.
func startCountedRegistrar(t testing.TB, mutate ...func(*sipedge.Config)) (*testEdge, *viewCounter) {
	t.Helper()
	var vc *viewCounter
	te := startEdge(t, append([]func(*sipedge.Config){func(c *sipedge.Config) {
		fa := newRegistrarActors()
		fa.clock = c.Clock
		cfg := accountview.DefaultConfig()
		cfg.Actors, cfg.Clock = fa, c.Clock
		views, err := accountview.New(cfg)
		if err != nil {
			t.Fatalf("accountview.New: %v", err)
		}
		vc = &viewCounter{Accounts: views}
		c.Actors, c.Accounts = fa, vc
	}}, mutate...)...)
	return te, vc
}

// A finished non-INVITE transaction over UDP answers its request's
// retransmissions with the same response (RFC 3261 section 17.2.2) for
// Timer J, UDPTimerJ (5 s, not 64*T1 = 32 s), and is then forgotten: the
// same request is handled anew.
func TestTransaction_RFC3261_17_2_2_FinishedUDPTransactionKeptForTimerJ(t *testing.T) {
	te, vc := startCountedRegistrar(t)
	phone := newUDPPeer(t, te, "127.0.0.1")
	callID := unique("timer-j")
	req := aliceRegister(phone.addr(), unique("b"), callID, 1, "600", "")
	phone.send(req)
	if res := phone.final(callID, replyWait); res == nil || res.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials: %v, want 401", res)
	}
	finished := time.Now()
	phone.send(req)
	if res := phone.final(callID, replyWait); res == nil || res.StatusCode != 401 {
		t.Fatalf("retransmitted REGISTER: %v, want the 401 again", res)
	}
	if n := vc.views.Load(); n != 1 {
		t.Fatalf("the edge handled the REGISTER %d times; the retransmission within Timer J must be answered by its transaction", n)
	}
	// Retransmit every 100 ms (a client's pace, under the flood limit)
	// until the edge handles the request again.
	deadline := finished.Add(2 * sipedge.UDPTimerJ)
	every := time.NewTicker(100 * time.Millisecond)
	defer every.Stop()
	for vc.views.Load() == 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the transaction still answered %v after it finished; Timer J is %v", 2*sipedge.UDPTimerJ, sipedge.UDPTimerJ)
		}
		<-every.C
		phone.send(req)
		// One sent as the transaction ends may go unanswered, as a
		// client retransmitting over UDP allows for; the next one is not.
		if res := phone.final(callID, 500*time.Millisecond); res != nil && res.StatusCode != 401 {
			t.Fatalf("retransmitted REGISTER: %d %s, want 401", res.StatusCode, res.Reason)
		}
	}
	if kept := time.Since(finished); kept < sipedge.UDPTimerJ-250*time.Millisecond {
		t.Fatalf("the transaction was forgotten %v after it finished, before Timer J (%v)", kept, sipedge.UDPTimerJ)
	}
}

// BenchmarkFinishedTransactions measures what a finished UDP server
// transaction holds until Timer J forgets it: b.N REGISTERs (each
// answered 401, as the first half of a registration) are sent one after
// another, and the live heap while their transactions are kept is
// compared with the heap once they are gone. From the bytes per
// transaction it derives the live heap that sustained registrations
// (800/s, two transactions each) keep with the RFC's Timer J, 32 s,
// beside UDPTimerJ, and their ratio.
//
//	go test -run '^$' -bench FinishedTransactions -benchtime 5000x ./sipedge/
func BenchmarkFinishedTransactions(b *testing.B) {
	const (
		rate    = 800 * 2 // transactions per second at 800 REGISTER/s
		rfcJ    = 32 * time.Second
		mib     = 1 << 20
		settled = 10 // percent of the kept heap that may remain
	)
	te, _ := startCountedRegistrar(b, func(c *sipedge.Config) { c.Flood.Limit = -1 }) // one source sends them all
	phone := newUDPPeer(b, te, "127.0.0.1")
	base := memstat.LiveHeap()
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		callID := unique(fmt.Sprintf("bench-%d", i))
		phone.send(aliceRegister(phone.addr(), unique("b"), callID, 1, "600", ""))
		if res := phone.final(callID, replyWait); res == nil || res.StatusCode != 401 {
			b.Fatalf("REGISTER %d: %v, want 401", i, res)
		}
	}
	b.StopTimer()
	if b.N < 100 {
		return // the framework's first probe: too few to read the heap by
	}
	if took := time.Since(start); took >= sipedge.UDPTimerJ {
		b.Fatalf("sending took %v, longer than Timer J: some transactions were forgotten before the heap was read; use fewer (-benchtime 5000x)", took)
	}
	kept := memstat.LiveHeap()
	deadline := start.Add(sipedge.UDPTimerJ + 10*time.Second)
	for after := kept; after > base+(kept-base)*settled/100; after = memstat.LiveHeap() {
		if time.Now().After(deadline) {
			b.Fatalf("live heap %d bytes %v after the transactions finished; it was %d before them and %d while they were kept",
				after, time.Since(start), base, kept)
		}
		time.Sleep(100 * time.Millisecond) // pace the polling: each poll runs two collections
	}
	per := float64(kept-base) / float64(b.N)
	b.ReportMetric(per, "B/finished-tx")
	b.ReportMetric(per*rate*rfcJ.Seconds()/mib, "MiB-kept-J32s")
	b.ReportMetric(per*rate*sipedge.UDPTimerJ.Seconds()/mib, "MiB-kept-J5s")
	b.ReportMetric(rfcJ.Seconds()/sipedge.UDPTimerJ.Seconds(), "ratio")
}
