package placement

// The kinds of virtual actors, one table for the runtime (package actors
// re-exports these names), the directory (package cluster) and the
// simulator (package simulations). A kind's directory and rendezvous key is
// Key(kind, identity).
const (
	// KindAccount is an account (identity: the account id).
	KindAccount = "account"
	// KindDeviceGroup is a device group (identity: account/group); tier 1
	// assigns its pool.
	KindDeviceGroup = "devicegroup"
	// KindCall is a call (identity: the Call-ID); tier 2 places it, and its
	// load figure is Load.ActiveCalls, not Activations.
	KindCall = "call"
	// KindFeatureServer is a feature server (identity: the feature id).
	KindFeatureServer = "featureserver"
	// KindPools is the one actor that holds every pool's prescribed
	// conditions.
	KindPools = "pools"
	// KindMessaging is an account's messaging supervisor (identity: the
	// account id).
	KindMessaging = "messaging"
	// KindCallContext is a call's cached context (identity: the call id).
	KindCallContext = "callcontext"
)

// Kinds lists every kind, in a fixed order. It returns a new slice.
func Kinds() []string {
	return []string{KindAccount, KindDeviceGroup, KindCall, KindFeatureServer, KindPools, KindMessaging, KindCallContext}
}
