package httpapi

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-pbx/switchboard/actors"
	"github.com/switchboard-pbx/switchboard/actors/actorpb"
	"github.com/switchboard-pbx/switchboard/sipauth"
)

var labelKeyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]{0,62}$`)

// Limits on provisioned text.
const (
	maxDisplayName = 200
	maxLabels      = 32
	maxLabelValue  = 63
)

// fieldError is bad input: which field, and what is wrong with it.
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

func badField(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// fromActor turns an actor's validation error (the same checks run here
// before the actor is asked) into a field error.
func fromActor(e *actorpb.Error) *fieldError {
	if e == nil {
		return nil
	}
	return &fieldError{field: e.Field, msg: e.Message}
}

// checkID validates a group, device, trunk or pool id, or an account or
// feature id that is only read (a call's account, a debug identity).
func checkID(field, v string) *fieldError {
	if !actors.ValidID(v) {
		return badField(field, "%q is not a valid id: use 1 to 63 characters from a-z, 0-9, '.', '_' and '-', starting with a letter or digit", v)
	}
	return nil
}

// checkOptionalID is checkID for a value that may be absent ("").
func checkOptionalID(field, v string) *fieldError {
	if v == "" {
		return nil
	}
	return checkID(field, v)
}

// checkLabelID validates the account or feature id v in r's path (field
// "account" or "feature"): one DNS label (actors.CheckLabelID), since it
// names DNS names. A GET, HEAD or DELETE also accepts an id of checkID's
// wider rule, so that a record stored before the label rule can be read
// and removed.
func checkLabelID(r *http.Request, field, v string) *fieldError {
	e := actors.LabelIDError(field, field, v)
	if e == nil {
		return nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		if actors.ValidID(v) {
			return nil
		}
	}
	return fromActor(e)
}

// checkDigestAlgorithm returns the canonical digest_algorithm setting:
// "", "MD5" or "SHA-256" (any case).
func checkDigestAlgorithm(v string) (string, *fieldError) {
	alg, err := sipauth.ParseAlgorithm(v)
	if err != nil {
		return "", badField("digest_algorithm", "%v; leave it out for the default (MD5 unless the device answered SHA-256 or its account is set to it)", err)
	}
	return alg, nil
}

// checkTrustedSources checks an account's sip_trusted_sources and returns
// them canonical (actors.ParseTrustedSources).
func checkTrustedSources(v []string) ([]string, *fieldError) {
	ps, err := actors.ParseTrustedSources(v)
	if err != nil {
		return nil, badField("sip_trusted_sources", "%v", err)
	}
	return actors.PrefixStrings(ps), nil
}

func checkDisplayName(v string) *fieldError {
	switch {
	case !utf8.ValidString(v):
		return badField("display_name", "must be valid UTF-8")
	case utf8.RuneCountInString(v) > maxDisplayName:
		return badField("display_name", "must be at most %d characters", maxDisplayName)
	case strings.ContainsFunc(v, unicode.IsControl):
		return badField("display_name", "must not contain control characters")
	}
	return nil
}

func checkLabels(labels map[string]string) *fieldError {
	if len(labels) > maxLabels {
		return badField("labels", "at most %d labels", maxLabels)
	}
	for k, v := range labels {
		if !labelKeyPattern.MatchString(k) {
			return badField("labels", "label key %q is not valid: 1 to 63 characters from a-z, 0-9, '.', '_', '/' and '-'", k)
		}
		if !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxLabelValue {
			return badField("labels", "label %q: value must be valid UTF-8 of at most %d characters", k, maxLabelValue)
		}
		if strings.ContainsFunc(v, unicode.IsControl) {
			return badField("labels", "label %q: value must not contain control characters", k)
		}
	}
	return nil
}
