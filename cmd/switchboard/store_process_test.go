//go:build unix

// The stores the process tests run against: badger in a temporary folder,
// and PostgreSQL when SWITCHBOARD_TEST_POSTGRES names one.

package main

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// storeUnderTest is the store a test's nodes run on, and the account the
// test provisions in it.
type storeUnderTest struct {
	flags   []string // --data DIR or --store DSN
	account string
	dataDir string // the badger folder; "" on PostgreSQL
	dsn     string // "" on badger
}

// stores are the engines every durability and secrecy test runs against.
var stores = []struct {
	name string
	open func(t *testing.T, purpose string) storeUnderTest
}{
	{"badger", badgerStore},
	{"postgres", postgresStore},
}

func badgerStore(t *testing.T, purpose string) storeUnderTest {
	dir := t.TempDir()
	return storeUnderTest{flags: []string{"--data", dir}, account: purpose, dataDir: dir}
}

// postgresStore runs the test's nodes on a database of their own (see
// postgresDSN).
func postgresStore(t *testing.T, purpose string) storeUnderTest {
	t.Helper()
	dsn := postgresDSN(t)
	return storeUnderTest{flags: []string{"--store", dsn}, account: "t-" + purpose + "-" + randomID(), dsn: dsn}
}

// testDatabases holds the database each test created, so that every call
// of postgresDSN within one test names the same one.
var testDatabases sync.Map // *testing.T -> DSN

// postgresDSN returns a database of the test's own, created beside the one
// SWITCHBOARD_TEST_POSTGRES names and dropped when the test ends. Nodes on
// one store find each other through it, so tests that run in parallel must
// not share one. Without SWITCHBOARD_TEST_POSTGRES the test is skipped,
// except in CI (CI=true), where a skipped PostgreSQL test would hide that
// the shared store went untested.
func postgresDSN(t *testing.T) string {
	t.Helper()
	if dsn, ok := testDatabases.Load(t); ok {
		return dsn.(string)
	}
	base := os.Getenv("SWITCHBOARD_TEST_POSTGRES")
	if base == "" {
		const msg = "SWITCHBOARD_TEST_POSTGRES is not set. To run the PostgreSQL process tests: apt-get install postgresql, " +
			"create a database (createdb switchboard_test), and set " +
			"SWITCHBOARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || strings.Trim(u.Path, "/") == "" {
		t.Fatalf("SWITCHBOARD_TEST_POSTGRES must be a postgres:// URL naming a database, e.g. "+
			"postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable; got %q (%v)", base, err)
	}
	name := strings.TrimPrefix(u.Path, "/") + "_" + randomID()
	// createdb and dropdb connect as the DSN says (host, port, user,
	// password, sslmode) through --maintenance-db.
	client := []string{"--maintenance-db=" + base}
	if out, err := exec.Command("createdb", append(client, name)...).CombinedOutput(); err != nil {
		t.Fatalf("createdb %s (apt-get install postgresql-client): %v\n%s", name, err, out)
	}
	t.Cleanup(func() { // registered before any node starts, so it runs after they are stopped
		testDatabases.Delete(t)
		if out, err := exec.Command("dropdb", append(client, "--force", name)...).CombinedOutput(); err != nil {
			t.Errorf("dropdb %s: %v\n%s", name, err, out)
		}
	})
	u.Path = "/" + name
	testDatabases.Store(t, u.String())
	return u.String()
}

// randomID is 10 random characters valid in an id.
func randomID() string { return strings.ToLower(rand.Text()[:10]) }

// openPostgres opens the store at dsn for the test to read behind the
// nodes' backs, closed when the test ends, and a context for its calls.
func openPostgres(t *testing.T, dsn string) (context.Context, persistence.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	store, err := persistence.OpenPostgres(ctx, dsn, persistence.DefaultPostgresConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return ctx, store
}
