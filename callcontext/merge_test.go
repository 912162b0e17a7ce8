package callcontext

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
)

// rfc7396AppendixA are the examples of RFC 7396 Appendix A: target,
// patch, result.
var rfc7396AppendixA = []struct{ target, patch, result string }{
	{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
	{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
	{`{"a":"b"}`, `{"a":null}`, `{}`},
	{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
	{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
	{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
	{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
	{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
	{`["a","b"]`, `["c","d"]`, `["c","d"]`},
	{`{"a":"b"}`, `["c"]`, `["c"]`},
	{`{"a":"foo"}`, `null`, `null`},
	{`{"a":"foo"}`, `"bar"`, `"bar"`},
	{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
	{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
	{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
}

func decode(t *testing.T, s string) any {
	t.Helper()
	v, err := decodeValue([]byte(s))
	if err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return v
}

func TestMergePatch_RFC7396_AppendixA(t *testing.T) {
	for _, tc := range rfc7396AppendixA {
		t.Run(tc.target+"+"+tc.patch, func(t *testing.T) {
			got := mergePatch(decode(t, tc.target), decode(t, tc.patch))
			if want := decode(t, tc.result); !reflect.DeepEqual(got, want) {
				t.Fatalf("MergePatch = %v, want %v", got, want)
			}
			// Merge (the namespace form) agrees wherever both sides are
			// objects, and refuses a patch that is not an object.
			res, err := Merge([]byte(tc.target), []byte(tc.patch), DefaultLimits())
			_, objPatch := decode(t, tc.patch).(map[string]any)
			_, objTarget := decode(t, tc.target).(map[string]any)
			switch {
			case !objPatch:
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Merge of a non-object patch: err = %v, want ErrInvalid", err)
				}
			case err != nil:
				t.Fatalf("Merge: %v", err)
			case objTarget:
				if g := decode(t, string(res.Doc)); !reflect.DeepEqual(g, decode(t, tc.result)) {
					t.Fatalf("Merge = %s, want %s", res.Doc, tc.result)
				}
			}
		})
	}
}

func TestMerge_ReportsChangedAndRemovedPointers(t *testing.T) {
	doc := []byte(`{"ticket":"T-1","customer":{"name":"Ada","tier":"gold"},"a/b":1}`)
	res, err := Merge(doc, []byte(`{"ticket":"T-2","customer":{"tier":null,"vip":true},"a/b":1,"gone":null}`), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/customer/vip", "/ticket"}; !reflect.DeepEqual(res.Changed, want) {
		t.Errorf("Changed = %v, want %v", res.Changed, want)
	}
	if want := []string{"/customer/tier"}; !reflect.DeepEqual(res.Removed, want) {
		t.Errorf("Removed = %v, want %v (an absent member set to null is not a removal)", res.Removed, want)
	}
	if got := string(res.Doc); got != `{"a/b":1,"customer":{"name":"Ada","vip":true},"ticket":"T-2"}` {
		t.Errorf("Doc = %s", got)
	}
}

func TestMerge_KeepsNumbersExact(t *testing.T) {
	res, err := Merge(nil, []byte(`{"id":12345678901234567890,"f":1.50}`), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Doc); got != `{"f":1.50,"id":12345678901234567890}` {
		t.Fatalf("Doc = %s: numbers must keep their text", got)
	}
}

func TestMerge_Limits(t *testing.T) {
	lim := DefaultLimits()
	deep := strings.Repeat(`{"x":`, lim.MaxDepth) + `1` + strings.Repeat(`}`, lim.MaxDepth)
	okDeep := strings.Repeat(`{"x":`, lim.MaxDepth-1) + `1` + strings.Repeat(`}`, lim.MaxDepth-1)
	big := `{"blob":"` + strings.Repeat("x", lim.MaxBytes) + `"}`
	tests := []struct {
		name, doc, patch string
		kind             error
		field            string
	}{
		{"depth at the limit", "", okDeep, nil, ""},
		{"too deep", "", deep, ErrInvalid, "/x/x/x/x/x/x/x/x"},
		{"too deep in an array", "", `{"a":[[[[[[[[1]]]]]]]]}`, ErrInvalid, "/a/0/0/0/0/0/0/0"},
		{"empty key", "", `{"ok":1,"n":{"":2}}`, ErrInvalid, "/n/"},
		{"long key", "", `{"` + strings.Repeat("k", lim.MaxKeyLen+1) + `":1}`, ErrInvalid, "/" + strings.Repeat("k", lim.MaxKeyLen+1)},
		{"control character in key", "", `{"a\u0001b":1}`, ErrInvalid, "/a\x01b"},
		{"not an object", "", `[1]`, ErrInvalid, ""},
		{"malformed", "", `{"a":`, ErrInvalid, ""},
		{"two values", "", `{} {}`, ErrInvalid, ""},
		{"over 64 KiB", "", big, ErrTooLarge, ""},
		{"over 64 KiB by growth", `{"a":"` + strings.Repeat("y", lim.MaxBytes-20) + `"}`, `{"b":"0123456789abcdef"}`, ErrTooLarge, ""},
		{"shrinking a large doc is allowed", `{"a":"` + strings.Repeat("y", lim.MaxBytes-20) + `"}`, `{"a":null}`, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Merge([]byte(tc.doc), []byte(tc.patch), lim)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("err = %v, want none", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if e.Field != tc.field {
				t.Fatalf("field = %q, want %q", e.Field, tc.field)
			}
		})
	}
}

func TestAssemble_ShowsEveryAppAndItsWriter(t *testing.T) {
	v := Assemble(map[string]any{"id": "c1"}, true, map[string]Namespace{
		"crm":      {Doc: []byte(`{"a":1}`), Writer: Writer{App: "crm", User: "alice", Version: 1}},
		"helpdesk": {Doc: []byte(`{"t":"x"}`), Writer: Writer{App: "helpdesk", Version: 2}},
	}, 2)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"crm":{"a":1}`, `"helpdesk":{"t":"x"}`, `"version":2`, `"live":true`, `"user":"alice"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}

// FuzzMerge: Merge never panics, never returns a document over the limit,
// and agrees with the RFC's MergePatch whenever it accepts a patch.
func FuzzMerge(f *testing.F) {
	for _, tc := range rfc7396AppendixA {
		f.Add([]byte(tc.target), []byte(tc.patch))
	}
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		lim := Limits{MaxBytes: 4096, MaxDepth: 6, MaxKeyLen: 32}
		base, err := Merge(nil, doc, lim)
		if err != nil {
			return // doc must be an acceptable namespace to start from
		}
		res, err := Merge(base.Doc, patch, lim)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(res.Doc) > lim.MaxBytes {
			t.Fatalf("doc of %d bytes over the limit", len(res.Doc))
		}
		bv, _ := decodeValue(base.Doc)
		pv, _ := decodeValue(patch)
		want, _ := encodeCompact(mergePatch(bv, pv))
		if string(want) != string(res.Doc) {
			t.Fatalf("Merge = %s, MergePatch = %s", res.Doc, want)
		}
	})
}

// mergePatch is RFC 7396's MergePatch(Target, Patch) on decoded values,
// with no limits: the reference the tests hold Merge to.
func mergePatch(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	} else {
		tm = maps.Clone(tm)
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergePatch(tm[k], v)
	}
	return tm
}
