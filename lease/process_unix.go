//go:build unix

package lease

import (
	"errors"
	"syscall"
)

// processExists reports whether pid names a process in this PID namespace
// (a zombie counts: the safe side).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
