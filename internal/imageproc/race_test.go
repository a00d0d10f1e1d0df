//go:build race

package imageproc

// raceEnabled: the race detector slows image/jpeg and the resize loops about
// tenfold, so the slowest parity cases are left to the normal run.
const raceEnabled = true
