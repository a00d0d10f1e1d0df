//go:build !linux

package bench

import "runtime"

const peakRSSNote = "peak RSS not measured on " + runtime.GOOS + " (VmHWM of /proc/self/status on Linux)"

// selfPeakRSS is 0 (unknown) here.
func selfPeakRSS() (int64, error) { return 0, nil }

const pageCacheNote = "page cache NOT dropped between phases on " + runtime.GOOS + " (warm reads)"

// dropFromPageCache does nothing here: POSIX_FADV_DONTNEED is Linux's.
func dropFromPageCache(string) error { return nil }
