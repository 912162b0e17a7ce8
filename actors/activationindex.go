package actors

import (
	"cmp"
	"maps"
	"strings"

	"github.com/google/btree"
)

// ActivationKey is where an activation sorts in a listing: by kind, then
// identity. The zero key sorts before every activation.
type ActivationKey struct {
	Kind, Identity string
}

// Key is the activation's place in a listing.
func (a *Activation) Key() ActivationKey { return ActivationKey{a.Kind, a.Identity} }

// Compare orders keys by kind, then identity.
func (k ActivationKey) Compare(o ActivationKey) int {
	return cmp.Or(strings.Compare(k.Kind, o.Kind), strings.Compare(k.Identity, o.Identity))
}

// ActivationIndex keeps a node's activations in key order, with a count
// per kind, so that a page of them costs O(log n + page), finding one
// O(log n) and counting them O(kinds): no request lists or sorts them
// all. It is not safe for concurrent use: the Lookup that owns one guards
// it with its own lock.
type ActivationIndex struct {
	tree   *btree.BTreeG[*Activation]
	counts map[string]int
}

// NewActivationIndex returns an empty index.
func NewActivationIndex() *ActivationIndex {
	return &ActivationIndex{
		tree:   btree.NewG(32, func(a, b *Activation) bool { return a.Key().Compare(b.Key()) < 0 }),
		counts: map[string]int{},
	}
}

func pivot(k ActivationKey) *Activation { return &Activation{Kind: k.Kind, Identity: k.Identity} }

// Put indexes act, in place of any activation with its key.
func (x *ActivationIndex) Put(act *Activation) {
	if _, replaced := x.tree.ReplaceOrInsert(act); !replaced {
		x.counts[act.Kind]++
	}
}

// Remove drops act, if it is the activation indexed under its key.
func (x *ActivationIndex) Remove(act *Activation) {
	if cur, ok := x.tree.Get(act); !ok || cur != act {
		return
	}
	x.tree.Delete(act)
	if x.counts[act.Kind]--; x.counts[act.Kind] == 0 {
		delete(x.counts, act.Kind)
	}
}

// Get returns the activation indexed under k.
func (x *ActivationIndex) Get(k ActivationKey) (*Activation, bool) {
	return x.tree.Get(pivot(k))
}

// Len is how many activations the index holds.
func (x *ActivationIndex) Len() int { return x.tree.Len() }

// Count is the number of activations of kind.
func (x *ActivationIndex) Count(kind string) int { return x.counts[kind] }

// Counts returns how many activations of each kind the index holds.
func (x *ActivationIndex) Counts() map[string]int { return maps.Clone(x.counts) }

// Page returns, in key order, at most limit activations of kind ("" for
// every kind) whose keys sort after after, and whether more follow.
// limit <= 0 means no limit.
func (x *ActivationIndex) Page(kind string, after ActivationKey, limit int) (page []*Activation, more bool) {
	start := after
	if kind != "" && strings.Compare(after.Kind, kind) < 0 {
		start = ActivationKey{Kind: kind}
	}
	x.tree.AscendGreaterOrEqual(pivot(start), func(a *Activation) bool {
		k := a.Key()
		if k == after {
			return true
		}
		if kind != "" && a.Kind != kind {
			return false
		}
		if limit > 0 && len(page) == limit {
			more = true
			return false
		}
		page = append(page, a)
		return true
	})
	return page, more
}
