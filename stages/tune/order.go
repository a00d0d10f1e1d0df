package tune

import (
	"fmt"
	"math/rand/v2"
	"sort"
)

// Epoch orders (Config.Shuffle).
const (
	// ShuffleGlobal draws each epoch's order uniformly over all images: the
	// best mixing, but each batch reads rows from all over the cache.
	ShuffleGlobal = "global"
	// ShuffleBlock shuffles the blocks (the cache's parts), then the images
	// within each window of ShuffleWindow consecutive blocks, as webdataset's
	// shard shuffle plus shuffle buffer does: a window's parts are read whole,
	// each once per epoch, so a cache larger than memory is read at the
	// disk's sequential speed instead of one random page per row.
	ShuffleBlock = "block"
)

// DefaultShuffleWindow is the blocks mixed at once by ShuffleBlock: 8 parts
// of 10,000 images, 120 MB of float16 768-d rows to hold in the page cache.
const DefaultShuffleWindow = 8

// fallbackBlock is the block size given to a Source without Blocks.
const fallbackBlock = 1024

// Blocked is a Source whose images lie in blocks best read together; its
// block starts are ascending image indices, the first 0. StoreSource's
// blocks are the cache's parts.
type Blocked interface {
	Blocks() []int
}

// Prefetcher is a Source that can start reading blocks before their rows are
// asked for.
type Prefetcher interface {
	Prefetch(blocks []int)
}

// epochOrder is epoch's image order and each image's view: a PCG seeded with
// (seed, epoch), so any epoch's order is known without replaying the others
// (resume needs no generator state).
func epochOrder(seed uint64, epoch, N, V int) (perm []int, views []uint8) {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)))
	perm = rng.Perm(N)
	views = drawViews(rng, N, V)
	return perm, views
}

func drawViews(rng *rand.Rand, N, V int) []uint8 {
	if V <= 1 {
		return nil
	}
	views := make([]uint8, N)
	for i := range views {
		views[i] = uint8(rng.IntN(V))
	}
	return views
}

// window is a run of the order that reads blocks together.
type window struct {
	start  int   // position in the order of its first image
	blocks []int // the blocks it reads
}

// blockOrder is ShuffleBlock's order for an epoch over N images in blocks
// (block b holds images starts[b] .. starts[b+1]-1): the blocks in a random
// order, then the images of each run of w consecutive blocks shuffled
// together. Like epochOrder it is fixed by (seed, epoch).
func blockOrder(seed uint64, epoch, N, V int, starts []int, w int) (perm []int, views []uint8, wins []window) {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)))
	order := rng.Perm(len(starts))
	perm = make([]int, 0, N)
	for lo := 0; lo < len(order); lo += w {
		win := window{start: len(perm), blocks: order[lo:min(lo+w, len(order))]}
		first := len(perm)
		for _, b := range win.blocks {
			end := N
			if b+1 < len(starts) {
				end = starts[b+1]
			}
			for i := starts[b]; i < end; i++ {
				perm = append(perm, i)
			}
		}
		part := perm[first:]
		rng.Shuffle(len(part), func(i, j int) { part[i], part[j] = part[j], part[i] })
		wins = append(wins, win)
	}
	return perm, drawViews(rng, N, V), wins
}

// blocksOf is src's block starts, or blocks of fallbackBlock images.
func blocksOf(src Source) []int {
	if b, ok := src.(Blocked); ok {
		if s := b.Blocks(); len(s) > 0 {
			return s
		}
	}
	var s []int
	for i := 0; i < src.Len(); i += fallbackBlock {
		s = append(s, i)
	}
	return s
}

// orderPlan is one epoch's order and, for block orders, the windows to
// prefetch ahead of the batches that read them.
type orderPlan struct {
	perm  []int
	views []uint8
	wins  []window
	next  int // first window not yet prefetched
}

func (c Config) shuffle() string {
	if c.Shuffle == "" {
		return ShuffleGlobal
	}
	return c.Shuffle
}

func (c Config) shuffleWindow() int {
	if c.ShuffleWindow <= 0 {
		return DefaultShuffleWindow
	}
	return c.ShuffleWindow
}

func validShuffle(s string) error {
	switch s {
	case "", ShuffleGlobal, ShuffleBlock:
		return nil
	}
	return fmt.Errorf("tune: --shuffle %q: want %q or %q", s, ShuffleGlobal, ShuffleBlock)
}

// plan is epoch's order under cfg.
func (j *job) plan(epoch int) *orderPlan {
	N, V := j.in.Train.Len(), j.in.Train.Views()
	if j.cfg.shuffle() == ShuffleBlock {
		perm, views, wins := blockOrder(j.cfg.Seed, epoch, N, V, blocksOf(j.in.Train), j.cfg.shuffleWindow())
		return &orderPlan{perm: perm, views: views, wins: wins}
	}
	perm, views := epochOrder(j.cfg.Seed, epoch, N, V)
	return &orderPlan{perm: perm, views: views}
}

// prefetch starts reading the windows that order positions [lo,end) read,
// and the window after them (so that it is in memory when the batches reach
// it), when the source can. Windows before lo (a resumed epoch) are skipped.
func (p *orderPlan) prefetch(src Source, lo, end int) {
	pf, ok := src.(Prefetcher)
	if !ok || len(p.wins) == 0 {
		return
	}
	at := func(pos int) int { // the window holding position pos
		k := sort.Search(len(p.wins), func(k int) bool { return p.wins[k].start > pos })
		return max(k-1, 0)
	}
	p.next = max(p.next, at(lo))
	want := min(at(end-1)+2, len(p.wins))
	for ; p.next < want; p.next++ {
		pf.Prefetch(p.wins[p.next].blocks)
	}
}
