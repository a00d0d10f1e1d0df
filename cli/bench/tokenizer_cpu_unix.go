//go:build unix

package bench

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user + system, every
// thread: the garbage collector's work counts). Rates over it are per core
// and do not drop when other processes load the machine.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
