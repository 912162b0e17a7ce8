//go:build !linux

package sipp

import (
	"os"
	"syscall"
)

// sysProcAttr: only Linux can tie SIPp's life to ours (Pdeathsig).
func sysProcAttr() *syscall.SysProcAttr { return nil }

// Outside Linux both stops are an interrupt.
var (
	softStopSignal  = os.Interrupt
	interruptSignal = os.Interrupt
)
