package lease

import "time"

// This file holds the decisions: pure functions of records, what this node
// observed and when, and the time. Node carries them out.

// NodeRecord is a node's liveness record, lease/node/<ID>.
type NodeRecord struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Pool   string `json:"pool,omitempty"`
	Gossip string `json:"gossip,omitempty"`
	Actor  string `json:"actor,omitempty"`
	// Process is the writer, for DeadOnThisHost.
	Process Process `json:"process"`
	// RenewedAt is the writer's wall time when the renewal began.
	RenewedAt time.Time `json:"renewed_at"`
}

// OwnerRecord is an identity's owner, lease/owner/<kind>/<identity>.
type OwnerRecord struct {
	Node string    `json:"node"` // node id
	Name string    `json:"name"` // node name, for operators
	At   time.Time `json:"at"`   // when it was taken
}

// Observation is what one node knows of another's liveness record: the
// record, its store version, and when (by the observer's clock) the
// observer first saw that version.
type Observation struct {
	Record  NodeRecord
	Version uint64
	Since   time.Time
}

// Valid reports whether a node's own lease is valid at now, given when its
// last successful renewal began: for TTL - Margin after it.
func Valid(renewStart, now time.Time, cfg Config) bool {
	return !renewStart.IsZero() && now.Before(renewStart.Add(cfg.TTL-cfg.Margin))
}

// Expired reports whether an observed node no longer vouches for itself at
// now: its record is absent (present false), or the observer has seen the
// same version for TTL, or (unless MaxClockSkew is negative) the record's
// renewal time is older than TTL + MaxClockSkew by now.
//
// Why it is safe: the node stopped serving TTL - Margin after its last
// successful renewal began, which is no later than the commit of that
// write, which is no later than when any observer first saw it. The wall
// clock rule adds MaxClockSkew for clocks that disagree.
func Expired(o Observation, present bool, now time.Time, cfg Config) bool {
	if !present {
		return true
	}
	if !now.Before(o.Since.Add(cfg.TTL)) {
		return true
	}
	return cfg.MaxClockSkew >= 0 && now.Sub(o.Record.RenewedAt) > cfg.TTL+cfg.MaxClockSkew
}

// Decide tells whether node self may take an identity whose owner record is
// cur (nil: none): when there is none, when it is self's own, or when its
// owner has expired.
func Decide(cur *OwnerRecord, self string, ownerExpired bool) bool {
	return cur == nil || cur.Node == self || ownerExpired
}

// observe merges one scan of the liveness records into what the observer
// knew: a record keeps its Since while its version is unchanged and gets
// now when it is new or changed; records missing from the scan are
// dropped.
func observe(known map[string]Observation, scan map[string]versioned, now time.Time) map[string]Observation {
	out := make(map[string]Observation, len(scan))
	for id, r := range scan {
		o, ok := known[id]
		if !ok || o.Version != r.version {
			o = Observation{Since: now, Version: r.version}
		}
		o.Record = r.rec
		out[id] = o
	}
	return out
}

// forgettable reports whether another node's record has stayed unchanged
// long enough to be deleted.
func forgettable(o Observation, now time.Time, cfg Config) bool {
	return !now.Before(o.Since.Add(cfg.ForgetAfter))
}

// versioned is a decoded liveness record and its store version.
type versioned struct {
	rec     NodeRecord
	version uint64
}
