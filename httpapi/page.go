package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/placement"
)

// Paging: every list page takes ?limit= (1 to its maximum; its default
// when absent) and ?after= (the "next" of the previous page), and answers
// "next" while more items follow. A page costs O(limit), whatever the
// size of the list.
const (
	// defaultActivationLimit and maxActivationLimit bound a page of
	// /debug/actors (and its edge actors).
	defaultActivationLimit = 1000
	maxActivationLimit     = 10000
	// defaultBindingLimit and maxBindingLimit bound a page of a group's
	// bindings.
	defaultBindingLimit = 1000
	maxBindingLimit     = 10000
	// defaultAccountListLimit and maxAccountListLimit bound a page of an
	// account's devices, groups or trunks (the account actor holds the
	// same bounds).
	defaultAccountListLimit = 100
	maxAccountListLimit     = 1000
)

// parseIDPage reads ?limit= and ?after= of a list of an account's records,
// whose cursor is the last id of the previous page.
func parseIDPage(q url.Values) (after string, limit uint32, fe *fieldError) {
	after = q.Get("after")
	if fe := checkOptionalID("after", after); fe != nil {
		return "", 0, fe
	}
	n, fe := parseLimit(q, defaultAccountListLimit, maxAccountListLimit)
	return after, uint32(n), fe
}

// pageBody adds next (and next_after, its older name) to a page's body
// when more follow.
func pageBody(body map[string]any, next string) map[string]any {
	if next != "" {
		body["next"], body["next_after"] = next, next
	}
	return body
}

// parseLimit reads ?limit=: def when absent, else a whole number from 1
// to most.
func parseLimit(q url.Values, def, most int) (int, *fieldError) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, badField("limit", "limit must be a whole number from 1 to %d, not %q", most, v)
	}
	return n, nil
}

// activationCursor is the ?after= of /debug/actors: "<kind>/<id>" of the
// last activation of the previous page.
func activationCursor(k actors.ActivationKey) string { return placement.Key(k.Kind, k.Identity) }

// parseActivationCursor reads ?after= of /debug/actors; absent, it is the
// zero key, before every activation.
func (s *server) parseActivationCursor(v string) (actors.ActivationKey, *fieldError) {
	if v == "" {
		return actors.ActivationKey{}, nil
	}
	kind, id, ok := strings.Cut(v, "/")
	if !ok || !slices.Contains(actors.Kinds(), kind) || s.checkIdentity(kind, id) != nil {
		return actors.ActivationKey{}, badField("after", "after must be the \"next\" of the previous page, <kind>/<id> with a known kind (%v), not %q", actors.Kinds(), v)
	}
	return actors.ActivationKey{Kind: kind, Identity: id}, nil
}

// compressed wraps the handler of a route that may answer a large page:
// gzip when the client sends Accept-Encoding: gzip (and the body is worth
// it).
func (s *server) compressed(h http.HandlerFunc) http.HandlerFunc {
	return s.gzip(h)
}
