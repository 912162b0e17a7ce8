package cluster

import (
	"runtime"
	"sync"
	"syscall"
	"time"
)

// cpuSampler reports the process's CPU use since its last sample, as a
// fraction of the machine's CPUs.
type cpuSampler struct {
	mu       sync.Mutex
	lastCPU  time.Duration
	lastWall time.Time
}

func (s *cpuSampler) sample() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.lastCPU, s.lastWall = cpu, now }()
	if s.lastWall.IsZero() {
		return 0
	}
	wall := now.Sub(s.lastWall)
	if wall <= 0 {
		return 0
	}
	return min(1, float64(cpu-s.lastCPU)/float64(wall)/float64(runtime.NumCPU()))
}
