// Package persistence owns Switchboard's durable state: one small Store
// contract (get, compare-and-set put, delete, paged prefix scan, and a
// batch of conditioned puts and deletes in one atomic commit) and its
// engines.
//
//   - badger (OpenBadger): the embedded default, a folder on local disk
//     (--data), for one node and for development;
//   - PostgreSQL through pgx (OpenPostgres): the shared store (--store
//     postgres://...) a cluster of more than one node needs;
//   - memory (NewMemory): for tests and simulations.
//
// Every engine passes the conformance suite in persistence/storetest.
// Keys follow the same rules everywhere (see MaxKeyLen): 1 to 1024 bytes of
// UTF-8 without NUL, sorted bytewise; a bad key is ErrInvalidKey.
//
// Durability: badger fsyncs each commit (WithSyncWrites), and commits the
// Put, Delete and Batch calls queued at the same moment in one transaction
// (group commit: one sync for all); PostgreSQL commits each call on its
// own, a Batch in one transaction whose statements go in one pipeline. The PostgreSQL schema (table switchboard_kv, sequence
// switchboard_kv_version, migrations table switchboard_schema, in
// PostgresConfig.Schema) is created or migrated by OpenPostgres under an
// advisory lock, so nodes may start together.
//
// badger and pgx are used only here; the rest of Switchboard sees Store.
// This package must not know about actors, SIP or HTTP: values are opaque
// bytes.
//
// Metrics (registered on the registry the caller passes to Instrument):
//
//	switchboard_store_op_seconds{engine,op,result}  latency of each Store call
package persistence
