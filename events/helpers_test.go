package events_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/switchboard-pbx/switchboard/events"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// TestMain fails the run if a test leaves a goroutine behind: Run must
// wait for the deliveries it started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const postgresEnv = "SWITCHBOARD_TEST_POSTGRES"

const postgresHowTo = postgresEnv + ` is not set, so the PostgreSQL variant cannot run. To run it:
  apt-get install postgresql        # then start a server, e.g. with pg_ctl or the service
  createdb switchboard_test
  export ` + postgresEnv + `='postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable'
Each test uses accounts of its own and deletes their records afterwards.`

// engine opens stores that share data, as nodes sharing one database do.
type engine struct {
	name string
	// open returns a new handle on the engine's shared data.
	open func(tb testing.TB) persistence.Store
}

// engines lists the memory store and, when SWITCHBOARD_TEST_POSTGRES is
// set, PostgreSQL. Without it the PostgreSQL variant skips, except under
// CI=true, where a missing database fails the test.
func engines(tb testing.TB) []engine {
	tb.Helper()
	mem := persistence.NewMemory()
	tb.Cleanup(func() { _ = mem.Close() })
	out := []engine{{"memory", func(testing.TB) persistence.Store { return mem }}}
	out = append(out, engine{"postgres", func(t testing.TB) persistence.Store {
		t.Helper()
		dsn := os.Getenv(postgresEnv)
		if dsn == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal(postgresHowTo)
			}
			t.Skip(postgresHowTo)
		}
		s, err := persistence.OpenPostgres(t.Context(), dsn, persistence.DefaultPostgresConfig())
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}})
	return out
}

// testAccount returns an account id no other test run uses, and deletes
// its records from store when t ends.
func testAccount(t testing.TB, store persistence.Store) string {
	t.Helper()
	a := "t-" + strings.ToLower(rand.Text()[:12])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, p := range []string{"evhead/" + a, "evlog/" + a + "/", "evhook/" + a} {
			items, err := persistence.ScanAll(ctx, store, p)
			if err != nil {
				t.Errorf("cleaning up %s: %v", p, err)
				return
			}
			for _, it := range items {
				_ = store.Delete(ctx, it.Key, persistence.AnyVersion)
			}
		}
	})
	return a
}

// newStream returns a Stream on store named node, configured by edit.
func newStream(t testing.TB, store persistence.Store, node string, edit func(*events.Config)) *events.Stream {
	t.Helper()
	cfg := events.DefaultConfig()
	cfg.Store, cfg.Node = store, node
	cfg.PollInterval = 5 * time.Millisecond
	cfg.Registerer = prometheus.NewRegistry()
	if edit != nil {
		edit(&cfg)
	}
	s, err := events.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// run runs s.Run until the test ends, and checks that it returned.
func run(t *testing.T, s *events.Stream) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of its context ending")
		}
	})
}

// read takes n events from sub, failing the test on a reset, an error or
// a 10 s deadline.
func read(t *testing.T, sub *events.Subscription, n int) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out := make([]events.Event, 0, n)
	for len(out) < n {
		e, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, e)
	}
	return out
}

// nextReset expects a *ResetError from sub.
func nextReset(t *testing.T, sub *events.Subscription) *events.ResetError {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := sub.Next(ctx)
	var r *events.ResetError
	if !errors.As(err, &r) {
		t.Fatalf("Next = %v, want a *ResetError", err)
	}
	return r
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}
