package fraud

import (
	"encoding/json"
	"strings"
)

// Origin tells which layer set the field at path (a JSON path as in
// FieldError, e.g. "indicators.rate_per_minute.critical"): the index in
// layers of the last one that sets it (or a field under it), or -1 when
// none does and the default applies. The supervisor passes the same
// layers as to Merge (account, group, device) to fill an incident's
// policy level.
func Origin(path string, layers ...Policy) int {
	parts := strings.Split(path, ".")
	found := -1
	for i, l := range layers {
		b, err := json.Marshal(l)
		if err != nil {
			continue
		}
		var cur any
		if json.Unmarshal(b, &cur) != nil {
			continue
		}
		for _, p := range parts {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[p]
		}
		if cur == nil {
			continue
		}
		if m, ok := cur.(map[string]any); ok && len(m) == 0 {
			continue
		}
		found = i
	}
	return found
}
