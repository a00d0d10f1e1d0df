//go:build !unix

package bench

import "time"

// processCPU is not available here; the tokenizer figures fall back to wall time.
func processCPU() (time.Duration, bool) { return 0, false }
