// Package storetest is the conformance suite every persistence.Store engine
// must pass. An engine's tests call Run with a function that opens a fresh,
// empty store; the suite then checks the contract documented on
// persistence.Store, one subtest per rule.
//
// This package imports testing and is meant for _test.go files only.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// Run runs the conformance suite against one engine.
//
// open must return a new, empty store private to t, and close it in
// t.Cleanup (the suite closes some stores itself; Close is idempotent).
//
// reopen, if not nil, must close nothing and return a new handle on the
// storage that open(t) created for the same t, after the suite has closed
// the first handle; it too closes its store in t.Cleanup. A nil reopen (an
// engine with nothing durable, such as memory) skips the restart checks.
func Run(t *testing.T, open func(t *testing.T) persistence.Store, reopen func(t *testing.T) persistence.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, open, reopen func(*testing.T) persistence.Store)
	}{
		{"GetMissingIsNotFound", testGetMissing},
		{"PutGetRoundtrip", testRoundtrip},
		{"ValuesAreCopied", testValuesAreCopied},
		{"MustNotExistTwiceConflicts", testMustNotExistTwice},
		{"StaleCASConflictsAndChangesNothing", testStaleCAS},
		{"VersionsIncreaseAndNeverRepeat", testVersions},
		{"ConcurrentCASHasOneWinner", testConcurrentCAS},
		{"ConcurrentIncrementsAreNotLost", testConcurrentIncrements},
		{"LargeValueRoundtrip", testLargeValue},
		{"ScanPagesPrefixInOrderExactlyOnce", testScanPaging},
		{"ScanAfterCursor", testScanAfter},
		{"ScanSortsBytewise", testScanBytewise},
		{"ScanPrefixWithLikeMetacharacters", testScanMetachars},
		{"DeleteSemantics", testDelete},
		{"InvalidKeysRejected", testInvalidKeys},
		{"ReopenKeepsDataAndVersionsRise", testReopen},
		{"UseAfterCloseIsErrClosed", testUseAfterClose},
		{"CloseWaitsForCallsInFlight", testCloseWhileBusy},
		{"CancelledContextDoesNothing", testCancelledContext},
		{"BatchAppliesInOrderEachWriteChecked", testBatch},
		{"BatchBadKeyOrCancelledChangesNothing", testBatchRejected},
		{"BatchIsAllOrNothingToReaders", testBatchAtomic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open, reopen) })
	}
}

type opener = func(*testing.T) persistence.Store

func put(t *testing.T, s persistence.Store, key string, value []byte, expect uint64) uint64 {
	t.Helper()
	v, err := s.Put(t.Context(), key, value, expect)
	if err != nil {
		t.Fatalf("Put(%q, expect %d): %v", key, expect, err)
	}
	return v
}

func get(t *testing.T, s persistence.Store, key string) persistence.Item {
	t.Helper()
	it, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if it.Key != key {
		t.Fatalf("Get(%q) returned key %q", key, it.Key)
	}
	return it
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func wantItem(t *testing.T, s persistence.Store, key string, value []byte, version uint64) {
	t.Helper()
	it := get(t, s, key)
	if !bytes.Equal(it.Value, value) || it.Version != version {
		t.Fatalf("Get(%q) = (%.40q, v%d), want (%.40q, v%d)", key, it.Value, it.Version, value, version)
	}
}

// wantMissing checks that key holds no value.
func wantMissing(t *testing.T, s persistence.Store, what, key string) {
	t.Helper()
	_, err := s.Get(t.Context(), key)
	wantErr(t, what, err, persistence.ErrNotFound)
}

func mustClose(t *testing.T, s persistence.Store, what string) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testGetMissing(t *testing.T, open, _ opener) {
	wantMissing(t, open(t), "Get of a key never written", "missing")
}

func testRoundtrip(t *testing.T, open, _ opener) {
	s := open(t)
	v1 := put(t, s, "k", []byte("one"), persistence.MustNotExist)
	wantItem(t, s, "k", []byte("one"), v1)

	v2 := put(t, s, "k", []byte("two"), v1)
	wantItem(t, s, "k", []byte("two"), v2)

	v3 := put(t, s, "k", []byte("three"), persistence.AnyVersion)
	wantItem(t, s, "k", []byte("three"), v3)

	v4 := put(t, s, "fresh", []byte("any"), persistence.AnyVersion)
	wantItem(t, s, "fresh", []byte("any"), v4)

	v5 := put(t, s, "empty", nil, persistence.MustNotExist)
	if it := get(t, s, "empty"); len(it.Value) != 0 || it.Version != v5 {
		t.Fatalf("empty value came back as (%q, v%d), want (\"\", v%d)", it.Value, it.Version, v5)
	}
	binary := []byte{0, 1, 0xff, 0xfe, '\n', 0}
	v6 := put(t, s, "binary", binary, persistence.MustNotExist)
	wantItem(t, s, "binary", binary, v6)
}

func testValuesAreCopied(t *testing.T, open, _ opener) {
	s := open(t)
	in := []byte("original")
	v := put(t, s, "k", in, persistence.MustNotExist)
	copy(in, "CHANGED!")
	wantItem(t, s, "k", []byte("original"), v)
	out := get(t, s, "k")
	copy(out.Value, "CHANGED!")
	wantItem(t, s, "k", []byte("original"), v)
}

func testMustNotExistTwice(t *testing.T, open, _ opener) {
	s := open(t)
	v := put(t, s, "k", []byte("first"), persistence.MustNotExist)
	_, err := s.Put(t.Context(), "k", []byte("second"), persistence.MustNotExist)
	wantErr(t, "second Put with MustNotExist", err, persistence.ErrConflict)
	wantItem(t, s, "k", []byte("first"), v)
}

func testStaleCAS(t *testing.T, open, _ opener) {
	s := open(t)
	v1 := put(t, s, "k", []byte("one"), persistence.MustNotExist)
	v2 := put(t, s, "k", []byte("two"), v1)
	_, err := s.Put(t.Context(), "k", []byte("stale"), v1)
	wantErr(t, "Put with the previous version", err, persistence.ErrConflict)
	_, err = s.Put(t.Context(), "k", []byte("future"), v2+1000)
	wantErr(t, "Put with a version never issued", err, persistence.ErrConflict)
	_, err = s.Put(t.Context(), "absent", []byte("x"), v2)
	wantErr(t, "Put with a version on an absent key", err, persistence.ErrConflict)
	wantItem(t, s, "k", []byte("two"), v2)
	wantMissing(t, s, "a lost CAS on an absent key created it", "absent")
}

func testVersions(t *testing.T, open, _ opener) {
	s := open(t)
	ctx := t.Context()
	var last uint64
	seen := map[uint64]bool{}
	check := func(what string, v uint64) uint64 {
		t.Helper()
		switch {
		case v == persistence.MustNotExist || v == persistence.AnyVersion:
			t.Fatalf("%s: version %d is reserved", what, v)
		case seen[v]:
			t.Fatalf("%s: version %d repeated", what, v)
		case v <= last:
			t.Fatalf("%s: version %d not above the previous %d", what, v, last)
		}
		seen[v], last = true, v
		return v
	}
	v1 := check("create a", put(t, s, "a", []byte("1"), persistence.MustNotExist))
	check("create b", put(t, s, "b", []byte("1"), persistence.MustNotExist))
	v3 := check("CAS a", put(t, s, "a", []byte("2"), v1))
	v4 := check("overwrite a", put(t, s, "a", []byte("3"), persistence.AnyVersion))
	if err := s.Delete(ctx, "a", v4); err != nil {
		t.Fatalf("Delete(a, v%d): %v", v4, err)
	}
	v5 := check("recreate a", put(t, s, "a", []byte("4"), persistence.MustNotExist))
	// No ABA: versions from before the delete must not match the new key.
	for _, old := range []uint64{v1, v3, v4} {
		_, err := s.Put(ctx, "a", []byte("aba"), old)
		wantErr(t, fmt.Sprintf("CAS on recreated key with pre-delete version %d", old), err, persistence.ErrConflict)
	}
	if err := s.Delete(ctx, "a", persistence.AnyVersion); err != nil {
		t.Fatalf("Delete(a, AnyVersion): %v", err)
	}
	v6 := check("recreate a by AnyVersion", put(t, s, "a", []byte("5"), persistence.AnyVersion))
	if v6 <= v5 {
		t.Fatalf("unreachable: check let %d <= %d pass", v6, v5)
	}
	wantItem(t, s, "a", []byte("5"), v6)
}

func testConcurrentCAS(t *testing.T, open, _ opener) {
	const racers = 32
	s := open(t)
	v0 := put(t, s, "k", []byte("start"), persistence.MustNotExist)
	var (
		wg        sync.WaitGroup
		start     = make(chan struct{})
		winners   atomic.Int32
		conflicts atomic.Int32
		winVal    atomic.Value
		winVer    atomic.Uint64
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			val := []byte("racer-" + strconv.Itoa(i))
			v, err := s.Put(t.Context(), "k", val, v0)
			switch {
			case err == nil:
				winners.Add(1)
				winVal.Store(val)
				winVer.Store(v)
			case errors.Is(err, persistence.ErrConflict):
				conflicts.Add(1)
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if winners.Load() != 1 || conflicts.Load() != racers-1 {
		t.Fatalf("%d racers CAS from v%d: %d won, %d conflicted; want exactly 1 and %d",
			racers, v0, winners.Load(), conflicts.Load(), racers-1)
	}
	wantItem(t, s, "k", winVal.Load().([]byte), winVer.Load())
}

func testConcurrentIncrements(t *testing.T, open, _ opener) {
	const workers, each = 8, 25
	s := open(t)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions = map[uint64]int{}
	)
	for w := range workers {
		wg.Go(func() {
			ctx := t.Context()
			for done := 0; done < each; {
				n, expect := 0, persistence.MustNotExist
				it, err := s.Get(ctx, "counter")
				switch {
				case errors.Is(err, persistence.ErrNotFound):
				case err != nil:
					t.Errorf("worker %d: Get: %v", w, err)
					return
				default:
					if n, err = strconv.Atoi(string(it.Value)); err != nil {
						t.Errorf("worker %d: counter holds %q: %v", w, it.Value, err)
						return
					}
					expect = it.Version
				}
				v, err := s.Put(ctx, "counter", []byte(strconv.Itoa(n+1)), expect)
				if errors.Is(err, persistence.ErrConflict) {
					continue // lost the race: read again
				}
				if err != nil {
					t.Errorf("worker %d: Put: %v", w, err)
					return
				}
				mu.Lock()
				versions[v]++
				mu.Unlock()
				done++
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	it := get(t, s, "counter")
	if string(it.Value) != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s after %d×%d CAS increments, want %d", it.Value, workers, each, workers*each)
	}
	if len(versions) != workers*each {
		t.Fatalf("%d successful increments returned only %d distinct versions", workers*each, len(versions))
	}
}

func testLargeValue(t *testing.T, open, _ opener) {
	s := open(t)
	big := randomBytes(4<<20, 1)
	v := put(t, s, "big", big, persistence.MustNotExist)
	wantItem(t, s, "big", big, v)
	bigger := randomBytes(4<<20+1, 2)
	v2 := put(t, s, "big", bigger, v)
	wantItem(t, s, "big", bigger, v2)
	page, err := s.Scan(t.Context(), "big", "", 10)
	if err != nil {
		t.Fatalf("Scan(big): %v", err)
	}
	if len(page) != 1 || !bytes.Equal(page[0].Value, bigger) {
		t.Fatalf("Scan(big) returned %d items, or the wrong value", len(page))
	}
}

// randomBytes is seeded, so a failure reproduces.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// putAll writes keys (value = key) with a few writers at once, which lets
// engines that fsync each commit group them, and returns each key's version.
func putAll(t *testing.T, s persistence.Store, keys []string) map[string]uint64 {
	t.Helper()
	const writers = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions = make(map[string]uint64, len(keys))
		next     atomic.Int64
	)
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				v, err := s.Put(t.Context(), keys[i], []byte(keys[i]), persistence.MustNotExist)
				if err != nil {
					t.Errorf("Put(%q): %v", keys[i], err)
					return
				}
				mu.Lock()
				versions[keys[i]] = v
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return versions
}

// scanPages reads prefix page by page, checking each page's shape.
func scanPages(t *testing.T, s persistence.Store, prefix string, limit int) []persistence.Item {
	t.Helper()
	var all []persistence.Item
	after := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("Scan(%q) never returned an empty page", prefix)
		}
		page, err := s.Scan(t.Context(), prefix, after, limit)
		if err != nil {
			t.Fatalf("Scan(%q, after %q, %d): %v", prefix, after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("Scan(%q, after %q, %d) returned %d items", prefix, after, limit, len(page))
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Key
	}
}

func keysOf(items []persistence.Item) []string {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	return keys
}

// wantScan checks that a scan of prefix returns exactly want (sorted here),
// by pages of limit.
func wantScan(t *testing.T, s persistence.Store, prefix string, limit int, want []string) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want) // Go compares strings bytewise: the order Scan promises
	got := keysOf(scanPages(t, s, prefix, limit))
	if !slices.Equal(got, want) {
		t.Fatalf("Scan(%q) by pages of %d:\n got %q\nwant %q", prefix, limit, got, want)
	}
}

func testScanPaging(t *testing.T, open, _ opener) {
	s := open(t)
	const n, limit = 2500, 100
	var keys, inPrefix []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("a/%05d", i))
	}
	inPrefix = append(inPrefix, keys...)
	inPrefix = append(inPrefix, "a/") // the prefix itself is a key under it
	keys = append(keys, "a/",
		// Outside the prefix, on both sides of it: "a0" is the first string
		// past every "a/..." ('0' follows '/'), "a." the last before.
		"a", "a.", "a0", "a0/00001", "`", "b", "b/00001", "A/00001")
	versions := putAll(t, s, keys)

	items := scanPages(t, s, "a/", limit)
	for i, it := range items {
		if want := versions[it.Key]; it.Version != want || string(it.Value) != it.Key {
			t.Fatalf("item %d: (%q, %q, v%d), want value = key at v%d", i, it.Key, it.Value, it.Version, want)
		}
	}
	wantScan(t, s, "a/", limit, inPrefix)
	wantScan(t, s, "a", 7, append(slices.Clone(inPrefix), "a", "a.", "a0", "a0/00001"))
	wantScan(t, s, "", 333, keys)

	all, err := persistence.ScanAll(t.Context(), s, "a/")
	if err != nil {
		t.Fatalf("ScanAll: %v", err)
	}
	if len(all) != len(inPrefix) {
		t.Fatalf("ScanAll(a/) returned %d items, want %d", len(all), len(inPrefix))
	}
	page, err := s.Scan(t.Context(), "a/", "", 0)
	if err != nil {
		t.Fatalf("Scan with limit 0: %v", err)
	}
	if len(page) != persistence.DefaultScanLimit {
		t.Fatalf("Scan with limit 0 returned %d items, want DefaultScanLimit (%d)", len(page), persistence.DefaultScanLimit)
	}
}

func testScanAfter(t *testing.T, open, _ opener) {
	s := open(t)
	putAll(t, s, []string{"c/1", "c/2", "c/3", "b/9", "d/0"})
	for _, tc := range []struct {
		prefix, after string
		want          []string
	}{
		{"c/", "", []string{"c/1", "c/2", "c/3"}},
		{"c/", "c/2", []string{"c/3"}},               // strictly after an existing key
		{"c/", "c/15", []string{"c/2", "c/3"}},       // after a key that does not exist
		{"c/", "b/9", []string{"c/1", "c/2", "c/3"}}, // after below the prefix
		{"c/", "c/3", nil},
		{"c/", "d", nil}, // after above the prefix
		{"", "c/3", []string{"d/0"}},
		{"", "", []string{"b/9", "c/1", "c/2", "c/3", "d/0"}},
		{"c/2", "", []string{"c/2"}},
		{"c/2", "c/2", nil},
		{"e", "", nil},
	} {
		page, err := s.Scan(t.Context(), tc.prefix, tc.after, 10)
		if err != nil {
			t.Fatalf("Scan(%q, after %q): %v", tc.prefix, tc.after, err)
		}
		if got := keysOf(page); !slices.Equal(got, tc.want) {
			t.Errorf("Scan(%q, after %q) = %q, want %q", tc.prefix, tc.after, got, tc.want)
		}
	}
}

func testScanBytewise(t *testing.T, open, _ opener) {
	s := open(t)
	uKeys := []string{"u/Z", "u/a", "u/z", "u/~", "u/é", "u/ÿ", "u/Ā", "u/日本", "u/😀", "u/\uffff", "u/\U0010FFFF", "u/A"}
	top := []string{"v\U0010FFFF", "v\U0010FFFF/a", "v\U0010FFFF\U0010FFFF", "w"}
	surrogateEdge := []string{"x\uD7FF", "x\uD7FF1", "x\uE000"}
	putAll(t, s, slices.Concat(uKeys, top, surrogateEdge))
	wantScan(t, s, "u/", 5, uKeys)
	// Prefixes ending at the top code point, and just below the surrogate
	// gap, have no simple successor string.
	wantScan(t, s, "v\U0010FFFF", 2, top[:3])
	wantScan(t, s, "v\U0010FFFF\U0010FFFF", 2, top[2:3])
	wantScan(t, s, "x\uD7FF", 2, surrogateEdge[:2])
}

func testScanMetachars(t *testing.T, open, _ opener) {
	s := open(t)
	keys := []string{`p%/1`, `p%x`, `p_/1`, `pa/1`, `pab`, `p\/1`, `p\\x`, `p/1`, `pX%`, `q%`}
	putAll(t, s, keys)
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{`p%`, []string{`p%/1`, `p%x`}},
		{`p_`, []string{`p_/1`}},
		{`p\`, []string{`p\/1`, `p\\x`}},
		{`p\\`, []string{`p\\x`}},
		{`%`, nil},
		{`_`, nil},
		{`p`, []string{`p%/1`, `p%x`, `p_/1`, `pa/1`, `pab`, `p\/1`, `p\\x`, `p/1`, `pX%`}},
	} {
		wantScan(t, s, tc.prefix, 3, tc.want)
	}
}

func testDelete(t *testing.T, open, _ opener) {
	s := open(t)
	ctx := t.Context()
	wantErr(t, "Delete of an absent key", s.Delete(ctx, "k", persistence.AnyVersion), persistence.ErrNotFound)
	wantErr(t, "CAS Delete of an absent key", s.Delete(ctx, "k", 1), persistence.ErrNotFound)

	v1 := put(t, s, "k", []byte("one"), persistence.MustNotExist)
	v2 := put(t, s, "k", []byte("two"), v1)
	wantErr(t, "Delete with a stale version", s.Delete(ctx, "k", v1), persistence.ErrConflict)
	wantErr(t, "Delete with MustNotExist of a present key", s.Delete(ctx, "k", persistence.MustNotExist), persistence.ErrConflict)
	wantItem(t, s, "k", []byte("two"), v2)

	if err := s.Delete(ctx, "k", v2); err != nil {
		t.Fatalf("Delete with the current version: %v", err)
	}
	wantMissing(t, s, "Get after Delete", "k")
	wantErr(t, "second Delete", s.Delete(ctx, "k", v2), persistence.ErrNotFound)
	if page, err := s.Scan(ctx, "k", "", 10); err != nil || len(page) != 0 {
		t.Fatalf("Scan after Delete = %v, %v; want nothing", keysOf(page), err)
	}

	put(t, s, "k2", []byte("x"), persistence.MustNotExist)
	if err := s.Delete(ctx, "k2", persistence.AnyVersion); err != nil {
		t.Fatalf("Delete(AnyVersion) of a present key: %v", err)
	}
	wantMissing(t, s, "Get after Delete(AnyVersion)", "k2")
}

func testInvalidKeys(t *testing.T, open, _ opener) {
	s := open(t)
	ctx := t.Context()
	for _, tc := range []struct{ name, key string }{
		{"empty", ""},
		{"NUL", "a\x00b"},
		{"invalid UTF-8", "a\xffb"},
		{"too long", strings.Repeat("k", persistence.MaxKeyLen+1)},
	} {
		_, err := s.Put(ctx, tc.key, []byte("x"), persistence.AnyVersion)
		wantErr(t, "Put with "+tc.name+" key", err, persistence.ErrInvalidKey)
		_, err = s.Get(ctx, tc.key)
		wantErr(t, "Get with "+tc.name+" key", err, persistence.ErrInvalidKey)
		wantErr(t, "Delete with "+tc.name+" key", s.Delete(ctx, tc.key, persistence.AnyVersion), persistence.ErrInvalidKey)
		if tc.key != "" {
			_, err = s.Scan(ctx, tc.key, "", 1)
			wantErr(t, "Scan with "+tc.name+" prefix", err, persistence.ErrInvalidKey)
			_, err = s.Scan(ctx, "", tc.key, 1)
			wantErr(t, "Scan after "+tc.name+" key", err, persistence.ErrInvalidKey)
		}
	}
	longest := strings.Repeat("é", persistence.MaxKeyLen/2)
	v := put(t, s, longest, []byte("fits"), persistence.MustNotExist)
	wantItem(t, s, longest, []byte("fits"), v)
	wantScan(t, s, longest[:100], 1, []string{longest})
}

func testReopen(t *testing.T, open, reopen opener) {
	if reopen == nil {
		t.Skip("engine keeps nothing across Close")
	}
	s := open(t)
	want := map[string]uint64{}
	var maxV uint64
	for i := range 20 {
		k := fmt.Sprintf("r/%02d", i)
		want[k] = put(t, s, k, []byte(k), persistence.MustNotExist)
		maxV = max(maxV, want[k])
	}
	if err := s.Delete(t.Context(), "r/07", want["r/07"]); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	delete(want, "r/07")
	// A batch is as durable as a Put.
	res, err := s.Batch(t.Context(), []persistence.Write{
		{Key: "r/20", Value: []byte("r/20"), Expect: persistence.MustNotExist},
		{Key: "r/21", Value: []byte("r/21"), Expect: persistence.AnyVersion},
	})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("Batch: %v %v", res, err)
	}
	want["r/20"], want["r/21"] = res[0].Version, res[1].Version
	maxV = max(maxV, res[0].Version, res[1].Version)
	mustClose(t, s, "Close")

	s = reopen(t)
	items := scanPages(t, s, "r/", 6)
	if len(items) != len(want) {
		t.Fatalf("after reopen Scan found %d items, want %d: %q", len(items), len(want), keysOf(items))
	}
	for _, it := range items {
		if v, ok := want[it.Key]; !ok || it.Version != v || string(it.Value) != it.Key {
			t.Fatalf("after reopen: (%q, %q, v%d), want value = key at v%d", it.Key, it.Value, it.Version, v)
		}
	}
	wantMissing(t, s, "Get of a key deleted before reopen", "r/07")
	// Versions from before the restart still work for CAS...
	v := put(t, s, "r/00", []byte("after"), want["r/00"])
	// ...and new ones exceed every earlier one.
	if v <= maxV {
		t.Fatalf("first version after reopen is %d, not above %d from before", v, maxV)
	}
	if v2 := put(t, s, "r/07", []byte("again"), persistence.MustNotExist); v2 <= v {
		t.Fatalf("version %d after %d", v2, v)
	}
}

func testUseAfterClose(t *testing.T, open, _ opener) {
	s := open(t)
	ctx := t.Context()
	v := put(t, s, "k", []byte("x"), persistence.MustNotExist)
	mustClose(t, s, "Close")
	_, err := s.Get(ctx, "k")
	wantErr(t, "Get after Close", err, persistence.ErrClosed)
	_, err = s.Put(ctx, "k", []byte("y"), v)
	wantErr(t, "Put after Close", err, persistence.ErrClosed)
	wantErr(t, "Delete after Close", s.Delete(ctx, "k", v), persistence.ErrClosed)
	_, err = s.Scan(ctx, "", "", 10)
	wantErr(t, "Scan after Close", err, persistence.ErrClosed)
	mustClose(t, s, "second Close")
}

// testCloseWhileBusy closes a store under load: every call must either
// complete or report ErrClosed, never fail otherwise or panic (run with
// -race).
func testCloseWhileBusy(t *testing.T, open, _ opener) {
	const workers = 4
	s := open(t)
	put(t, s, "k", []byte("x"), persistence.MustNotExist)
	var (
		wg      sync.WaitGroup
		started sync.WaitGroup
	)
	started.Add(workers)
	for w := range workers {
		wg.Go(func() {
			ctx := t.Context()
			first := true
			for i := 0; ; i++ {
				var err error
				switch i % 3 {
				case 0:
					_, err = s.Get(ctx, "k")
				case 1:
					_, err = s.Put(ctx, fmt.Sprintf("w%d", w), []byte("v"), persistence.AnyVersion)
				case 2:
					_, err = s.Scan(ctx, "", "", 10)
				}
				if first {
					started.Done()
					first = false
				}
				if errors.Is(err, persistence.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("worker %d call %d: %v", w, i, err)
					return
				}
			}
		})
	}
	started.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("Close under load: %v", err)
	}
	wg.Wait()
}

func testCancelledContext(t *testing.T, open, _ opener) {
	s := open(t)
	v := put(t, s, "k", []byte("x"), persistence.MustNotExist)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Get(ctx, "k")
	wantErr(t, "Get with a cancelled context", err, context.Canceled)
	_, err = s.Put(ctx, "new", []byte("y"), persistence.MustNotExist)
	wantErr(t, "Put with a cancelled context", err, context.Canceled)
	_, err = s.Put(ctx, "k", []byte("y"), v)
	wantErr(t, "CAS Put with a cancelled context", err, context.Canceled)
	wantErr(t, "Delete with a cancelled context", s.Delete(ctx, "k", v), context.Canceled)
	_, err = s.Scan(ctx, "", "", 10)
	wantErr(t, "Scan with a cancelled context", err, context.Canceled)

	wantMissing(t, s, "Get of a key whose Put was cancelled", "new")
	wantItem(t, s, "k", []byte("x"), v)
}

func batch(t *testing.T, s persistence.Store, writes ...persistence.Write) []persistence.WriteResult {
	t.Helper()
	res, err := s.Batch(t.Context(), writes)
	if err != nil {
		t.Fatalf("Batch of %d writes: %v", len(writes), err)
	}
	if len(res) != len(writes) {
		t.Fatalf("Batch of %d writes returned %d results", len(writes), len(res))
	}
	return res
}

func testBatch(t *testing.T, open, _ opener) {
	s := open(t)
	v1 := put(t, s, "k", []byte("one"), persistence.MustNotExist)
	gone := put(t, s, "gone", []byte("x"), persistence.MustNotExist)
	res := batch(t, s,
		persistence.Write{Key: "new", Value: []byte("n1"), Expect: persistence.MustNotExist},
		persistence.Write{Key: "k", Value: []byte("two"), Expect: v1},
		persistence.Write{Key: "k", Value: []byte("stale"), Expect: v1}, // sees the write before it
		persistence.Write{Key: "new", Value: []byte("n2"), Expect: persistence.AnyVersion},
		persistence.Write{Key: "absent", Expect: persistence.AnyVersion, Delete: true},
		persistence.Write{Key: "gone", Expect: gone + 1000, Delete: true},
		persistence.Write{Key: "gone", Expect: gone, Delete: true},
		persistence.Write{Key: "born", Value: []byte("b"), Expect: persistence.MustNotExist},
		persistence.Write{Key: "born", Expect: persistence.AnyVersion, Delete: true},
	)
	wantErrs := []error{nil, nil, persistence.ErrConflict, nil, persistence.ErrNotFound, persistence.ErrConflict, nil, nil, nil}
	for i, want := range wantErrs {
		if !errors.Is(res[i].Err, want) || (want != nil && res[i].Err == nil) {
			t.Fatalf("write %d: error %v, want %v", i, res[i].Err, want)
		}
	}
	if !(v1 < res[0].Version && res[0].Version < res[1].Version && res[1].Version < res[3].Version) {
		t.Fatalf("versions %d, %d, %d after %d do not rise in batch order", res[0].Version, res[1].Version, res[3].Version, v1)
	}
	if res[2].Version != 0 {
		t.Fatalf("a conflicting write returned version %d", res[2].Version)
	}
	wantItem(t, s, "k", []byte("two"), res[1].Version)
	wantItem(t, s, "new", []byte("n2"), res[3].Version)
	for _, k := range []string{"gone", "born", "absent"} {
		wantMissing(t, s, "Get of "+k+" deleted in the batch", k)
	}
	if res, err := s.Batch(t.Context(), nil); err != nil || len(res) != 0 {
		t.Fatalf("empty Batch = %v, %v", res, err)
	}
}

func testBatchRejected(t *testing.T, open, _ opener) {
	s := open(t)
	v := put(t, s, "k", []byte("x"), persistence.MustNotExist)
	_, err := s.Batch(t.Context(), []persistence.Write{
		{Key: "k", Value: []byte("y"), Expect: v},
		{Key: "bad\x00key", Value: []byte("y"), Expect: persistence.AnyVersion},
	})
	wantErr(t, "Batch with a bad key", err, persistence.ErrInvalidKey)
	wantItem(t, s, "k", []byte("x"), v)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.Batch(ctx, []persistence.Write{{Key: "k", Value: []byte("y"), Expect: v}, {Key: "n", Expect: persistence.MustNotExist}})
	wantErr(t, "Batch with a cancelled context", err, context.Canceled)
	wantItem(t, s, "k", []byte("x"), v)
	wantMissing(t, s, "Get of a key whose Batch was cancelled", "n")

	mustClose(t, s, "Close")
	_, err = s.Batch(t.Context(), []persistence.Write{{Key: "k", Expect: persistence.AnyVersion}})
	wantErr(t, "Batch after Close", err, persistence.ErrClosed)
}

// testBatchAtomic writes pairs of keys in batches while readers scan them:
// a reader must always find both keys of a pair at the same round.
func testBatchAtomic(t *testing.T, open, _ opener) {
	const rounds = 60
	s := open(t)
	batch(t, s,
		persistence.Write{Key: "pair/a", Value: []byte("0"), Expect: persistence.MustNotExist},
		persistence.Write{Key: "pair/b", Value: []byte("0"), Expect: persistence.MustNotExist})
	var (
		wg   sync.WaitGroup
		done atomic.Bool
	)
	for range 2 {
		wg.Go(func() {
			for !done.Load() {
				page, err := s.Scan(t.Context(), "pair/", "", 10)
				if err != nil {
					t.Errorf("Scan: %v", err)
					return
				}
				if len(page) != 2 || !bytes.Equal(page[0].Value, page[1].Value) {
					t.Errorf("a reader saw half a batch: %v", page)
					return
				}
			}
		})
	}
	for i := 1; i <= rounds && !t.Failed(); i++ {
		v := []byte(strconv.Itoa(i))
		batch(t, s,
			persistence.Write{Key: "pair/a", Value: v, Expect: persistence.AnyVersion},
			persistence.Write{Key: "pair/b", Value: v, Expect: persistence.AnyVersion})
	}
	done.Store(true)
	wg.Wait()
}
