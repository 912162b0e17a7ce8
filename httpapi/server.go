package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/clock"
	"github.com/switchboard-pbx/switchboard/events"
	"github.com/switchboard-pbx/switchboard/placement"
)

// Actors is what the API needs of the actor system.
type Actors interface {
	Request(ctx context.Context, kind, identity string, msg proto.Message) (proto.Message, error)
	RequestWithHint(ctx context.Context, kind, identity string, hint actors.Hint, msg proto.Message) (proto.Message, error)
	PoolSpecs(ctx context.Context) (map[string]placement.PoolSpec, error)
	// CallHint is tier 2's placement hint for a call in pool: the pool's
	// call capacity and its overflow's (actors.System.CallHint).
	CallHint(ctx context.Context, pool string) (actors.Hint, error)
	// ActivationPage, FindActivation and ActivationCounts read this
	// node's activations without listing them all (actors.Lookup).
	ActivationPage(kind string, after actors.ActivationKey, limit int) ([]*actors.Activation, bool)
	FindActivation(kind, identity string) (*actors.Activation, bool)
	ActivationCounts() map[string]int
	// ReadCall reads a call without activating it (actors.System.ReadCall).
	ReadCall(ctx context.Context, id string) (rec *actorpb.CallRecord, live bool, err error)
}

// Health tells the node's state: "serving" answers 200, anything else
// ("starting", "draining") answers 503.
type Health func() string

// Config configures the HTTP surface.
type Config struct {
	// Actors serves every provisioning and debug request. Required.
	Actors Actors
	// Zone is the DNS zone of account DNS names; it names the digest realm
	// <account>.<zone>. Required.
	Zone string
	// Node is this node's name, shown in debug replies.
	Node string
	// AdminToken, when set, is required as a bearer token on /v1/ and /debug/.
	AdminToken string
	// Health reports the node's state for /healthz. Default: always serving.
	Health Health
	// Cluster serves /debug/cluster and the cluster scope of the debug
	// endpoints. Default: none (this node only).
	Cluster Cluster
	// Drain starts the node's drain (POST /v1/admin/drain). Default: none.
	Drain func()
	// Pools serves GET /v1/pools. Default: none.
	Pools Pools
	// SIP serves /debug/sip/bans and /debug/sip/targets. Default: none.
	SIP SIPView
	// Registerer receives this package's metrics; Gatherer serves /metrics.
	// Default: none (metrics off, /metrics empty).
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Logger receives request errors. Default: discard.
	Logger *slog.Logger
	// Clock tells the time for relative figures in replies (a binding's
	// expires_in). Default: the wall clock.
	Clock clock.Clock
	// RequestTimeout bounds each actor request. Default 5s.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a request body. Default 1 MiB.
	MaxBodyBytes int64
	// Events serves the accounts' event streams and webhooks (events.go).
	// Default: none (those routes answer 404).
	Events *events.Stream
	// EventsHeartbeat is how often an idle event stream sends a comment
	// line, so that proxies keep it open. Default 15s.
	EventsHeartbeat time.Duration
	// Apps serves the app credentials and the integration API (apps.go,
	// callcontext.go). Default: Actors, when it implements Apps; else
	// none (those routes answer 404).
	Apps Apps
}

// DefaultConfig returns a Config with every default filled; Actors and
// Zone remain to be set.
func DefaultConfig() Config {
	return Config{
		Health: func() string { return "serving" }, Logger: slog.New(slog.DiscardHandler), Clock: clock.Real{},
		RequestTimeout: 5 * time.Second, MaxBodyBytes: 1 << 20, EventsHeartbeat: defaultEventsHeartbeat,
	}
}

// Validate reports the first missing or invalid setting.
func (c Config) Validate() error {
	switch {
	case c.Actors == nil || c.Zone == "":
		return errors.New("httpapi: Config.Actors and Config.Zone are required")
	case c.RequestTimeout <= 0 || c.MaxBodyBytes <= 0 || c.EventsHeartbeat <= 0:
		return errors.New("httpapi: Config.RequestTimeout, MaxBodyBytes and EventsHeartbeat must be positive")
	}
	return nil
}

// New returns the node's HTTP handler. Zero fields of cfg take
// DefaultConfig's values.
func New(cfg Config) (http.Handler, error) {
	def := DefaultConfig()
	if cfg.Health == nil {
		cfg.Health = def.Health
	}
	cfg.Logger = cmp.Or(cfg.Logger, def.Logger)
	cfg.Clock = cmp.Or(cfg.Clock, def.Clock)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, def.RequestTimeout)
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, def.MaxBodyBytes)
	cfg.EventsHeartbeat = cmp.Or(cfg.EventsHeartbeat, def.EventsHeartbeat)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	if a, ok := cfg.Actors.(Apps); ok && cfg.Apps == nil {
		cfg.Apps = a
	}
	s := &server{cfg: cfg, log: cfg.Logger.With("component", "http"), crossOrigin: http.NewCrossOriginProtection()}
	gz, err := gzhttp.NewWrapper(gzhttp.EnableZstd(false))
	if err != nil {
		return nil, err
	}
	s.gzip = gz
	if err := s.initMetrics(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

type server struct {
	cfg         Config
	log         *slog.Logger
	mux         *http.ServeMux
	crossOrigin *http.CrossOriginProtection
	// gzip compresses a reply for a client that accepts it (compressed).
	gzip func(http.Handler) http.HandlerFunc
	// adminRoutes are the patterns that need the admin token.
	adminRoutes []string
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	// provFails counts wrong provisioning secrets per address.
	provFails provisionLimiter
}

func (s *server) initMetrics() error {
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_http_requests_total",
		Help: "HTTP requests served, by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchboard_http_request_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"route"})
	if s.cfg.Registerer == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{s.requests, s.latency} {
		if err := s.cfg.Registerer.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) routes() {
	m := http.NewServeMux()
	// Anything no other pattern matches gets a JSON 404 or 405.
	m.HandleFunc("/", s.noRoute)
	m.HandleFunc("GET /healthz", s.healthz)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	// A device's own provisioning secret opens its document (provision.go).
	m.HandleFunc("GET /provision/{a}/{d}", s.provision)

	admin := func(pattern string, h http.HandlerFunc) {
		m.Handle(pattern, s.authorized(h))
		s.adminRoutes = append(s.adminRoutes, pattern)
	}
	admin("/debug/pprof/", pprof.Index)
	admin("/debug/pprof/cmdline", pprof.Cmdline)
	admin("/debug/pprof/profile", pprof.Profile)
	admin("/debug/pprof/symbol", pprof.Symbol)
	admin("/debug/pprof/trace", pprof.Trace)
	admin("GET /debug/cluster", s.compressed(s.clusterView))
	admin("POST /v1/admin/drain", s.drain)
	admin("GET /debug/actors", s.compressed(s.listActivations))
	admin("GET /debug/actors/{kind}/{id...}", s.compressed(s.describeActor))
	admin("GET /debug/sip/bans", s.sipView("bans", SIPView.Bans))
	admin("GET /debug/sip/targets", s.sipView("targets", SIPView.Targets))

	admin("PUT /v1/accounts/{a}", s.putAccount)
	admin("GET /v1/accounts/{a}", s.getAccount)
	admin("DELETE /v1/accounts/{a}", s.deleteAccount)
	admin("GET /v1/accounts/{a}/groups", s.compressed(s.listGroups))
	admin("PUT /v1/accounts/{a}/groups/{g}", s.putGroup)
	admin("GET /v1/accounts/{a}/groups/{g}", s.compressed(s.getGroup))
	admin("DELETE /v1/accounts/{a}/groups/{g}", s.deleteGroup)
	admin("PUT /v1/pools/{p}", s.putPool)
	admin("DELETE /v1/pools/{p}", s.deletePool)
	admin("GET /v1/pools", s.listPools)
	admin("POST /v1/calls", s.startCall)
	admin("GET /v1/calls/{id}", s.getCall)
	admin("POST /v1/accounts/{a}/apps", s.createApp)
	admin("GET /v1/accounts/{a}/apps", s.listApps)
	admin("DELETE /v1/accounts/{a}/apps/{id}", s.deleteApp)
	// The integration API takes app tokens (callcontext.go).
	m.Handle("GET /v1/calls", s.appAuthorized(actors.ScopeCallsRead, s.listUserCalls))
	m.Handle("GET /v1/calls/{id}/context", s.appAuthorized(actors.ScopeCallsRead, s.getCallContext))
	m.Handle("PATCH /v1/calls/{id}/context", s.appAuthorized(actors.ScopeContextWrite, s.patchCallContext))
	m.Handle("GET /v1/events", s.appAuthorized(actors.ScopeEventsRead, s.appEvents))
	admin("GET /v1/accounts/{a}/devices", s.compressed(s.listDevices))
	admin("PUT /v1/accounts/{a}/devices/{d}", s.putDevice)
	admin("GET /v1/accounts/{a}/devices/{d}", s.getDevice)
	admin("DELETE /v1/accounts/{a}/devices/{d}", s.deleteDevice)
	admin("POST /v1/accounts/{a}/devices/{d}/restore", s.restoreDevice)
	admin("GET /v1/accounts/{a}/trunks", s.compressed(s.listTrunks))
	admin("PUT /v1/accounts/{a}/trunks/{t}", s.putTrunk)
	admin("GET /v1/accounts/{a}/trunks/{t}", s.getTrunk)
	admin("DELETE /v1/accounts/{a}/trunks/{t}", s.deleteTrunk)
	admin("PUT /v1/accounts/{a}/routes", s.putRoutes)
	admin("GET /v1/accounts/{a}/routes", s.getRoutes)
	admin("GET /v1/accounts/{a}/groups/{g}/bindings", s.compressed(s.listBindings))
	admin("GET /v1/accounts/{a}/events", s.accountEvents)
	admin("PUT /v1/accounts/{a}/webhook", s.putWebhook)
	admin("GET /v1/accounts/{a}/webhook", s.getWebhook)
	admin("DELETE /v1/accounts/{a}/webhook", s.deleteWebhook)
	admin("PUT /v1/feature-servers/{f}", s.putFeatureServer)
	admin("GET /v1/feature-servers/{f}", s.getFeatureServer)
	admin("DELETE /v1/feature-servers/{f}", s.deleteFeatureServer)
	for _, lv := range []struct {
		path  string
		names []string
	}{
		{"/v1/accounts/{a}/fraud-policy", []string{"a"}},
		{"/v1/accounts/{a}/groups/{g}/fraud-policy", []string{"a", "g"}},
		{"/v1/accounts/{a}/devices/{d}/fraud-policy", []string{"a", "d"}},
	} {
		admin("PUT "+lv.path, s.putFraudPolicy(lv.names...))
		admin("GET "+lv.path, s.getFraudPolicy(lv.names...))
		admin("DELETE "+lv.path, s.deleteFraudPolicy(lv.names...))
	}
	admin("GET /v1/accounts/{a}/fraud/incidents", s.listIncidents)
	admin("GET /v1/accounts/{a}/fraud/incidents/{id}", s.incident(func(id string) proto.Message { return &actorpb.GetIncident{Id: id} }))
	admin("POST /v1/accounts/{a}/fraud/incidents/{id}/resolve", s.incident(func(id string) proto.Message { return &actorpb.ResolveIncident{Id: id} }))
	s.mux = m
}

// ServeHTTP refuses cross-site writes (refuseCrossSite), routes the rest,
// answering unknown routes and methods with JSON, and counts the request.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	var pattern string
	if s.refuseCrossSite(rec, r) {
		_, pattern = s.mux.Handler(r)
	} else {
		s.mux.ServeHTTP(rec, r) // sets r.Pattern
		pattern = r.Pattern
	}
	if pattern == "/" {
		pattern = "unmatched"
	}
	s.requests.WithLabelValues(pattern, r.Method, strconv.Itoa(rec.code)).Inc()
	s.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
}

func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	// Ask the mux whether another method would match, to tell 405 from 404.
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost, http.MethodPatch} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "/" {
			writeError(w, http.StatusMethodNotAllowed, "", fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path))
			return
		}
	}
	writeError(w, http.StatusNotFound, "", "no such resource: "+r.URL.Path)
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (pprof).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Media types a request body may have.
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json" // RFC 7396
)

// refuseCrossSite answers, and reports true for, a request that a web page
// of another site could have sent through an operator's browser (issue 9;
// the rules are in doc.go): 403 for a cross-origin write, 415 for a write
// whose body or Content-Type is not JSON.
func (s *server) refuseCrossSite(w http.ResponseWriter, r *http.Request) bool {
	if err := s.crossOrigin.Check(r); err != nil {
		field := "Origin"
		if r.Header.Get("Sec-Fetch-Site") != "" {
			field = "Sec-Fetch-Site"
		}
		writeError(w, http.StatusForbidden, field, "cross-site request refused ("+err.Error()+"): a page of another origin may not write to this node")
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	cts := r.Header.Values("Content-Type")
	if len(cts) == 0 && r.ContentLength == 0 {
		return false
	}
	if len(cts) == 1 {
		if mt, _, err := mime.ParseMediaType(cts[0]); err == nil && (mt == mediaJSON || mt == mediaMergePatch) {
			return false
		}
	}
	writeError(w, http.StatusUnsupportedMediaType, "Content-Type",
		fmt.Sprintf("a request body must be JSON: send one Content-Type: %s (or %s for a merge patch), not %q", mediaJSON, mediaMergePatch, strings.Join(cts, ", ")))
	return true
}

func (s *server) authorized(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken == "" && !addressHost(r.Host) {
			// DNS rebinding: a page of evil.example whose name now
			// resolves to this node is same-origin to the browser, and its
			// requests carry Host: evil.example. Without a token, only a
			// client that names the node by address (or localhost) is
			// served.
			writeError(w, http.StatusForbidden, "Host", fmt.Sprintf("Host %q is a name, not this node's address: a node without --admin-token answers only requests to an IP address or localhost (set --admin-token to be reached by name)", r.Host))
			return
		}
		if s.cfg.AdminToken != "" {
			// The scheme is case-insensitive (RFC 7235 section 2.1).
			scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
				writeError(w, http.StatusUnauthorized, "Authorization", "an admin bearer token is required: send Authorization: Bearer <token>")
				return
			}
		}
		h(w, r)
	})
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	st := s.cfg.Health()
	code := http.StatusOK
	if st != "serving" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]string{"status": st, "node": s.cfg.Node})
}

// ---- JSON helpers ----

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// indentBelow is the size under which a reply is indented for a reader;
// a larger one (a big page) goes out compact.
const indentBelow = 32 << 10

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		writeBody(w, http.StatusInternalServerError, fmt.Appendf(nil, "{\"error\": %q}\n", "encoding the reply: "+err.Error()))
		return
	}
	body := buf.Bytes()
	if len(body) < indentBelow {
		var ind bytes.Buffer
		if json.Indent(&ind, body, "", "  ") == nil {
			body = ind.Bytes()
		}
	}
	writeBody(w, code, body)
}

// writeBody writes an encoded JSON reply.
func writeBody(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(body) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, errorBody{Error: msg, Field: field})
}

// badInput writes fe, if any, as a 400 and reports whether it did.
func badInput(w http.ResponseWriter, fe *fieldError) bool {
	if fe != nil {
		writeError(w, http.StatusBadRequest, fe.field, fe.msg)
	}
	return fe != nil
}

// each maps xs by f into a list that is never nil (JSON [], not null).
func each[X, Y any](xs []X, f func(X) Y) []Y {
	out := make([]Y, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// readBody reads the request body, within MaxBodyBytes.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *fieldError) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, badField("body", "body is larger than %d bytes", s.cfg.MaxBodyBytes)
	case err != nil:
		return nil, badField("body", "reading body: %v", err)
	}
	return raw, nil
}

// decode reads a JSON body into v strictly: one object, known fields only.
// An empty body decodes as {}.
func (s *server) decode(w http.ResponseWriter, r *http.Request, v any) *fieldError {
	raw, fe := s.readBody(w, r)
	if fe != nil {
		return fe
	}
	switch strings.TrimSpace(string(raw)) {
	case "":
		raw = []byte("{}")
	case "null":
		return badField("body", "body must be a JSON object, not null")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err)
	}
	if dec.More() {
		return badField("body", "body must hold one JSON object")
	}
	return nil
}

// pathBody validates the path ids (pathIDs), then decodes the body into v.
func (s *server) pathBody(w http.ResponseWriter, r *http.Request, v any, names ...string) ([]string, bool) {
	ids, ok := pathIDs(w, r, names...)
	return ids, ok && !badInput(w, s.decode(w, r, v))
}

func jsonFieldError(err error) *fieldError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return badField("body", "body must be a JSON object, not %s", te.Value)
	case errors.As(err, &te):
		return badField(te.Field, "must be a JSON %s, not %s", te.Type.Kind(), te.Value)
	case errors.As(err, &se):
		return badField("body", "malformed JSON at byte %d: %v", se.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badField(f, "unknown field %q", f)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badField("body", "malformed JSON: unexpected end of body")
	}
	return badField("body", "malformed JSON: %v", err)
}

// ifMatch parses an optional If-Match header holding a version.
func ifMatch(r *http.Request) (*uint64, *fieldError) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return nil, nil
	}
	// If-Match compares strongly (RFC 9110 section 13.1.1): no weak tags.
	v, err := strconv.ParseUint(strings.Trim(h, `"`), 10, 64)
	if err != nil || v == 0 {
		return nil, badField("If-Match", "If-Match must be a version number as returned in ETag, e.g. \"42\"")
	}
	return &v, nil
}

func setETag(w http.ResponseWriter, version uint64) {
	w.Header().Set("ETag", `"`+strconv.FormatUint(version, 10)+`"`)
}

// unavailable answers 503 with msg, asking the client to retry in a second.
func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "", msg)
}

// replyCodes are the HTTP statuses of actor error codes; any other is 500.
var replyCodes = map[actorpb.Code]int{
	actorpb.Code_CODE_INVALID:     http.StatusBadRequest,
	actorpb.Code_CODE_NOT_FOUND:   http.StatusNotFound,
	actorpb.Code_CODE_CONFLICT:    http.StatusConflict,
	actorpb.Code_CODE_UNAVAILABLE: http.StatusServiceUnavailable,
}

// replyError writes e if set and reports whether it did.
func replyError(w http.ResponseWriter, e *actorpb.Error) bool {
	if e == nil {
		return false
	}
	code := cmp.Or(replyCodes[e.Code], http.StatusInternalServerError)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, code, e.Field, e.Message)
	return true
}

// addressHost says whether host (a Host header: host or host:port) is an
// IP literal, localhost or a name under .localhost (RFC 6761 section 6.3),
// none of which a DNS rebinding page can send.
func addressHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
