package callcontext

import (
	"encoding/json"
	"time"
)

// View is a call's context as apps see it (GET /v1/calls/{id}/context,
// and the data of call.ringing).
type View struct {
	// Call is the call record (or the live call's state), as the API
	// shows a call.
	Call map[string]any `json:"call"`
	// Live is true while the call is in progress.
	Live bool `json:"live"`
	// Apps holds each app's namespace by app name.
	Apps map[string]json.RawMessage `json:"apps"`
	// Version counts the writes to the apps' namespaces (0: none yet);
	// the ETag, compared by If-Match.
	Version uint64 `json:"version"`
	// Writers tells, per app, who last wrote its namespace and when.
	Writers map[string]Writer `json:"writers"`
}

// Writer attributes a namespace's last write.
type Writer struct {
	App string `json:"app"`
	// User is the user (device) the writing token acts for, if any.
	User    string    `json:"user,omitempty"`
	At      time.Time `json:"at"`
	Version uint64    `json:"version"`
}

// Namespace is one app's stored supplement on a call.
type Namespace struct {
	Doc    []byte // compact JSON object
	Writer Writer
}

// Assemble builds the View of a call from its record (as the API shows
// it), whether it is live, and the apps' namespaces. Pure: the maps are
// fresh, the documents shared (they are never modified in place).
func Assemble(call map[string]any, live bool, apps map[string]Namespace, version uint64) View {
	v := View{Call: call, Live: live, Version: version,
		Apps: make(map[string]json.RawMessage, len(apps)), Writers: make(map[string]Writer, len(apps))}
	for name, ns := range apps {
		v.Apps[name] = json.RawMessage(ns.Doc)
		v.Writers[name] = ns.Writer
	}
	return v
}

// Changed is the data of a context.changed event.
type Changed struct {
	Call    string    `json:"call"`
	App     string    `json:"app"`
	User    string    `json:"user,omitempty"`
	Changed []string  `json:"changed"`
	Removed []string  `json:"removed"`
	Version uint64    `json:"version"`
	At      time.Time `json:"at"`
}
