//go:build unix

// The stores the process tests run against: badger in a temporary folder,
// and PostgreSQL when SWITCHBOARD_TEST_POSTGRES names one.

package main

import (
	"crypto/rand"
	"net/http"
	"os"
	"strings"
	"testing"
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

// postgresStore shares the database's public.switchboard_kv with every
// other user of the DSN, so the test's account id is unique to this run,
// and the account is deleted through the API when the test ends.
func postgresStore(t *testing.T, purpose string) storeUnderTest {
	t.Helper()
	dsn := postgresDSN(t)
	st := storeUnderTest{flags: []string{"--store", dsn}, account: "t-" + purpose + "-" + randomID(), dsn: dsn}
	t.Cleanup(func() {
		n := startNode(t, nodeOptions{args: st.flags})
		if r := n.call(t, http.MethodDelete, "/v1/accounts/"+st.account, nil); r.Status != http.StatusNoContent && r.Status != http.StatusNotFound {
			t.Errorf("deleting test account %s: %s", st.account, r)
		}
		n.stop(t)
	})
	return st
}

// postgresDSN returns SWITCHBOARD_TEST_POSTGRES. Without it the test is
// skipped, except in CI (CI=true), where a skipped PostgreSQL test would
// hide that the shared store went untested.
func postgresDSN(t *testing.T) string {
	t.Helper()
	if dsn := os.Getenv("SWITCHBOARD_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	const msg = "SWITCHBOARD_TEST_POSTGRES is not set. To run the PostgreSQL process tests: apt-get install postgresql, " +
		"create a database (createdb switchboard_test), and set " +
		"SWITCHBOARD_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// randomID is 10 random characters valid in an id.
func randomID() string { return strings.ToLower(rand.Text()[:10]) }
