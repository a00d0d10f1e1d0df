package cuda

import (
	"math/bits"
	"sync"
)

// pool keeps freed device buffers for reuse, by size class. Classes are
// powers of two up to 2 MiB and multiples of 2 MiB above; a request takes a
// free buffer of its class, or else the smallest free one at most a quarter
// larger: a loop whose shapes vary a little (the last, smaller batch of a
// shard; a text batch trimmed to its longest caption) reuses the buffers of
// the larger shape instead of allocating anew. cuMemAlloc synchronises the
// device, so an allocation in a steady loop costs far more than the slack.
type pool struct {
	dv   *Device
	mu   sync.Mutex
	free map[uint64][]Buffer
	// held is the bytes in the pool's free lists.
	held uint64
}

const poolLargeStep = 2 << 20

// sizeClass is the capacity a request of n bytes is served with.
func sizeClass(n uint64) uint64 {
	if n <= 256 {
		return 256
	}
	if n <= poolLargeStep {
		return 1 << bits.Len64(n-1)
	}
	return (n + poolLargeStep - 1) / poolLargeStep * poolLargeStep
}

// get returns a buffer of at least n bytes (Bytes is its class).
func (p *pool) get(n uint64) (Buffer, error) {
	c := sizeClass(n)
	p.mu.Lock()
	if fit := p.bestFit(c); fit != 0 {
		l := p.free[fit]
		buf := l[len(l)-1]
		p.free[fit] = l[:len(l)-1]
		p.held -= fit
		p.mu.Unlock()
		return buf, nil
	}
	p.mu.Unlock()
	buf, err := p.dv.Alloc(c)
	if e, ok := err.(*Error); ok && e.Code == errOutOfMemory {
		// Out of memory: give the pool back to the device and try once more.
		if terr := p.trim(); terr != nil {
			return Buffer{}, terr
		}
		buf, err = p.dv.Alloc(c)
	}
	return buf, err
}

// bestFit is the class of the free buffer to serve class c with: c itself,
// else the smallest free class within c·5/4; 0 when none. p.mu is held.
func (p *pool) bestFit(c uint64) uint64 {
	if len(p.free[c]) > 0 {
		return c
	}
	best := uint64(0)
	for k, l := range p.free {
		if len(l) > 0 && k > c && k <= c+c/4 && (best == 0 || k < best) {
			best = k
		}
	}
	return best
}

// put returns buf for reuse. Work queued on the stream that still reads buf
// runs before any later user's, which is queued after it.
func (p *pool) put(buf Buffer) {
	p.mu.Lock()
	if p.free == nil {
		p.free = map[uint64][]Buffer{}
	}
	p.free[buf.Bytes] = append(p.free[buf.Bytes], buf)
	p.held += buf.Bytes
	p.mu.Unlock()
}

// trim waits for the stream (queued work may still use pooled buffers) and
// frees every pooled buffer.
func (p *pool) trim() error {
	if err := p.dv.Sync(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var first error
	for k, l := range p.free {
		for _, buf := range l {
			if err := p.dv.Free(buf); err != nil && first == nil {
				first = err
			}
		}
		delete(p.free, k)
	}
	p.held = 0
	return first
}
