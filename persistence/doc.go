// Package persistence owns Switchboard's durable state: one small Store
// contract (get, compare-and-set put, delete, paged prefix scan) and its
// engines.
//
//   - badger (OpenBadger): the embedded default, a folder on local disk
//     (--data), for one node and for development;
//   - PostgreSQL through pgx (OpenPostgres): the shared store (--store
//     postgres://...) a cluster of more than one node needs;
//   - memory (NewMemory): for tests and simulations.
//
// Every engine passes the conformance suite in persistence/storetest.
// badger and pgx are used only here; the rest of Switchboard sees Store.
// This package must not know about actors, SIP or HTTP: values are opaque
// bytes.
//
// Metrics (registered on the registry the caller passes to Instrument):
//
//	switchboard_store_op_seconds{engine,op,result}  latency of each Store call
package persistence
