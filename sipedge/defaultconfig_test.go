package sipedge

import (
	"slices"
	"testing"
	"time"
)

// DefaultConfig holds the defaults New would fill, and no route secret:
// New draws one per edge when none is given.
func TestDefaultConfig_FillsDefaultsButNoSecret(t *testing.T) {
	c := DefaultConfig()
	if c.Pool != "default" || c.ActorTimeout != 3*time.Second || c.RingTimeout != time.Minute || c.Clock == nil || c.Logger == nil {
		t.Fatalf("DefaultConfig = %+v, want pool default, 3 s actor timeout, 1 min ring timeout, a clock and a logger", c)
	}
	if !slices.Equal(c.DigestAlgorithms, []string{"MD5", "SHA-256"}) {
		t.Errorf("DigestAlgorithms = %v, want MD5 and SHA-256", c.DigestAlgorithms)
	}
	if len(c.RouteSecret) != 0 {
		t.Error("DefaultConfig drew a route secret; New draws it")
	}
}
