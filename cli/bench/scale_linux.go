package bench

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// peakRSSNote says how peakRSS measures.
const peakRSSNote = "peak RSS = the phase's child process's ru_maxrss (wait4), anonymous and file-backed pages"

// peakRSS is the exited process's peak resident set in bytes (Linux reports
// ru_maxrss in KiB), 0 when unknown.
func peakRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}

// pageCacheNote says whether dropFromPageCache works here.
const pageCacheNote = "cold: every file of the cache dropped from the page cache (POSIX_FADV_DONTNEED) before each phase"

// dropFromPageCache asks the kernel to drop path's clean pages from the page
// cache, so that the next reader reads the disk (a cold start).
func dropFromPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
