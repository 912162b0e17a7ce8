package sipedge

import (
	"strings"

	"github.com/switchboard-pbx/switchboard/actors/actorpb"
)

// MatchRoute returns the feature of the first of routes that matches the
// request type (method, request-URI user), or "" when none does. A rule's
// method is a method or "*"; its user is an exact user, a prefix ending in
// "*", or "*" for any user.
func MatchRoute(routes []*actorpb.Route, method, user string) string {
	for _, r := range routes {
		if (r.Method == "*" || strings.EqualFold(r.Method, method)) && userMatches(r.User, user) {
			return r.Feature
		}
	}
	return ""
}

func userMatches(pattern, user string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(user, prefix) // "*" is the empty prefix
	}
	return pattern == user
}
