//go:build race

package demo

// raceEnabled shrinks the demo test under the race detector, which slows the
// text tower's float loops about twentyfold (tune: ~40 samples/s against
// ~900-1400 without it), and turns its accuracy assertions off: .ci/run runs
// this package once without -race, where they hold. The stages themselves
// are race-tested in their own packages.
const raceEnabled = true
