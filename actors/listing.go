package actors

import (
	"context"
	"strings"

	"github.com/switchboard-pbx/switchboard/persistence"
)

// Paging bounds for the account's lists (devices, groups, trunks).
const (
	defaultPageSize = 100
	maxPageSize     = 1000
	// maxListScan bounds the records one page reads from the store when
	// a filter skips most of them: such a page may come back short, with
	// a cursor to go on from.
	maxListScan = 10 * maxPageSize
	// debugListLimit bounds each list a debug view shows (an account's
	// groups and devices, a group's members and bindings).
	debugListLimit = 100
)

// pageSize is a request's limit: def when it sets none, at most most.
func pageSize(limit uint32, def, most int) int {
	if limit == 0 {
		return def
	}
	return min(int(limit), most)
}

// scanFrom is where a scan of prefix resumes after the id after ("": at
// the start).
func scanFrom(prefix, after string) string {
	if after == "" {
		return ""
	}
	return prefix + after
}

// scanIDs pages the ids (the key after prefix) of the records under
// prefix in id order, from the store's key order: at most limit ids after
// the id after that keep accepts, reading at most maxListScan records.
// next is the id to go on after, "" when the scan reached the end. A page
// costs O(limit) store reads, never a sort of every id.
func scanIDs(ctx context.Context, st persistence.Store, prefix, after string, limit int, keep func(id string) bool) (ids []string, next string, err error) {
	cursor := scanFrom(prefix, after)
	for scanned := 0; scanned < maxListScan; {
		items, err := st.Scan(ctx, prefix, cursor, min(limit+1, maxListScan-scanned))
		if err != nil {
			return nil, "", err
		}
		if len(items) == 0 {
			return ids, "", nil
		}
		scanned += len(items)
		for _, it := range items {
			cursor = it.Key
			id := strings.TrimPrefix(it.Key, prefix)
			if !keep(id) {
				continue
			}
			if len(ids) == limit {
				return ids, ids[limit-1], nil
			}
			ids = append(ids, id)
		}
	}
	// The scan budget ran out before the page filled: go on after the
	// last record read.
	return ids, strings.TrimPrefix(cursor, prefix), nil
}
