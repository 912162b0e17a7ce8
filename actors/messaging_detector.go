package actors

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/fraud"
)

// This file is the one seam between the messaging supervisor and the
// fraud detector: the supervisor decides nothing about indicators itself.

// policyLevels are the stored policies (fraud policy JSON) that apply to
// one sender, nil where a level has none.
type policyLevels struct {
	account, group, device []byte
}

// detector is the fraud engine as the supervisor uses it. It is pure: no
// clock, no store, no goroutine.
type detector interface {
	// validate checks one level's policy; the error names the field.
	validate(policyJSON []byte) *actorpb.Error
	// effective merges the defaults and the levels into the policy that
	// applies to a sender.
	effective(l policyLevels) (effectivePolicy, error)
	// newSender starts a sender's detector state from its persisted
	// history (nil: a new sender).
	newSender(history []byte) (senderDetector, error)
}

// effectivePolicy is a merged policy.
type effectivePolicy interface {
	json() ([]byte, error)
	monitor() bool
	// safe tells a destination on the safe list: never checked, refused
	// or blocked.
	safe(destination string) bool
	// actions are taken at critical: actionTerminate, actionReset,
	// actionBlock.
	actions() []string
	// blockFor is how long blocks (and the sender's suspension) last.
	blockFor() time.Duration
	// window is how far back the destinations a sender targeted are
	// blocked at critical.
	window() time.Duration
}

// Actions at critical, as named in Incident.actions and the policy.
const (
	actionTerminate = "terminate_in_flight"
	actionReset     = "reset_credentials"
	actionBlock     = "block_destinations"
)

// fraudEvent is one request as the detector sees it.
type fraudEvent struct {
	at                                   time.Time
	kind, destination, source, userAgent string
	bodyHash                             []byte
}

// Detector levels.
const (
	levelOK       = "ok"
	levelWarning  = "warning"
	levelThrottle = "throttle"
	levelCritical = "critical"
)

// verdict is the detector's answer for one request.
type verdict struct {
	level            string
	indicator        string
	value, threshold float64
	// policyLevel is the level whose threshold fired: "default",
	// "account", "group" or "device".
	policyLevel string
	retryAfter  time.Duration
}

// senderDetector is one sender's windows and history.
type senderDetector interface {
	check(p effectivePolicy, ev fraudEvent) verdict
	// outcome feeds a delivery's result (the delivery-failure ratio).
	outcome(p effectivePolicy, at time.Time, failed bool)
	// targets lists the destinations the sender targeted since.
	targets(since time.Time) []string
	// history is what to persist so that another activation resumes.
	history() ([]byte, error)
}

// ---- package fraud behind the seam ----

// newDetector returns the detector the System's supervisors use.
func newDetector() detector { return fraudDetector{} }

// fraudDetector adapts package fraud.
type fraudDetector struct{}

// decodePolicy reads a policy level strictly (unknown fields refused).
func decodePolicy(b []byte) (fraud.Policy, *actorpb.Error) {
	var p fraud.Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&p)
	if err == nil && dec.More() {
		err = errors.New("the policy must be one JSON object")
	}
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &te) && te.Field != "":
		return p, invalid(te.Field, "%s must be a JSON %s, not %s", te.Field, te.Type.Kind(), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return p, invalid(f, "unknown field %q in the fraud policy", f)
	}
	return p, invalid("policy", "the fraud policy is not valid JSON: %v", err)
}

// policyError turns fraud's validation error into one naming the field.
func policyError(err error) *actorpb.Error {
	if err == nil {
		return nil
	}
	var fe *fraud.FieldError
	if errors.As(err, &fe) {
		return invalid(fe.Field, "%s", fe.Error())
	}
	return invalid("policy", "%v", err)
}

func (fraudDetector) validate(b []byte) *actorpb.Error {
	p, e := decodePolicy(b)
	if e != nil {
		return e
	}
	return policyError(p.Validate())
}

func (fraudDetector) effective(l policyLevels) (effectivePolicy, error) {
	var layers []fraud.Policy
	out := &mergedPolicy{}
	for i, b := range [][]byte{l.account, l.group, l.device} {
		if b == nil {
			continue
		}
		p, e := decodePolicy(b)
		if e != nil {
			return nil, errors.New(e.Message)
		}
		layers = append(layers, p)
		out.levels = append(out.levels, namedLayer{name: []string{"account", "group", "device"}[i], raw: b})
	}
	out.p = fraud.Merge(layers...)
	if err := out.p.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// mergedPolicy is a fraud.Merge result and the layers it came from.
type mergedPolicy struct {
	p      fraud.Policy
	levels []namedLayer
}

type namedLayer struct {
	name string
	raw  []byte
}

func (p *mergedPolicy) json() ([]byte, error) { return json.Marshal(p.p) }
func (p *mergedPolicy) monitor() bool         { return p.p.Monitor != nil && *p.p.Monitor }
func (p *mergedPolicy) actions() []string {
	var out []string
	a := p.p.Actions
	for _, x := range []struct {
		on   *bool
		name string
	}{{a.TerminateInFlight, actionTerminate}, {a.ResetCredentials, actionReset}, {a.BlockDestinations, actionBlock}} {
		if x.on != nil && *x.on {
			out = append(out, x.name)
		}
	}
	return out
}
func (p *mergedPolicy) blockFor() time.Duration {
	if s := p.p.Actions.BlockExpirySeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	return time.Hour
}
func (p *mergedPolicy) window() time.Duration {
	if s := p.p.Actions.IncidentWindowSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	return incidentWindow
}
func (p *mergedPolicy) safe(dest string) bool {
	d := fraud.NormalizeDestination(dest)
	for _, e := range p.p.SafeList {
		e = strings.TrimSpace(e)
		if strings.HasSuffix(e, "*") {
			if strings.HasPrefix(d, fraud.NormalizeDestination(strings.TrimSuffix(e, "*"))) {
				return true
			}
		} else if d == fraud.NormalizeDestination(e) {
			return true
		}
	}
	return false
}

// levelOf names the most specific layer that sets the indicator's
// thresholds ("default" when none does).
func (p *mergedPolicy) levelOf(indicator string) string {
	for i := len(p.levels) - 1; i >= 0; i-- {
		var v struct {
			Indicators map[string]map[string]json.RawMessage `json:"indicators"`
		}
		if json.Unmarshal(p.levels[i].raw, &v) != nil {
			continue
		}
		in := v.Indicators[indicator]
		for _, k := range []string{"warning", "throttle", "critical"} {
			if _, ok := in[k]; ok {
				return p.levels[i].name
			}
		}
	}
	return "default"
}

// ---- interim sender detector (until fraud.Sender lands) ----

type rateSender struct{ sent []fraudEvent }

func (fraudDetector) newSender([]byte) (senderDetector, error) { return &rateSender{}, nil }

func (s *rateSender) check(ep effectivePolicy, ev fraudEvent) verdict {
	p := ep.(*mergedPolicy)
	in := p.p.Indicators.RatePerMinute
	s.sent = append(s.sent, ev)
	i := 0
	for i < len(s.sent) && ev.at.Sub(s.sent[i].at) >= incidentWindow {
		i++
	}
	s.sent = s.sent[i:]
	n := 0
	for _, e := range s.sent {
		if ev.at.Sub(e.at) < time.Minute {
			n++
		}
	}
	v := verdict{level: levelOK}
	at := func(x *float64) bool { return x != nil && float64(n) >= *x }
	switch {
	case in.Enabled != nil && !*in.Enabled:
		return v
	case at(in.Critical):
		v.level, v.threshold = levelCritical, *in.Critical
	case at(in.Throttle):
		v.level, v.threshold, v.retryAfter = levelThrottle, *in.Throttle, 10*time.Second
	case at(in.Warning):
		v.level, v.threshold = levelWarning, *in.Warning
	default:
		return v
	}
	v.indicator, v.value = "rate_per_minute", float64(n)
	v.policyLevel = p.levelOf(v.indicator)
	return v
}

func (s *rateSender) outcome(effectivePolicy, time.Time, bool) {}

func (s *rateSender) targets(since time.Time) []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range s.sent {
		if !e.at.Before(since) && !seen[e.destination] {
			seen[e.destination] = true
			out = append(out, e.destination)
		}
	}
	return out
}

func (s *rateSender) history() ([]byte, error) { return nil, nil }
