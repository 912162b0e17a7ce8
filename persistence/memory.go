package persistence

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
)

// Memory is a Store held in process memory, for tests and simulations. It
// keeps the full Store contract, including the key rules and store-wide
// versions, but nothing survives Close or the process. The zero value is not
// usable; call NewMemory.
type Memory struct {
	gate gate

	mu      sync.Mutex
	items   map[string]memItem
	keys    []string // sorted bytewise, for Scan
	version uint64   // last version handed out
}

type memItem struct {
	value   []byte
	version uint64
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{items: make(map[string]memItem)}
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) (Item, error) {
	if err := m.gate.enterKey(ctx, key); err != nil {
		return Item{}, err
	}
	defer m.gate.exit()
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[key]
	if !ok {
		return Item{}, ErrNotFound
	}
	return Item{Key: key, Value: bytes.Clone(orEmpty(it.value)), Version: it.version}, nil
}

// Put implements Store, as a batch of one write.
func (m *Memory) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	res, err := m.Batch(ctx, []Write{{Key: key, Value: value, Expect: expect}})
	if err != nil {
		return 0, err
	}
	return res[0].Version, res[0].Err
}

// Batch implements Store: the writes apply under one lock, so no reader
// sees part of them.
func (m *Memory) Batch(ctx context.Context, writes []Write) ([]WriteResult, error) {
	if err := checkWrites(writes); err != nil {
		return nil, err
	}
	if err := m.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer m.gate.exit()
	m.mu.Lock()
	defer m.mu.Unlock()
	res := make([]WriteResult, len(writes))
	for i, w := range writes {
		cur, exists := m.items[w.Key]
		if res[i].Err = checkVersion(w.Delete, exists, cur.version, w.Expect); res[i].Err != nil {
			continue
		}
		k, _ := slices.BinarySearch(m.keys, w.Key)
		if w.Delete {
			delete(m.items, w.Key)
			m.keys = slices.Delete(m.keys, k, k+1)
			continue
		}
		if !exists {
			m.keys = slices.Insert(m.keys, k, w.Key)
		}
		m.version++
		m.items[w.Key] = memItem{value: bytes.Clone(orEmpty(w.Value)), version: m.version}
		res[i].Version = m.version
	}
	return res, nil
}

// Delete implements Store, as a batch of one write.
func (m *Memory) Delete(ctx context.Context, key string, expect uint64) error {
	res, err := m.Batch(ctx, []Write{{Key: key, Expect: expect, Delete: true}})
	if err != nil {
		return err
	}
	return res[0].Err
}

// Scan implements Store.
func (m *Memory) Scan(ctx context.Context, prefix, after string, limit int) ([]Item, error) {
	limit, err := m.gate.enterScan(ctx, prefix, after, limit)
	if err != nil {
		return nil, err
	}
	defer m.gate.exit()
	m.mu.Lock()
	defer m.mu.Unlock()
	// Start at the first key >= max(prefix, after), skipping after itself.
	i, _ := slices.BinarySearch(m.keys, max(prefix, after))
	var page []Item
	for ; i < len(m.keys) && len(page) < limit; i++ {
		k := m.keys[i]
		if !strings.HasPrefix(k, prefix) {
			break
		}
		if k == after {
			continue
		}
		it := m.items[k]
		page = append(page, Item{Key: k, Value: bytes.Clone(orEmpty(it.value)), Version: it.version})
	}
	return page, nil
}

// Close implements Store. It drops the data; later calls return ErrClosed.
func (m *Memory) Close() error {
	return m.gate.close(func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.items, m.keys = nil, nil
		return nil
	})
}

// checkVersion tells whether a put (or a delete, when del) conditioned on
// expect may proceed when the key exists (at version cur) or not: nil,
// ErrNotFound (a delete of an absent key) or ErrConflict.
func checkVersion(del, exists bool, cur, expect uint64) error {
	ok := expect == AnyVersion || exists && cur == expect
	switch {
	case del && !exists:
		return ErrNotFound
	case !del && expect == MustNotExist:
		ok = !exists
	}
	if !ok {
		return ErrConflict
	}
	return nil
}

// orEmpty turns a nil value into an empty one, so every engine returns a
// non-nil Value.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
