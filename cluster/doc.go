// Package cluster will own node membership: gossip through
// hashicorp/memberlist (its only home), the protoactor-go cluster provider
// on top of it, load reports, and the placement-aware identity lookup that
// replaces actors.LocalLookup when more than one node runs.
//
// Until then a node is a cluster of one and every actor lives on it.
package cluster
