package persistence

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidKey means a key, scan prefix or scan cursor breaks the key rules
// below. It is the caller's bug, not the store's: retrying will not help.
var ErrInvalidKey = errors.New("persistence: invalid key")

// MaxKeyLen is the longest key, in bytes, that every engine accepts.
//
// Key rules, the same for every engine so that data can move between them:
// a key is 1 to MaxKeyLen bytes of valid UTF-8 without NUL bytes. The limits
// come from PostgreSQL, whose text type rejects NUL and invalid UTF-8 and
// whose B-tree index refuses entries over about 2.7 KB. Keys sort bytewise,
// which for UTF-8 is also code-point order.
const MaxKeyLen = 1024

// checkKey enforces the key rules on a key given to Get, Put or Delete.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	return checkKeyText("key", key)
}

func checkKeyText(what, s string) error {
	switch {
	case len(s) > MaxKeyLen:
		return fmt.Errorf("%w: %s is %d bytes, more than the %d allowed", ErrInvalidKey, what, len(s), MaxKeyLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidKey, what, s)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%w: %s %q contains a NUL byte", ErrInvalidKey, what, s)
	}
	return nil
}
