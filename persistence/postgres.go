package persistence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresConfig configures OpenPostgres. Start from DefaultPostgresConfig.
type PostgresConfig struct {
	// Schema holds the store's objects: the switchboard_kv table, its
	// version sequence and the switchboard_schema migrations table. It is
	// created if missing. A lower-case SQL identifier. Default "public".
	Schema string
	// ConnectTimeout bounds the first connection made at open, and each
	// later dial unless the DSN sets connect_timeout. Default 5s.
	ConnectTimeout time.Duration
	// MaxConns caps the connection pool. Default 0: pgx's default, the
	// larger of 4 and the number of CPUs.
	MaxConns int32
	// Logger receives schema migrations (info) and retried serialization
	// failures (debug). Default nil: discard.
	Logger *slog.Logger
}

// DefaultPostgresConfig returns the defaults documented on PostgresConfig.
func DefaultPostgresConfig() PostgresConfig {
	return PostgresConfig{
		Schema:         "public",
		ConnectTimeout: 5 * time.Second,
	}
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate reports the first setting that OpenPostgres cannot use.
func (c PostgresConfig) Validate() error {
	if !schemaName.MatchString(c.Schema) {
		return fmt.Errorf("persistence: postgres schema %q must be a lower-case SQL identifier (letters, digits, _; at most 63), e.g. \"public\"", c.Schema)
	}
	if c.ConnectTimeout <= 0 {
		return fmt.Errorf("persistence: postgres ConnectTimeout %v must be positive; 5s is a good start", c.ConnectTimeout)
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("persistence: postgres MaxConns %d is negative; use 0 for pgx's default", c.MaxConns)
	}
	return nil
}

// Retrying a statement that PostgreSQL aborted to break a serialization
// failure or a deadlock: attempts in all, and the first pause (doubled each
// time: 5, 10, 20, 40 ms).
const (
	pgMaxTries     = 5
	pgFirstBackoff = 5 * time.Millisecond
)

// pgMigrations are applied in order, each once, under an advisory lock.
// Append only: a released migration is never edited. %[1]s is the quoted
// schema.
var pgMigrations = []struct {
	version int
	sql     string
}{
	{1, `
CREATE SEQUENCE %[1]s.switchboard_kv_version AS bigint MINVALUE 1;
CREATE TABLE %[1]s.switchboard_kv (
	key     text COLLATE "C" PRIMARY KEY, -- "C": bytewise order, and LIKE 'p%%' can use the index
	value   bytea  NOT NULL,
	version bigint NOT NULL
);`},
}

// Postgres is the shared Store: one table in a PostgreSQL database that
// every node of a cluster opens. Versions come from a database sequence, so
// they never repeat, whichever node writes.
type Postgres struct {
	gate gate
	pool *pgxpool.Pool
	log  *slog.Logger
	q    pgQueries
}

type pgQueries struct {
	get, insert, upsert, cas, del, casDel, scan, scanBounded string
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to the database named by dsn (a postgres:// URL or
// key=value string), checks that it answers within cfg.ConnectTimeout, and
// creates or migrates the schema. Several nodes may open the same database
// at once. Close it to release the pool.
func OpenPostgres(ctx context.Context, dsn string, cfg PostgresConfig) (*Postgres, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	poolCfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password from the DSN it quotes.
		return nil, fmt.Errorf("persistence: postgres DSN: %w", err)
	}
	if cfg.MaxConns > 0 {
		poolCfg.MaxConns = cfg.MaxConns
	}
	if poolCfg.ConnConfig.ConnectTimeout == 0 {
		poolCfg.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	where := pgAddrs(poolCfg.ConnConfig.Config)
	password := poolCfg.ConnConfig.Password
	fail := func(format string, args ...any) error {
		return redactError(fmt.Errorf(format, args...), password)
	}

	log := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)).
		With("component", "persistence", "engine", "postgres", "addr", where, "schema", cfg.Schema)

	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fail("persistence: postgres at %s: %w", where, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	err = pool.Ping(pingCtx)
	cancel()
	if err != nil {
		pool.Close()
		return nil, fail("persistence: cannot connect to PostgreSQL at %s (database %q, user %q) within %v: %w; check that the server is running and that the DSN names the right host, port and credentials",
			where, poolCfg.ConnConfig.Database, poolCfg.ConnConfig.User, cfg.ConnectTimeout, err)
	}
	schema := pgx.Identifier{cfg.Schema}.Sanitize()
	if err := migrate(ctx, pool, cfg.Schema, log); err != nil {
		pool.Close()
		return nil, fail("persistence: postgres at %s: schema %s: %w", where, schema, err)
	}

	t := schema + ".switchboard_kv"
	next := fmt.Sprintf("nextval('%s.switchboard_kv_version')", schema)
	return &Postgres{pool: pool, log: log, q: pgQueries{
		get:    `SELECT value, version FROM ` + t + ` WHERE key = $1`,
		insert: `INSERT INTO ` + t + ` (key, value, version) VALUES ($1, $2, ` + next + `) ON CONFLICT (key) DO NOTHING RETURNING version`,
		// The SET's nextval runs after the row lock is held, so a key's
		// versions rise in commit order even under concurrent upserts.
		upsert: `INSERT INTO ` + t + ` (key, value, version) VALUES ($1, $2, ` + next + `)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = ` + next + ` RETURNING version`,
		cas: `UPDATE ` + t + ` SET value = $2, version = ` + next + ` WHERE key = $1 AND version = $3 RETURNING version`,
		del: `DELETE FROM ` + t + ` WHERE key = $1`,
		// Both EXISTS read the statement's snapshot, from before the DELETE:
		// (true, _) deleted; (false, true) version mismatch; (false, false)
		// absent.
		casDel: `WITH d AS (DELETE FROM ` + t + ` WHERE key = $1 AND version = $2 RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM d), EXISTS (SELECT 1 FROM ` + t + ` WHERE key = $1)`,
		// LIKE states the rule; the >= / < range lets the B-tree stop at
		// the end of the prefix even on a generic plan.
		scan: `SELECT key, value, version FROM ` + t + `
			WHERE key LIKE $1 ESCAPE E'\\' AND key > $2 AND key >= $3
			ORDER BY key LIMIT $4`,
		scanBounded: `SELECT key, value, version FROM ` + t + `
			WHERE key LIKE $1 ESCAPE E'\\' AND key > $2 AND key >= $3 AND key < $5
			ORDER BY key LIMIT $4`,
	}}, nil
}

// migrate brings the schema up to the last of pgMigrations. The advisory
// lock, held until the transaction ends, makes nodes starting together take
// turns; the second finds the work done.
func migrate(ctx context.Context, pool *pgxpool.Pool, schemaRaw string, log *slog.Logger) error {
	schema := pgx.Identifier{schemaRaw}.Sanitize()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			"switchboard_schema:"+schemaRaw); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		// Checked first rather than CREATE SCHEMA IF NOT EXISTS, which
		// needs the CREATE privilege on the database even when the schema
		// (say, public) is already there.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`,
			schemaRaw).Scan(&exists); err != nil {
			return fmt.Errorf("look up schema: %w", err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+schema+`.switchboard_schema (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create migrations table: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+schema+`.switchboard_schema`).Scan(&current); err != nil {
			return fmt.Errorf("read applied migrations: %w", err)
		}
		latest := pgMigrations[len(pgMigrations)-1].version
		if current > latest {
			return fmt.Errorf("database is at schema version %d, newer than the %d this switchboard knows; upgrade switchboard", current, latest)
		}
		for _, m := range pgMigrations {
			if m.version <= current {
				continue
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(m.sql, schema)); err != nil {
				return fmt.Errorf("apply migration %d: %w", m.version, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+schema+`.switchboard_schema (version) VALUES ($1)`, m.version); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
			log.Info("applied schema migration", "version", m.version)
		}
		return nil
	})
}

// Get implements Store.
func (p *Postgres) Get(ctx context.Context, key string) (Item, error) {
	if err := p.gate.enterKey(ctx, key); err != nil {
		return Item{}, err
	}
	defer p.gate.exit()
	var value []byte
	var version int64
	err := p.retry(ctx, func() error {
		return p.pool.QueryRow(ctx, p.q.get, key).Scan(&value, &version)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Item{}, ErrNotFound
	}
	if err != nil {
		return Item{}, fmt.Errorf("persistence: postgres get %q: %w", key, err)
	}
	return Item{Key: key, Value: orEmpty(value), Version: uint64(version)}, nil
}

// Put implements Store.
func (p *Postgres) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if err := p.gate.enterKey(ctx, key); err != nil {
		return 0, err
	}
	defer p.gate.exit()
	query, args := p.statement(Write{Key: key, Value: value, Expect: expect})
	var version int64
	err := p.retry(ctx, func() error {
		return p.pool.QueryRow(ctx, query, args...).Scan(&version)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("persistence: postgres put %q: %w", key, err)
	}
	return uint64(version), nil
}

// Delete implements Store. A delete that races with another writer's
// delete of the same key may report ErrConflict rather than ErrNotFound.
func (p *Postgres) Delete(ctx context.Context, key string, expect uint64) error {
	if err := p.gate.enterKey(ctx, key); err != nil {
		return err
	}
	defer p.gate.exit()
	var deleted, existed bool
	err := p.retry(ctx, func() error {
		if expect == AnyVersion {
			tag, err := p.pool.Exec(ctx, p.q.del, key)
			deleted, existed = tag.RowsAffected() > 0, false
			return err
		}
		return p.pool.QueryRow(ctx, p.q.casDel, key, int64(expect)).Scan(&deleted, &existed)
	})
	if err != nil {
		return fmt.Errorf("persistence: postgres delete %q: %w", key, err)
	}
	return deleteResult(deleted, existed)
}

// deleteResult is what a conditional delete did: nil (deleted), ErrConflict
// (the key is at another version) or ErrNotFound.
func deleteResult(deleted, existed bool) error {
	switch {
	case deleted:
		return nil
	case existed:
		return ErrConflict
	}
	return ErrNotFound
}

// Batch implements Store: one transaction, its statements sent in one
// pipeline (one round trip) and committed once. A conditional write that
// does not match returns no row, which aborts nothing: the others apply.
func (p *Postgres) Batch(ctx context.Context, writes []Write) ([]WriteResult, error) {
	if err := checkWrites(writes); err != nil {
		return nil, err
	}
	if len(writes) == 0 {
		return nil, ctx.Err()
	}
	if err := p.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer p.gate.exit()
	res := make([]WriteResult, len(writes))
	err := p.retry(ctx, func() error {
		return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
			var q pgx.Batch
			for _, w := range writes {
				query, args := p.statement(w)
				q.Queue(query, args...)
			}
			br := tx.SendBatch(ctx, &q)
			for i, w := range writes {
				res[i] = readWrite(br, w)
				if res[i].Err != nil && !errors.Is(res[i].Err, ErrConflict) && !errors.Is(res[i].Err, ErrNotFound) {
					_ = br.Close()
					return res[i].Err
				}
			}
			return br.Close()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: postgres batch of %d writes (first %q): %w", len(writes), writes[0].Key, err)
	}
	return res, nil
}

// statement is the query and arguments that carry out w: the same for a
// Batch as for Put and Delete. A nil value is stored empty (nil would be
// SQL NULL).
func (p *Postgres) statement(w Write) (string, []any) {
	switch {
	case w.Delete && w.Expect == AnyVersion:
		return p.q.del, []any{w.Key}
	case w.Delete:
		return p.q.casDel, []any{w.Key, int64(w.Expect)}
	case w.Expect == MustNotExist:
		return p.q.insert, []any{w.Key, orEmpty(w.Value)}
	case w.Expect == AnyVersion:
		return p.q.upsert, []any{w.Key, orEmpty(w.Value)}
	}
	return p.q.cas, []any{w.Key, orEmpty(w.Value), int64(w.Expect)}
}

// readWrite reads the result of w's statement in a Batch.
func readWrite(br pgx.BatchResults, w Write) WriteResult {
	switch {
	case w.Delete && w.Expect == AnyVersion:
		tag, err := br.Exec()
		if err == nil && tag.RowsAffected() == 0 {
			err = ErrNotFound
		}
		return WriteResult{Err: err}
	case w.Delete:
		var deleted, existed bool
		if err := br.QueryRow().Scan(&deleted, &existed); err != nil {
			return WriteResult{Err: err}
		}
		return WriteResult{Err: deleteResult(deleted, existed)}
	}
	var version int64
	err := br.QueryRow().Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return WriteResult{Err: ErrConflict}
	}
	return WriteResult{Version: uint64(version), Err: err}
}

// likeEscaper escapes LIKE's metacharacters (with '\' as the ESCAPE
// character) so that a prefix matches only itself.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Scan implements Store.
func (p *Postgres) Scan(ctx context.Context, prefix, after string, limit int) ([]Item, error) {
	limit, err := p.gate.enterScan(ctx, prefix, after, limit)
	if err != nil {
		return nil, err
	}
	defer p.gate.exit()
	query, args := p.q.scan, []any{likeEscaper.Replace(prefix) + "%", after, prefix, limit}
	if end, ok := prefixEnd(prefix); ok {
		query, args = p.q.scanBounded, append(args, end)
	}
	var page []Item
	err = p.retry(ctx, func() error {
		page = page[:0]
		rows, err := p.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var key string
			var value []byte
			var version int64
			if err := rows.Scan(&key, &value, &version); err != nil {
				rows.Close()
				return err
			}
			page = append(page, Item{Key: key, Value: orEmpty(value), Version: uint64(version)})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("persistence: postgres scan %q after %q: %w", prefix, after, err)
	}
	return page, nil
}

// Close waits for calls in flight and closes the pool. Later calls return
// ErrClosed; Close again returns nil.
func (p *Postgres) Close() error {
	return p.gate.close(func() error {
		p.pool.Close()
		return nil
	})
}

// retry runs fn, again after a short pause when PostgreSQL aborted it to
// resolve a serialization failure (40001) or a deadlock (40P01); both mean
// "try again" and change nothing.
func (p *Postgres) retry(ctx context.Context, fn func() error) error {
	backoff := pgFirstBackoff
	for try := 1; ; try++ {
		err := fn()
		var pgErr *pgconn.PgError
		if err == nil || try == pgMaxTries || !errors.As(err, &pgErr) ||
			(pgErr.Code != "40001" && pgErr.Code != "40P01") {
			return err
		}
		p.log.Debug("retrying after transient conflict", "sqlstate", pgErr.Code, "try", try, "backoff", backoff)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// prefixEnd returns the least string above every string that starts with
// prefix, or false when there is none (prefix empty or all U+10FFFF). UTF-8
// sorts bytewise in code-point order, so bumping the last code point works.
func prefixEnd(prefix string) (string, bool) {
	r := []rune(prefix)
	for len(r) > 0 {
		last := r[len(r)-1]
		if last == utf8.MaxRune {
			r = r[:len(r)-1]
			continue
		}
		last++
		if last == 0xD800 { // skip the surrogates, which UTF-8 cannot hold
			last = 0xE000
		}
		r[len(r)-1] = last
		return string(r), true
	}
	return "", false
}

// pgAddrs names the host:port (or socket) pairs a config dials, without
// credentials, e.g. "db1:5432,db2:5432".
func pgAddrs(c pgconn.Config) string {
	var addrs []string
	for _, f := range append([]*pgconn.FallbackConfig{{Host: c.Host, Port: c.Port}}, c.Fallbacks...) {
		if a := net.JoinHostPort(f.Host, strconv.Itoa(int(f.Port))); !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return strings.Join(addrs, ",")
}

// redactError hides password in err's text, whatever layer put it there,
// while keeping err's chain for errors.Is and errors.As.
func redactError(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), password, "xxxxx"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
