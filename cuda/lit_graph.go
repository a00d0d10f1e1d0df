package cuda

import "fmt"

// CUDA graphs for the LiT step: a step's device work has one shape per
// (captions, tokens) pair — few, since contexts are bucketed to multiples
// of 8 and caption counts to multiples of B/8 — and fixed addresses (the
// arena, the loss buffers, the flat parameters), and everything that
// changes from step to step (indices, the learning rate, the bias
// corrections) is read from device memory. So each shape's work is captured
// once and replayed: one launch instead of some 40 per layer.

// litGraphKey is what a captured step depends on.
type litGraphKey struct {
	U, T        int
	rowcap      bool
	train, caps uintptr // the resident tables
}

type litGraph struct{ graph, exec uintptr }

// streamCaptureRelaxed is CU_STREAM_CAPTURE_MODE_RELAXED: other threads may
// make any driver call meanwhile (Go moves goroutines between threads).
const streamCaptureRelaxed = 2

// replay runs the step of shape key from its graph, capturing it first.
func (l *LiT) replay(key litGraphKey, train *DeviceRows, caps *DeviceCaptions) error {
	dv := l.b.dv
	if dv.drv.graphErr != nil {
		return dv.drv.graphErr
	}
	g := l.graphs[key]
	if g == nil {
		var err error
		if g, err = l.capture(key, train, caps); err != nil {
			return &OpError{Op: fmt.Sprintf("LiT step graph capture (%d captions × %d tokens)", key.U, key.T), Err: err}
		}
		l.graphs[key] = g
	}
	return dv.call("cuGraphLaunch", func() Result { return dv.drv.cuGraphLaunch(g.exec, dv.Stream) })
}

// capture records l.record's work for key as a graph and instantiates it.
func (l *LiT) capture(key litGraphKey, train *DeviceRows, caps *DeviceCaptions) (g *litGraph, err error) {
	dv := l.b.dv
	if err := dv.call("cuStreamBeginCapture", func() Result { return dv.drv.cuStreamBeginCapture(dv.Stream, streamCaptureRelaxed) }); err != nil {
		return nil, err
	}
	dv.capturing.Store(true)
	ended := false
	defer func() {
		dv.capturing.Store(false)
		if !ended { // a failed op mid-capture: end it and drop what was recorded
			var graph uintptr
			if dv.call("cuStreamEndCapture", func() Result { return dv.drv.cuStreamEndCapture(dv.Stream, &graph) }) == nil && graph != 0 {
				_ = dv.call("cuGraphDestroy", func() Result { return dv.drv.cuGraphDestroy(graph) })
			}
		}
	}()
	l.record(key, train, caps)
	g = &litGraph{}
	ended = true
	if err := dv.call("cuStreamEndCapture", func() Result { return dv.drv.cuStreamEndCapture(dv.Stream, &g.graph) }); err != nil {
		return nil, err
	}
	if err := dv.call("cuGraphInstantiateWithFlags", func() Result { return dv.drv.cuGraphInstantiateWithFlags(&g.exec, g.graph, 0) }); err != nil {
		_ = dv.call("cuGraphDestroy", func() Result { return dv.drv.cuGraphDestroy(g.graph) })
		return nil, err
	}
	return g, nil
}

// Graphs is the number of step shapes captured so far.
func (l *LiT) Graphs() int { return len(l.graphs) }

// dropGraphs releases every captured graph (the arena they point into is
// about to change, or the trainer is freed).
func (l *LiT) dropGraphs() {
	dv := l.b.dv
	for k, g := range l.graphs {
		if g.exec != 0 {
			_ = dv.call("cuGraphExecDestroy", func() Result { return dv.drv.cuGraphExecDestroy(g.exec) })
		}
		if g.graph != 0 {
			_ = dv.call("cuGraphDestroy", func() Result { return dv.drv.cuGraphDestroy(g.graph) })
		}
		delete(l.graphs, k)
	}
}
