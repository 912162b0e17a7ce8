package httpapi

import (
	"slices"
	"strings"
	"testing"
)

// Cross-site requests: issue 9, hole 6. A web page open in an operator's
// browser could POST /v1/admin/drain with text/plain and a foreign Origin,
// and the node stopped.

// crossSite is a request a page of another site can make an operator's
// browser send: its headers, body and the status it must get.
type crossSite struct {
	name string
	hdr  []string
	body string
	code int
}

func crossSiteRequests() []crossSite {
	const evil = "http://evil.example"
	return []crossSite{
		{"text/plain body", []string{"Content-Type", "text/plain"}, `{}`, 415},
		{"form body", []string{"Content-Type", "application/x-www-form-urlencoded"}, `a=1`, 415},
		{"multipart body", []string{"Content-Type", "multipart/form-data; boundary=x"}, "--x--", 415},
		{"text/plain, no body", []string{"Content-Type", "text/plain"}, "", 415},
		{"body without Content-Type", []string{"Content-Type", ""}, `{}`, 415},
		{"text/plain from a foreign Origin", []string{"Content-Type", "text/plain", "Origin", evil}, `{}`, 403},
		{"JSON from a foreign Origin", []string{"Origin", evil}, `{}`, 403},
		{"no body from a foreign Origin", []string{"Origin", evil}, "", 403},
		{"Origin null (sandboxed page)", []string{"Origin", "null"}, `{}`, 403},
		{"Sec-Fetch-Site cross-site", []string{"Sec-Fetch-Site", "cross-site"}, `{}`, 403},
		{"Sec-Fetch-Site same-site", []string{"Sec-Fetch-Site", "same-site"}, `{}`, 403},
		{"Sec-Fetch-Site cross-site, text/plain", []string{"Sec-Fetch-Site", "cross-site", "Content-Type", "text/plain"}, `{}`, 403},
	}
}

// TestDrain_Issue9_CrossSiteRefusedWithAndWithoutToken: on a node with a
// token and on one without (a loopback node), every cross-site form of
// POST /v1/admin/drain is refused with 403 or 415, with a JSON error
// naming the header at fault, and the node is not drained; a same-origin
// JSON drain (with the token where one is set) and curl -X POST still
// work.
func TestDrain_Issue9_CrossSiteRefusedWithAndWithoutToken(t *testing.T) {
	for _, token := range []string{"", "tok-9"} {
		t.Run("token="+token, func(t *testing.T) {
			f := newFixture(t, token)
			for _, tc := range crossSiteRequests() {
				t.Run(tc.name, func(t *testing.T) {
					r := f.do("POST", "/v1/admin/drain", tc.body, tc.hdr...)
					if r.code != tc.code {
						t.Fatalf("code %d (%s), want %d", r.code, r.body, tc.code)
					}
					m := r.json(t)
					want := map[int]string{403: "Origin", 415: "Content-Type"}[tc.code]
					if strings.HasPrefix(tc.name, "Sec-Fetch-Site") {
						want = "Sec-Fetch-Site"
					}
					if m["field"] != want || m["error"] == "" {
						t.Fatalf("error body %s, want field %q", r.body, want)
					}
					if n := f.drains.Load(); n != 0 {
						t.Fatalf("the node was drained (%d) by a refused request", n)
					}
				})
			}
			if token != "" {
				// Same-origin JSON, but no token.
				if r := f.do("POST", "/v1/admin/drain", `{}`, "Authorization", "", "Origin", f.srv.URL, "Sec-Fetch-Site", "same-origin"); r.code != 401 || f.drains.Load() != 0 {
					t.Fatalf("drain without the token: %d %s, %d drains", r.code, r.body, f.drains.Load())
				}
			}
			// The operator's own page (same origin), and curl -X POST.
			if r := f.do("POST", "/v1/admin/drain", `{}`, "Origin", f.srv.URL, "Sec-Fetch-Site", "same-origin"); r.code != 202 || f.drains.Load() != 1 {
				t.Fatalf("same-origin JSON drain: %d %s, %d drains", r.code, r.body, f.drains.Load())
			}
			if r := f.do("POST", "/v1/admin/drain", "", "Content-Type", ""); r.code != 202 || f.drains.Load() != 2 {
				t.Fatalf("curl -X POST drain: %d %s, %d drains", r.code, r.body, f.drains.Load())
			}
			if r := f.do("POST", "/v1/admin/drain", `{}`, "Content-Type", "application/json; charset=utf-8"); r.code != 202 {
				t.Fatalf("JSON with a charset: %d %s", r.code, r.body)
			}
		})
	}
}

// samplePath fills a route pattern's wildcards: "PUT /v1/accounts/{a}"
// becomes ("PUT", "/v1/accounts/acme"); a pattern without a method is
// given method.
func samplePath(pattern, method string) (string, string) {
	m, p, ok := strings.Cut(pattern, " ")
	if !ok {
		m, p = method, pattern
	}
	var b strings.Builder
	for seg := range strings.SplitSeq(p, "/") {
		if b.Len() > 0 || seg != "" {
			b.WriteString("/")
		}
		if strings.HasPrefix(seg, "{") {
			seg = "acme"
		}
		b.WriteString(seg)
	}
	if strings.HasSuffix(p, "/") {
		b.WriteString("/")
	}
	return m, b.String()
}

// TestAdminRoutes_Issue9_EveryOneNeedsTheTokenAndRefusesCrossSiteWrites:
// every route registered as an admin route, drain among them, answers 401
// without the token; with it, a cross-site or non-JSON write to any of
// them is refused before it reaches an actor, on a node with a token and
// on one without.
func TestAdminRoutes_Issue9_EveryOneNeedsTheTokenAndRefusesCrossSiteWrites(t *testing.T) {
	withToken := newFixture(t, "tok-9")
	if len(withToken.api.adminRoutes) < 20 || !slices.Contains(withToken.api.adminRoutes, "POST /v1/admin/drain") {
		t.Fatalf("admin routes not recorded: %v", withToken.api.adminRoutes)
	}
	for _, pattern := range withToken.api.adminRoutes {
		method, path := samplePath(pattern, "GET")
		if r := withToken.do(method, path, "", "Authorization", ""); r.code != 401 || r.json(t)["field"] != "Authorization" {
			t.Fatalf("%s (%s %s) without the token: %d %s", pattern, method, path, r.code, r.body)
		}
	}
	for _, f := range []*fixture{withToken, newFixture(t, "")} {
		f.seed()
		before := f.must(200, "GET", "/v1/accounts/acme", "").body
		for _, pattern := range f.api.adminRoutes {
			method, path := samplePath(pattern, "POST")
			if method == "GET" {
				continue
			}
			for _, tc := range crossSiteRequests() {
				if r := f.do(method, path, tc.body, tc.hdr...); r.code != tc.code {
					t.Fatalf("token %q, %s %s, %s: %d %s, want %d", f.token, method, path, tc.name, r.code, r.body, tc.code)
				}
			}
		}
		if after := f.must(200, "GET", "/v1/accounts/acme", "").body; after != before || f.drains.Load() != 0 {
			t.Fatalf("refused writes changed state: %s -> %s, %d drains", before, after, f.drains.Load())
		}
	}
}

// TestAdmin_DNSRebindingRefusedWithoutToken: a page of evil.example whose
// name is rebound to 127.0.0.1 is same-origin to the browser, so Origin
// checks pass; its requests carry Host: evil.example. A node without a
// token answers only clients that name it by address or localhost; with
// a token, the token decides.
func TestAdmin_DNSRebindingRefusedWithoutToken(t *testing.T) {
	f := newFixture(t, "")
	for _, host := range []string{"evil.example:8080", "evil.example", "127.0.0.1.nip.example"} {
		r := f.do("POST", "/v1/admin/drain", `{}`, "Host", host, "Origin", "http://"+host, "Sec-Fetch-Site", "same-origin")
		if r.code != 403 || r.json(t)["field"] != "Host" || f.drains.Load() != 0 {
			t.Fatalf("drain with Host %s: %d %s, %d drains; want 403 naming Host and none", host, r.code, r.body, f.drains.Load())
		}
		if r := f.do("GET", "/v1/accounts/acme", "", "Host", host); r.code != 403 {
			t.Fatalf("GET with Host %s: %d %s, want 403", host, r.code, r.body)
		}
	}
	for _, host := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080", "node.localhost"} {
		if r := f.do("GET", "/v1/accounts/acme", "", "Host", host); r.code == 403 {
			t.Fatalf("GET with Host %s: %d %s, want it served", host, r.code, r.body)
		}
	}
	tok := newFixture(t, "tok-9")
	if r := tok.do("GET", "/v1/accounts/acme", "", "Host", "node1.example:8080"); r.code == 403 || r.code == 401 {
		t.Fatalf("with a token, GET by name: %d %s, want it served", r.code, r.body)
	}
}
