//go:build race

package imageproc

// raceEnabled: the race detector slows image/jpeg and the resize loops about
// 25×, so the pure-Go decoder's slowest parity cases are left to the normal
// run (see TestPreprocessParity).
const raceEnabled = true
