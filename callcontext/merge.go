package callcontext

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound what an app may keep on one call.
type Limits struct {
	// MaxBytes bounds an app's namespace on one call, compact JSON.
	// Default 64 KiB (Genesys' attached data defaults to 16 KB and
	// "degrades performance" raised; Twilio Sync caps a document at 16 KiB).
	MaxBytes int
	// MaxDepth bounds the nesting of objects and arrays under the
	// namespace (the namespace object itself is depth 1). Default 8.
	MaxDepth int
	// MaxKeyLen bounds a member name, in bytes. Default 128.
	MaxKeyLen int
}

// DefaultLimits returns the limits the API enforces.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 64 << 10, MaxDepth: 8, MaxKeyLen: 128}
}

// Error kinds, for errors.Is on an *Error.
var (
	// ErrInvalid: the patch is not acceptable (HTTP 400).
	ErrInvalid = errors.New("callcontext: invalid patch")
	// ErrTooLarge: the namespace would exceed Limits.MaxBytes (HTTP 413).
	ErrTooLarge = errors.New("callcontext: namespace too large")
)

// Error is a refused patch: Field is the JSON Pointer (RFC 6901) of the
// member at fault ("" for the whole body), Msg says what to do.
type Error struct {
	Kind  error
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Unwrap lets errors.Is match ErrInvalid or ErrTooLarge.
func (e *Error) Unwrap() error { return e.Kind }

func invalidf(field, format string, args ...any) *Error {
	return &Error{Kind: ErrInvalid, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Result is a merged namespace and what the patch changed in it.
type Result struct {
	// Doc is the namespace after the patch, compact JSON; "{}" when empty.
	Doc []byte
	// Changed and Removed are the JSON Pointers of the members the patch
	// set (to a value unequal to the one before) and removed (null on a
	// member that existed), in patch order sorted.
	Changed, Removed []string
}

// Merge applies patch (RFC 7396) to doc, an app's namespace (compact JSON
// object, or empty for none), under lim. The patch must be a JSON object
// (a namespace is always an object, so a patch that would replace it with
// something else is refused). Numbers keep their text. On error nothing is
// changed: doc is not modified.
func Merge(doc, patch []byte, lim Limits) (Result, error) {
	p, err := decodeValue(patch)
	if err != nil {
		return Result{}, err
	}
	pm, ok := p.(map[string]any)
	if !ok {
		return Result{}, invalidf("", "a context patch must be a JSON object (RFC 7396 merge patch), e.g. {\"ticket\": \"T-42\"}; null members delete")
	}
	if e := checkPatch(pm, "", 1, lim); e != nil {
		return Result{}, e
	}
	var target map[string]any
	if len(bytes.TrimSpace(doc)) > 0 {
		t, err := decodeValue(doc)
		if err != nil {
			return Result{}, fmt.Errorf("callcontext: stored namespace is not JSON: %w", err)
		}
		target, _ = t.(map[string]any)
	}
	if target == nil {
		target = map[string]any{}
	}
	var res Result
	merged := mergeObject(target, pm, "", &res)
	out, err := encodeCompact(merged)
	if err != nil {
		return Result{}, err
	}
	if len(out) > lim.MaxBytes {
		return Result{}, &Error{Kind: ErrTooLarge, Msg: fmt.Sprintf("the app's data on this call would be %d bytes, over the limit of %d; remove members (set them to null) or keep large data in your own system and store a reference", len(out), lim.MaxBytes)}
	}
	slices.Sort(res.Changed)
	slices.Sort(res.Removed)
	res.Doc = out
	return res, nil
}

// mergeObject merges patch into target (which it may modify: it is a
// fresh decode) and records the changes under prefix.
func mergeObject(target, patch map[string]any, prefix string, res *Result) map[string]any {
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		v := patch[k]
		ptr := prefix + "/" + escapePointer(k)
		old, had := target[k]
		if v == nil {
			if had {
				delete(target, k)
				res.Removed = append(res.Removed, ptr)
			}
			continue
		}
		if pv, ok := v.(map[string]any); ok {
			tv, ok := old.(map[string]any)
			if !ok {
				tv = map[string]any{}
				if had {
					res.Changed = append(res.Changed, ptr) // replaced by an object
				}
			}
			// Members set to null inside a new object are dropped (RFC 7396).
			before := len(res.Changed) + len(res.Removed)
			target[k] = mergeObject(tv, pv, ptr, res)
			if !had && len(res.Changed)+len(res.Removed) == before {
				res.Changed = append(res.Changed, ptr) // a new, empty object
			}
			continue
		}
		if had && jsonEqual(old, v) {
			continue
		}
		target[k] = v
		res.Changed = append(res.Changed, ptr)
	}
	return target
}

func jsonEqual(a, b any) bool {
	x, err1 := encodeCompact(a)
	y, err2 := encodeCompact(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// checkPatch enforces depth and key rules on the patch before anything
// is merged, naming the first member at fault.
func checkPatch(v any, ptr string, depth int, lim Limits) *Error {
	if depth > lim.MaxDepth {
		return invalidf(ptr, "nested deeper than %d levels; flatten the data", lim.MaxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			p := ptr + "/" + escapePointer(k)
			if e := checkKey(k, p, lim); e != nil {
				return e
			}
			if e := checkPatch(x[k], p, depth+1, lim); e != nil {
				return e
			}
		}
	case []any:
		for i, e := range x {
			if err := checkPatch(e, ptr+"/"+strconv.Itoa(i), depth+1, lim); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkKey: 1 to MaxKeyLen bytes of valid UTF-8 with no control
// characters.
func checkKey(k, ptr string, lim Limits) *Error {
	switch {
	case k == "":
		return invalidf(ptr, "a member name must not be empty")
	case len(k) > lim.MaxKeyLen:
		return invalidf(ptr, "member name is %d bytes; at most %d", len(k), lim.MaxKeyLen)
	case !utf8.ValidString(k) || strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }):
		return invalidf(ptr, "a member name must be UTF-8 text without control characters")
	}
	return nil
}

// escapePointer escapes a member name for a JSON Pointer (RFC 6901 section 3).
func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// decodeValue decodes exactly one JSON value, numbers as json.Number.
func decodeValue(b []byte) (any, error) {
	if !utf8.Valid(b) {
		return nil, invalidf("", "the body must be UTF-8 JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalidf("", "the body is empty; send a JSON object")
		}
		return nil, invalidf("", "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidf("", "the body must hold one JSON value")
	}
	return v, nil
}

func encodeCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
