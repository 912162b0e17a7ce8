package persistence

import (
	"context"
	"errors"
)

// Sentinel errors. Engines wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound means the key holds no value.
	ErrNotFound = errors.New("persistence: not found")
	// ErrConflict means a compare-and-set lost: the key's current version is not
	// the one the caller expected.
	ErrConflict = errors.New("persistence: version conflict")
	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("persistence: store closed")
)

// Version conditions for Put and Delete.
const (
	// MustNotExist makes Put succeed only when the key holds no value.
	MustNotExist uint64 = 0
	// AnyVersion makes Put and Delete unconditional.
	AnyVersion uint64 = ^uint64(0)
)

// Item is one stored value with the version it was written at. Versions are
// drawn from a store-wide increasing sequence, so a key deleted and written
// again never repeats an earlier version (no ABA for compare-and-set).
type Item struct {
	Key     string
	Value   []byte
	Version uint64
}

// Store is the small contract every engine implements. All methods are safe
// for concurrent use. A Put or Delete that returned nil is durable: it
// survives a crash of the process (and, for PostgreSQL, of the node).
type Store interface {
	// Get returns the item at key, or ErrNotFound.
	Get(ctx context.Context, key string) (Item, error)
	// Put writes value at key if the key's current version equals expect
	// (MustNotExist: the key must be absent; AnyVersion: no check) and
	// returns the new version. A lost compare-and-set returns ErrConflict
	// and changes nothing.
	Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error)
	// Delete removes key if its version equals expect (AnyVersion: no
	// check). Deleting an absent key returns ErrNotFound; a version
	// mismatch returns ErrConflict.
	Delete(ctx context.Context, key string, expect uint64) error
	// Scan returns up to limit items whose keys start with prefix and sort
	// (bytewise) strictly after the key after, in key order. Pass the last
	// key of a page as after to read the next page; an empty page ends the
	// scan. limit <= 0 means DefaultScanLimit.
	Scan(ctx context.Context, prefix, after string, limit int) ([]Item, error)
	// Batch applies writes in one atomic commit, made durable by one sync
	// (one transaction for PostgreSQL), in order: a later write of a key
	// sees the earlier ones. Each write is conditioned on its Expect like
	// Put and Delete; one whose condition fails gets ErrConflict (or, a
	// delete of an absent key, ErrNotFound) in its WriteResult and changes
	// nothing, while the others apply. A returned error means none applied
	// (or, when ctx ended after the batch was handed over, that it is not
	// known). An empty batch does nothing. A bad key fails the whole batch
	// with ErrInvalidKey.
	Batch(ctx context.Context, writes []Write) ([]WriteResult, error)
	// Close flushes and releases the store. Calls after Close return ErrClosed.
	Close() error
}

// Write is one change of a Batch: a put of Value at Key, or, when Delete
// is set, a delete of Key. Expect conditions it as it does Put and Delete.
type Write struct {
	Key    string
	Value  []byte
	Expect uint64
	Delete bool
}

// WriteResult is what one Write of a Batch did: the version a put wrote
// (0 for a delete), or why it changed nothing (Err: ErrConflict,
// ErrNotFound).
type WriteResult struct {
	Version uint64
	Err     error
}

func checkWrites(writes []Write) error {
	for _, w := range writes {
		if err := checkKey(w.Key); err != nil {
			return err
		}
	}
	return nil
}

// DefaultScanLimit is the page size used when Scan is given limit <= 0.
const DefaultScanLimit = 1000

// ScanAll reads every item under prefix, page by page.
func ScanAll(ctx context.Context, s Store, prefix string) ([]Item, error) {
	var all []Item
	after := ""
	for {
		page, err := s.Scan(ctx, prefix, after, DefaultScanLimit)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return all, nil
		}
		all = append(all, page...)
		after = page[len(page)-1].Key
	}
}
