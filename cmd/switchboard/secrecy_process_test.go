//go:build unix

// Secrecy: no password or HA1 reaches a reply, a log line or the store.

package main

import (
	"bytes"
	"crypto/md5" //nolint:gosec // digest HA1 (RFC 7616 3.4.2) is what the node stores
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard-pbx/switchboard/internal/nodeproc"
	"github.com/switchboard-pbx/switchboard/persistence"
)

// secret is a password a test sends, and the forms of it that must not
// appear where they do not belong.
type secret struct {
	password string
	// token is a random part of the password. The badger store compresses
	// its tables (Snappy), which can turn a repeated prefix such as
	// "pw-LEAKCHECK-" into a back-reference; a random token is stored
	// literally wherever the password is, so scanning for it still finds
	// a leak.
	token string
	// hashes are the HA1 forms (hex, base64) of an accepted password: the
	// store holds the raw HA1, but no reply or log line may show one.
	hashes []string
	// ha1 is the raw MD5 HA1 of an accepted password.
	ha1 []byte
}

func newSecret(label string) secret {
	token := rand.Text()[:16]
	return secret{password: "pw-LEAKCHECK-" + label + "-" + token + "-xyz", token: token}
}

// accept records the HA1 that the node derives for s as device d of account.
func (s *secret) accept(account, device string) {
	in := []byte(device + ":" + account + "." + zone + ":" + s.password)
	m, h := md5.Sum(in), sha256.Sum256(in) //nolint:gosec // see import
	s.ha1 = m[:]
	for _, b := range [][]byte{m[:], h[:]} {
		s.hashes = append(s.hashes, hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
			base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b))
	}
}

// leaks returns the forms of any secret that b contains; withHashes adds
// the HA1 forms.
func leaks(b []byte, secrets []secret, withHashes bool) []string {
	var found []string
	for _, s := range secrets {
		forms := []string{s.password, s.token}
		if withHashes {
			forms = append(forms, s.hashes...)
		}
		for _, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				found = append(found, f)
			}
		}
	}
	return found
}

// TestProcess_PasswordNeverLeaks provisions devices with distinctive
// passwords, drives every endpoint that reads or refuses them, and proves
// that neither a password nor its HA1 appears in any HTTP reply (body or
// header) or in the process's debug-level JSON logs, and that no password
// reaches the store (badger's files byte by byte, or PostgreSQL's
// switchboard_kv rows).
func TestProcess_PasswordNeverLeaks(t *testing.T) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t, "leak")
			a := "/v1/accounts/" + st.account
			n := startNode(t, nodeOptions{args: append(slices.Clone(st.flags), "--log-format", "json", "--log-level", "debug")})
			var secrets []secret
			var replies []reply
			call := func(method, path string, body any, code int, hdr ...string) reply {
				t.Helper()
				r := n.call(t, method, path, body, hdr...)
				want(t, r, code, method+" "+path)
				replies = append(replies, r)
				return r
			}
			// putDevice PUTs device id with s's password and records s.
			putDevice := func(id, group string, s secret, code int, hdr ...string) {
				t.Helper()
				secrets = append(secrets, s)
				call(http.MethodPut, a+"/devices/"+id, map[string]string{"group": group, "password": s.password}, code, hdr...)
			}

			provisionAccountAndGroup(t, n, st.account, "desk")
			accepted := map[string]secret{} // device id: its current password
			for i := range 3 {
				id := fmt.Sprintf("d%d", i)
				s := newSecret(strconv.Itoa(i))
				s.accept(st.account, id)
				putDevice(id, "desk", s, http.StatusCreated)
				accepted[id] = s
			}
			// A password change, and the refusals that carry a password.
			rotated := newSecret("rotated")
			rotated.accept(st.account, "d0")
			putDevice("d0", "desk", rotated, http.StatusOK)
			accepted["d0"] = rotated
			putDevice("d9", "no-such-group", newSecret("badgroup"), http.StatusBadRequest)
			short := strings.ToLower(rand.Text()[:7]) // under the 8-character minimum
			putDevice("d1", "desk", secret{password: short, token: short}, http.StatusBadRequest)
			putDevice("d1", "desk", newSecret("long-"+strings.Repeat("x", 120)), http.StatusBadRequest)
			putDevice("d2", "desk", newSecret("stale"), http.StatusConflict, "If-Match", `"1"`)
			putDevice("BAD", "desk", newSecret("badid"), http.StatusBadRequest)
			for _, tc := range []struct{ label, format string }{
				{"malformed", `{"group":"desk","password":%q`},
				{"unknown", `{"group":"desk","password":%q,"pin":"1234"}`},
				{"array", `{"group":"desk","password":[%q]}`},
				{"badname", `{"group":"desk","password":%q,"display_name":"a\u0007b"}`},
			} {
				s := newSecret(tc.label)
				secrets = append(secrets, s)
				call(http.MethodPut, a+"/devices/d3", fmt.Sprintf(tc.format, s.password), http.StatusBadRequest)
			}

			// Every read of the devices.
			for id := range accepted {
				call(http.MethodGet, a+"/devices/"+id, nil, http.StatusOK)
			}
			call(http.MethodGet, a+"/devices", nil, http.StatusOK)
			call(http.MethodGet, a+"/devices?group=desk&limit=2", nil, http.StatusOK)
			call(http.MethodGet, a, nil, http.StatusOK)
			call(http.MethodGet, a+"/groups", nil, http.StatusOK)
			call(http.MethodGet, a+"/groups/desk", nil, http.StatusOK)
			call(http.MethodGet, "/debug/actors", nil, http.StatusOK)
			state := call(http.MethodGet, "/debug/actors/account/"+st.account, nil, http.StatusOK)
			if !bytes.Contains(state.Body, []byte(`"d2"`)) {
				t.Fatalf("the account's debug state does not show its devices, so this test checks nothing: %s", state)
			}
			call(http.MethodGet, "/debug/actors/devicegroup/"+st.account+"/desk", nil, http.StatusOK)
			call(http.MethodGet, "/metrics", nil, http.StatusOK)

			for _, r := range replies {
				var hdr bytes.Buffer
				_ = r.Header.Write(&hdr)
				if found := leaks(append(hdr.Bytes(), r.Body...), secrets, true); len(found) > 0 {
					t.Errorf("reply leaks %q:\n%s\n%s", found, hdr.Bytes(), r.Body)
				}
			}

			if st.dsn != "" {
				checkPostgresRows(t, st.dsn, secrets, accepted)
			}
			n.stop(t)
			out := n.Stdout.String() + n.Stderr.String()
			if !strings.Contains(out, `"msg":"node serving"`) {
				t.Fatalf("no JSON log line \"node serving\" in the output, so the log check checks nothing:\n%s", nodeproc.Tail(out))
			}
			if found := leaks([]byte(out), secrets, true); len(found) > 0 {
				t.Errorf("the process output leaks %q", found)
			}
			if st.dataDir != "" {
				checkBadgerFiles(t, st.dataDir, secrets, accepted)
			}
		})
	}
}

// checkBadgerFiles reads every file under dir and fails the test if one
// holds a password. As a control, each accepted device's raw HA1 must be
// found: it proves the scan reads the files where records live.
func checkBadgerFiles(t *testing.T, dir string, secrets []secret, accepted map[string]secret) {
	t.Helper()
	var all [][]byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if found := leaks(b, secrets, false); len(found) > 0 {
			t.Errorf("store file %s holds %q", path, found)
		}
		all = append(all, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range accepted {
		if !slices.ContainsFunc(all, func(b []byte) bool { return bytes.Contains(b, s.ha1) }) {
			t.Errorf("no file under %s holds the HA1 of device %s, so the scan may be reading the wrong files", dir, id)
		}
	}
}

// checkPostgresRows reads every row of the store's table (through the
// persistence package, pgx's one home; values come back as stored), and fails the test if a key or value holds a password.
// As a control, each accepted device's raw HA1 must be found.
func checkPostgresRows(t *testing.T, dsn string, secrets []secret, accepted map[string]secret) {
	t.Helper()
	ctx, store := openPostgres(t, dsn)
	items, err := persistence.ScanAll(ctx, store, "")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	n := len(items)
	for _, it := range items {
		key, value := it.Key, it.Value
		if l := leaks(append([]byte(key), value...), secrets, false); len(l) > 0 {
			t.Errorf("row %q holds %q", key, l)
		}
		for id, s := range accepted {
			if bytes.Contains(value, s.ha1) {
				found[id] = true
			}
		}
	}
	for id := range accepted {
		if !found[id] {
			t.Errorf("no row of %d holds the HA1 of device %s, so the scan may be reading the wrong table", n, id)
		}
	}
}
