// Package memstat reads the process's memory for tests and benchmarks
// that bound it: the live heap after full collections, and the resident
// set.
package memstat

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
)

// LiveHeap is the heap in use after two full collections (the second
// frees what the first's finalizers released).
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Resident is the process's resident set in bytes, from
// /proc/self/statm (Linux only; elsewhere an error).
func Resident() (uint64, error) {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("memstat: resident memory needs /proc/self/statm (Linux): %w", err)
	}
	f := bytes.Fields(statm)
	if len(f) < 2 {
		return 0, fmt.Errorf("memstat: /proc/self/statm %q has no resident field", statm)
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("memstat: /proc/self/statm: %w", err)
	}
	return pages * uint64(os.Getpagesize()), nil
}
