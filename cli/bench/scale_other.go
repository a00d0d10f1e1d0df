//go:build !linux

package bench

import (
	"os"
	"runtime"
)

const peakRSSNote = "peak RSS not measured on " + runtime.GOOS + " (read from ru_maxrss on Linux)"

// peakRSS is 0 (unknown) here: ru_maxrss's unit differs by system and
// Windows has none.
func peakRSS(*os.ProcessState) int64 { return 0 }

const pageCacheNote = "page cache NOT dropped between phases on " + runtime.GOOS + " (warm reads)"

// dropFromPageCache does nothing here: POSIX_FADV_DONTNEED is Linux's.
func dropFromPageCache(string) error { return nil }
