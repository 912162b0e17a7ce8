package sipp

import "syscall"

// sysProcAttr has SIPp killed if the Go process that started it dies
// first, so that an aborted test run leaves no SIPp behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// softStopSignal is SIPp's "stop placing calls, finish the open ones, then
// exit"; interruptSignal stops it at once, still writing its statistics.
var (
	softStopSignal  = syscall.SIGUSR1
	interruptSignal = syscall.SIGINT
)
