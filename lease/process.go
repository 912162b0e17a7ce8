package lease

import (
	"os"
	"strings"
)

// Process names the process that wrote a liveness record, so that a node
// on the same host can tell for certain that the writer is gone (a node
// killed and started again, a test's node killed before the next test)
// instead of waiting out its lease.
type Process struct {
	Host  string `json:"host"`
	Boot  string `json:"boot,omitempty"`   // the kernel's boot id
	PIDNS string `json:"pid_ns,omitempty"` // the PID namespace
	PID   int    `json:"pid"`
}

// ThisProcess describes the calling process. On systems without boot and
// namespace ids (not Linux) Boot is empty, and DeadOnThisHost never
// applies.
func ThisProcess() Process {
	host, _ := os.Hostname()
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, _ := os.Readlink("/proc/self/ns/pid")
	return Process{Host: host, Boot: strings.TrimSpace(string(boot)), PIDNS: ns, PID: os.Getpid()}
}

// DeadOnThisHost reports whether the writer of rec provably no longer
// runs: it ran on this host, in this boot and PID namespace, and its PID
// names no process. A reused PID (this process's own included: several
// nodes may run in one process) makes the writer look alive, the safe
// side.
func DeadOnThisHost(w, self Process, exists func(pid int) bool) bool {
	if self.Boot == "" || self.PIDNS == "" || w.Host != self.Host || w.Boot != self.Boot || w.PIDNS != self.PIDNS || w.PID <= 0 {
		return false
	}
	return !exists(w.PID)
}
