package actors

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"
)

// registryBuckets is how many concurrent maps hold the local processes of
// the actor system (protoactor makes 1024, each of 32 shards: 32,768 Go
// maps). Every activation and every request's future registers under a
// fresh id, which lands in a random shard; a Go map keeps its storage after
// its entries are deleted, so with 1024 buckets the registry grows by a
// few hundred bytes per shard it first touches, towards about 10 MB, as
// activations come and go (measured: +2.4 MB over 5,000 activate/passivate
// cycles of one account). With 8 buckets (256 shards) every shard is in
// use after the first few hundred activations and the registry's size
// follows the number of live processes. A power of two dividing 1024, so
// that the processes already registered stay in their bucket or move by
// the same modulo protoactor uses.
const registryBuckets = 8

// compactRegistry shrinks the process registry of a new actor system to
// registryBuckets buckets. It must run before the system is shared with
// another goroutine (nothing reads the registry meanwhile).
func compactRegistry(as *actor.ActorSystem) {
	sm := as.ProcessRegistry.LocalPIDs
	old := sm.LocalPIDs
	if len(old) <= registryBuckets || len(old)%registryBuckets != 0 {
		return
	}
	sm.LocalPIDs = slices.Clip(slices.Clone(old[:registryBuckets]))
	for _, m := range old[registryBuckets:] {
		for id, p := range m.Items() {
			sm.GetBucket(id).Set(id, p)
		}
	}
}
