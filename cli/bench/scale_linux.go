package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// peakRSSNote says how selfPeakRSS measures, and why not otherwise.
const peakRSSNote = "peak RSS = VmHWM of the phase's own child process at its end (anonymous and file-backed pages; ru_maxrss would carry the parent's peak over exec)"

// selfPeakRSS is this process's peak resident set in bytes: VmHWM in
// /proc/self/status, the high-water mark of its memory map since exec.
// (getrusage's ru_maxrss is no use for a child: Linux folds the parent's
// high-water mark into it when the child execs from a vfork.)
func selfPeakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/self/status: VmHWM %q: %w", v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/self/status: no VmHWM line")
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
