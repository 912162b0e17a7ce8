package persistence_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-pbx/switchboard/persistence"
	"github.com/switchboard-pbx/switchboard/persistence/storetest"
)

const postgresEnv = "SWITCHBOARD_TEST_POSTGRES"

const postgresHowTo = postgresEnv + ` is not set, so the PostgreSQL tests cannot run. To run them:
  apt-get install postgresql        # then start a server, e.g. with pg_ctl or the service
  psql -c 'create database switchboard_test'
  export ` + postgresEnv + `='postgres://postgres@127.0.0.1:5432/switchboard_test?sslmode=disable'
Each test works in a schema of its own and drops it afterwards.`

// postgresDSN returns the test database's DSN. Without one the tests skip,
// except under CI=true, where a missing database is a broken pipeline.
func postgresDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(postgresEnv)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal(postgresHowTo)
		}
		tb.Skip(postgresHowTo)
	}
	return dsn
}

// testSchema returns the name of a schema no other test uses, and drops it
// (with everything the store created in it) when tb ends.
func testSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	schema := "sbtest_" + strings.ToLower(rand.Text())
	tb.Cleanup(func() {
		// tb's own context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("drop test schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	return schema
}

func postgresConfig(schema string) persistence.PostgresConfig {
	cfg := persistence.DefaultPostgresConfig()
	cfg.Schema = schema
	return cfg
}

func openPostgres(tb testing.TB, dsn, schema string) *persistence.Postgres {
	tb.Helper()
	s, err := persistence.OpenPostgres(tb.Context(), dsn, postgresConfig(schema))
	if err != nil {
		tb.Fatalf("OpenPostgres: %v", err)
	}
	tb.Cleanup(func() { closeStore(tb, s) })
	return s
}

func TestPostgres_Conformance(t *testing.T) {
	dsn := postgresDSN(t)
	var (
		mu      sync.Mutex
		schemas = map[*testing.T]string{}
	)
	storetest.Run(t,
		func(t *testing.T) persistence.Store {
			schema := testSchema(t, dsn)
			mu.Lock()
			schemas[t] = schema
			mu.Unlock()
			return openPostgres(t, dsn, schema)
		},
		func(t *testing.T) persistence.Store {
			mu.Lock()
			schema := schemas[t]
			mu.Unlock()
			return openPostgres(t, dsn, schema)
		})
}

// The open error must tell an operator where it tried to connect, and must
// never print the password: it ends up in logs and bug reports.
func TestPostgres_UnreachableErrorNamesHostNotPassword(t *testing.T) {
	const password = "hunter2-secret"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	host, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct{ name, dsn string }{
		{"URL", fmt.Sprintf("postgres://switchboard:%s@%s/switchboard?sslmode=disable", password, addr)},
		{"key=value", fmt.Sprintf("host=%s port=%s user=switchboard password=%s dbname=switchboard sslmode=disable", host, port, password)},
		{"URL with sslmode=prefer", fmt.Sprintf("postgres://switchboard:%s@%s/switchboard", password, addr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := persistence.DefaultPostgresConfig()
			cfg.ConnectTimeout = 2 * time.Second
			s, err := persistence.OpenPostgres(t.Context(), tc.dsn, cfg)
			if err == nil {
				s.Close()
				t.Fatalf("OpenPostgres to closed port %s succeeded", addr)
			}
			msg := err.Error()
			if !strings.Contains(msg, addr) {
				t.Errorf("error does not name %s: %s", addr, msg)
			}
			if strings.Contains(msg, password) {
				t.Errorf("error reveals the password: %s", msg)
			}
		})
	}
}

func TestPostgres_BadDSNErrorHidesPassword(t *testing.T) {
	const password = "hunter2-secret"
	_, err := persistence.OpenPostgres(t.Context(),
		"postgres://switchboard:"+password+"@127.0.0.1:notaport/db", persistence.DefaultPostgresConfig())
	if err == nil {
		t.Fatal("OpenPostgres accepted a DSN with a bad port")
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error reveals the password: %s", err)
	}
}

// Nodes of a cluster start together against one database: the advisory lock
// makes their migrations take turns, so every open succeeds and each
// migration is recorded once.
func TestPostgres_ConcurrentOpensMigrateOnce(t *testing.T) {
	dsn := postgresDSN(t)
	schema := testSchema(t, dsn)
	const nodes = 6
	var wg sync.WaitGroup
	stores := make([]*persistence.Postgres, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = persistence.OpenPostgres(t.Context(), dsn, postgresConfig(schema))
		})
	}
	close(start)
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Errorf("node %d: OpenPostgres: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { closeStore(t, stores[i]) })
	}
	if t.Failed() {
		return
	}
	var applied []int
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(t.Context(), "SELECT version FROM "+pgx.Identifier{schema}.Sanitize()+".switchboard_schema ORDER BY version")
	applied, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 1 || applied[0] != 1 {
		t.Fatalf("switchboard_schema holds versions %v, want [1]", applied)
	}
	// And the nodes see one store.
	v, err := stores[0].Put(t.Context(), "k", []byte("from node 0"), persistence.MustNotExist)
	if err != nil {
		t.Fatal(err)
	}
	if it, err := stores[nodes-1].Get(t.Context(), "k"); err != nil || it.Version != v {
		t.Fatalf("node %d Get = %v, %v; want the version %d node 0 wrote", nodes-1, it, err, v)
	}
}

// A database migrated by a newer switchboard must not be written by an
// older one, which would not know its schema.
func TestPostgres_RefusesNewerSchema(t *testing.T) {
	dsn := postgresDSN(t)
	schema := testSchema(t, dsn)
	s := openPostgres(t, dsn, schema)
	closeStore(t, s)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "INSERT INTO "+pgx.Identifier{schema}.Sanitize()+".switchboard_schema (version) VALUES (999)"); err != nil {
		t.Fatal(err)
	}
	s, err = persistence.OpenPostgres(t.Context(), dsn, postgresConfig(schema))
	if err == nil {
		s.Close()
		t.Fatal("OpenPostgres accepted a schema at version 999")
	}
	if !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("error does not say the schema is newer and to upgrade: %v", err)
	}
}

func TestPostgresConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*persistence.PostgresConfig)
		ok     bool
	}{
		{"default", func(*persistence.PostgresConfig) {}, true},
		{"schema with digits", func(c *persistence.PostgresConfig) { c.Schema = "switchboard_2" }, true},
		{"empty schema", func(c *persistence.PostgresConfig) { c.Schema = "" }, false},
		{"quoted schema", func(c *persistence.PostgresConfig) { c.Schema = `a"; DROP TABLE x; --` }, false},
		{"upper-case schema", func(c *persistence.PostgresConfig) { c.Schema = "Public" }, false},
		{"schema too long", func(c *persistence.PostgresConfig) { c.Schema = strings.Repeat("s", 64) }, false},
		{"zero timeout", func(c *persistence.PostgresConfig) { c.ConnectTimeout = 0 }, false},
		{"negative MaxConns", func(c *persistence.PostgresConfig) { c.MaxConns = -1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := persistence.DefaultPostgresConfig()
			tc.change(&cfg)
			if err := cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
