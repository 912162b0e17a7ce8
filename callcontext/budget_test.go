package callcontext

import (
	"fmt"
	"reflect"
	"testing"
)

func TestBudget_EvictsLeastRecentlyUsedFirst(t *testing.T) {
	b := NewBudget(3 * (EntryOverhead + 100))
	for _, id := range []string{"a", "b", "c"} {
		if ev := b.Touch(id, 100, id); len(ev) != 0 {
			t.Fatalf("Touch(%s) evicted %v within the budget", id, ev)
		}
	}
	b.Touch("a", 100, "a") // a is now the most recent; b the least
	if ev := b.Touch("d", 100, "d"); !reflect.DeepEqual(ev, []Evicted{{"b", "b"}}) {
		t.Fatalf("evicted %v, want [b]", ev)
	}
	if ev := b.Touch("c", 100+2*(EntryOverhead+100), "c"); !reflect.DeepEqual(ev, []Evicted{{"a", "a"}, {"d", "d"}}) {
		t.Fatalf("a context grown past the rest evicted %v, want [a d]", ev)
	}
	b.Remove("c", "x") // not its owner: kept
	if st := b.Stats(); st.Contexts != 1 {
		t.Fatalf("Remove by another owner dropped the entry: %+v", st)
	}
	b.Remove("c", "c")
	if st := b.Stats(); st.Contexts != 0 || st.Bytes != 0 || st.Evictions != 3 {
		t.Fatalf("stats after removing the last = %+v", st)
	}
}

// TestBudget_100000ContextsStayWithinBudget: the issue's "100,000 contexts
// stay within the memory budget".
func TestBudget_100000ContextsStayWithinBudget(t *testing.T) {
	const limit = 64 << 20
	b := NewBudget(limit)
	live := map[string]bool{}
	for i := range 100_000 {
		id := fmt.Sprintf("call-%d", i)
		live[id] = true
		for _, ev := range b.Touch(id, int64(200+i%1000), nil) {
			delete(live, ev.ID)
		}
		if i%7 == 0 && i > 0 {
			// Re-reads keep some old ones warm.
			old := fmt.Sprintf("call-%d", i/2)
			live[old] = true
			for _, ev := range b.Touch(old, 300, nil) {
				delete(live, ev.ID)
			}
		}
		if st := b.Stats(); st.Bytes > limit {
			t.Fatalf("after %d contexts: %d bytes accounted, over %d", i+1, st.Bytes, limit)
		}
	}
	st := b.Stats()
	if st.Contexts != len(live) {
		t.Fatalf("budget accounts %d contexts, owners hold %d", st.Contexts, len(live))
	}
	if st.Contexts == 0 || st.Evictions == 0 {
		t.Fatalf("stats %+v: expected both cached contexts and evictions", st)
	}
	t.Logf("100000 contexts: %d cached, %d bytes of %d, %d evicted", st.Contexts, st.Bytes, int64(limit), st.Evictions)
}

func TestBudget_HitRatio(t *testing.T) {
	b := NewBudget(1 << 20)
	b.Miss()
	b.Hit()
	b.Hit()
	b.Hit()
	if got := b.Stats().HitRatio; got != 0.75 {
		t.Fatalf("hit ratio %v, want 0.75", got)
	}
}
