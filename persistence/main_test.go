package persistence_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: every
// engine's Close must stop what its Open started (badger's compactors and
// value-log GC, pgxpool's health checker).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
