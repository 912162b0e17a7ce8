// Package simulations will hold seeded, virtual-time simulations that run
// the runtime's own placement code over a modelled cluster, and the
// scenario files that drive them.
package simulations
