package extract

import (
	"context"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// TestPipelineTowerOnCallerThread: every tower call runs on the OS thread of
// the goroutine that called run. A GPU backend needs this: cuda.Device.Bind
// makes its context current on the thread that opened it and locks the
// goroutine there, so a tower called from any other thread would fail.
func TestPipelineTowerOnCallerThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	caller := syscall.Gettid()
	dir := t.TempDir()
	shards := makeShards(t, dir, 2, 5)
	var other []int
	tw := &fakeTower{encode: func(int, []float32, int) error {
		if tid := syscall.Gettid(); tid != caller {
			other = append(other, tid)
		}
		return nil
	}}
	p := testPipeline(t, filepath.Join(dir, "cache"), shards, 1, 2, 4, tw)
	if _, err := p.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(tw.calls) == 0 || len(other) != 0 {
		t.Fatalf("%d tower calls, %d of them on threads %v other than the caller's %d", len(tw.calls), len(other), other, caller)
	}
}
