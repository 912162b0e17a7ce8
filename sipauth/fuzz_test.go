package sipauth_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-pbx/switchboard/sipauth"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzVerify from fuzzSeeds")

const corpusDir = "testdata/fuzz/FuzzVerify"

// fuzzSeeds returns the committed seed corpus of FuzzVerify, by file name.
// The valid entries answer the first challenge of a fresh fixture, which is
// deterministic (fake clock, seeded Rand), so they verify in FuzzVerify.
func fuzzSeeds(t *testing.T) map[string]string {
	t.Helper()
	f := newFixture(t)
	values, err := f.a.Challenge(testRealm, false, sipauth.SHA256, sipauth.MD5)
	if err != nil {
		t.Fatal(err)
	}
	sha := parseChallenge(t, values[0])
	md := parseChallenge(t, values[1])
	valid := answer(t, sha, testUser, testPassword, 1)
	nonceAt := strings.Index(valid, "nonce=") + len(`nonce="`) + 10
	return map[string]string{
		"valid-sha256":         valid,
		"valid-md5":            answer(t, md, testUser, testPassword, 1),
		"valid-sha256-nc2":     answer(t, sha, testUser, testPassword, 2),
		"wrong-password":       answer(t, sha, testUser, "wrong horse battery", 1),
		"truncated-half":       valid[:len(valid)/2],
		"truncated-in-nonce":   valid[:nonceAt],
		"truncated-last-quote": valid[:len(valid)-1],
		"escaped-quotes":       strings.Replace(valid, `username="alice"`, `username="al\"i\\ce"`, 1),
		"single-quotes":        strings.Replace(valid, `username="alice"`, `username='alice'`, 1),
		"unquoted-values":      `Digest username=alice, realm=acme, nonce=abc, uri=x, response=00, qop=auth, nc=00000001, cnonce=x`,
		"no-spaces":            strings.ReplaceAll(valid, ", ", ","),
		"extra-spaces":         strings.ReplaceAll(strings.ReplaceAll(valid, ", ", "  ,   "), "=", " = "),
		"lowercase-scheme":     "digest " + strings.TrimPrefix(valid, "Digest "),
		"tab-after-scheme":     "Digest\t" + strings.TrimPrefix(valid, "Digest "),
		"duplicate-response":   valid + `, response="` + strings.Repeat("0", 64) + `"`,
		"empty-values":         `Digest username="", realm="", nonce="", uri="", response=""`,
		"invalid-utf8":         strings.Replace(valid, `username="alice"`, "username=\"\xffal\xc3ice\"", 1),
		"nc-negative":          strings.Replace(valid, "nc=00000001", "nc=-0000001", 1),
		"nc-max":               strings.Replace(valid, "nc=00000001", "nc=7fffffff", 1),
		"no-qop":               strings.Replace(valid, "qop=auth, ", "", 1),
		"basic":                "Basic YWxpY2U6cGFzc3dvcmQ=",
		"empty":                "",
	}
}

// FuzzVerify feeds arbitrary Authorization values to Verify. It must never
// panic, must answer with one of the package's sentinels, and anything it
// accepts must be alice's and not be accepted twice.
func FuzzVerify(f *testing.F) {
	f.Fuzz(func(t *testing.T, header string) {
		fx := newFixture(t)
		res, err := fx.verify(header)
		found, ok := sipauth.ForRealm([]string{header}, testRealm)
		if err != nil {
			for _, s := range []error{
				sipauth.ErrMalformed, sipauth.ErrStale, sipauth.ErrReplay, sipauth.ErrRealm,
				sipauth.ErrUnknownUser, sipauth.ErrBadResponse, sipauth.ErrAlgorithm,
			} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Verify(%q) = %v, not a sentinel", header, err)
		}
		if res.Username != testUser || res.URI == "" || (res.Algorithm != sipauth.MD5 && res.Algorithm != sipauth.SHA256) {
			t.Fatalf("Verify(%q) accepted %+v", header, res)
		}
		if !ok || found != header {
			t.Fatalf("Verify accepted %q but ForRealm did not find it", header)
		}
		if _, err := fx.verify(header); !errors.Is(err, sipauth.ErrReplay) {
			t.Fatalf("second Verify(%q) = %v, want ErrReplay", header, err)
		}
	})
}

// The committed corpus is what fuzzSeeds generates (so the valid entries
// still verify after a change to the nonce format). To rewrite it:
//
//	go test ./sipauth/ -run TestFuzzVerify_CorpusIsCurrent -args -update-corpus
func TestFuzzVerify_CorpusIsCurrent(t *testing.T) {
	seeds := fuzzSeeds(t)
	if *updateCorpus {
		if err := os.RemoveAll(corpusDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, s := range seeds {
			body := "go test fuzz v1\nstring(" + strconv.Quote(s) + ")\n"
			if err := os.WriteFile(filepath.Join(corpusDir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var names []string
	for name := range seeds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		body, err := os.ReadFile(filepath.Join(corpusDir, name))
		if err != nil {
			t.Errorf("%v; run go test ./sipauth/ -run TestFuzzVerify_CorpusIsCurrent -args -update-corpus", err)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") || !strings.HasSuffix(lines[1], ")") {
			t.Errorf("%s: not a one-string fuzz corpus file", name)
			continue
		}
		got, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil || got != seeds[name] {
			t.Errorf("%s is out of date; run go test ./sipauth/ -run TestFuzzVerify_CorpusIsCurrent -args -update-corpus", name)
		}
	}
	// The valid seeds must verify, or the fuzzer starts from nothing good.
	for _, name := range []string{"valid-sha256", "valid-md5", "valid-sha256-nc2"} {
		if _, err := newFixture(t).verify(seeds[name]); err != nil {
			t.Errorf("seed %s: Verify = %v, want nil", name, err)
		}
	}
}
