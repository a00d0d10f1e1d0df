//go:build race

package demo

// raceEnabled shrinks the demo test under the race detector, which slows the
// text tower's float loops about tenfold; the stages themselves are
// race-tested in their own packages.
const raceEnabled = true
