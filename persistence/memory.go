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

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if err := m.gate.enterKey(ctx, key); err != nil {
		return 0, err
	}
	defer m.gate.exit()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.putLocked(key, value, expect)
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
		if w.Delete {
			res[i].Err = m.deleteLocked(w.Key, w.Expect)
		} else {
			res[i].Version, res[i].Err = m.putLocked(w.Key, w.Value, w.Expect)
		}
	}
	return res, nil
}

func (m *Memory) putLocked(key string, value []byte, expect uint64) (uint64, error) {
	cur, exists := m.items[key]
	if err := checkVersion(false, exists, cur.version, expect); err != nil {
		return 0, err
	}
	m.version++
	m.items[key] = memItem{value: bytes.Clone(orEmpty(value)), version: m.version}
	if !exists {
		i, _ := slices.BinarySearch(m.keys, key)
		m.keys = slices.Insert(m.keys, i, key)
	}
	return m.version, nil
}

func (m *Memory) deleteLocked(key string, expect uint64) error {
	cur, exists := m.items[key]
	if err := checkVersion(true, exists, cur.version, expect); err != nil {
		return err
	}
	delete(m.items, key)
	i, _ := slices.BinarySearch(m.keys, key)
	m.keys = slices.Delete(m.keys, i, i+1)
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string, expect uint64) error {
	if err := m.gate.enterKey(ctx, key); err != nil {
		return err
	}
	defer m.gate.exit()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.deleteLocked(key, expect)
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
