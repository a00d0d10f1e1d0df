package cuda

import "testing"

// TestPadTokens: every T-long pitch of the GEMM attention becomes a multiple
// of 8 elements (16 bytes in bf16), and nothing larger than needed.
func TestPadTokens(t *testing.T) {
	for _, c := range [][2]int{{1, 8}, {8, 8}, {9, 16}, {77, 80}, {197, 200}, {257, 264}, {264, 264}} {
		if got := padTokens(c[0]); got != c[1] {
			t.Errorf("padTokens(%d) = %d, want %d", c[0], got, c[1])
		}
		Tp := padTokens(c[0])
		for _, D := range []int{4, 16, 64} {
			// scores (T, Tp) float32, probs (T, Tp) bf16, heads (Tp, D) bf16: pitches and batch strides
			for _, bytes := range []int{4 * Tp, 2 * Tp, 4 * c[0] * Tp, 2 * c[0] * Tp, 2 * Tp * D} {
				if bytes%16 != 0 {
					t.Errorf("T=%d D=%d: a stride of %d bytes is not 16-byte aligned", c[0], D, bytes)
				}
			}
		}
	}
}

// TestFlashGrid: one block per (batch, head) along x — 256·16 and even
// 10,000·8 fit, where y would stop at 65,535 — and per 64 query rows along y.
func TestFlashGrid(t *testing.T) {
	for _, c := range []struct{ B, T, H, x, y int }{{256, 257, 16, 4096, 5}, {10000, 77, 8, 80000, 2}, {1, 1, 1, 1, 1}, {2, 64, 3, 6, 1}, {2, 65, 3, 6, 2}} {
		g, blk := flashGrid(c.B, c.T, c.H)
		if int(g.X) != c.x || int(g.Y) != c.y || blk.X != 128 {
			t.Errorf("B=%d T=%d H=%d: grid %+v block %+v", c.B, c.T, c.H, g, blk)
		}
		if g.Y > 65535 {
			t.Errorf("grid y %d over the limit", g.Y)
		}
	}
}

// TestSizeClass: pool classes are powers of two up to 2 MiB and 2 MiB
// multiples above, never smaller than asked, and a slightly smaller batch
// reuses the larger one's buffers (best fit within a quarter).
func TestSizeClass(t *testing.T) {
	for _, c := range [][2]uint64{{1, 256}, {256, 256}, {257, 512}, {1000, 1024}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20},
		{2 << 20, 2 << 20}, {2<<20 + 1, 4 << 20}, {5 << 20, 6 << 20}, {100<<20 + 3, 102 << 20}} {
		if got := sizeClass(c[0]); got != c[1] {
			t.Errorf("sizeClass(%d) = %d, want %d", c[0], got, c[1])
		}
	}
	// the ViT-L/14 qkv buffer of a last batch of 250 images rides on the 256-image one
	var p pool
	p.put(Buffer{Ptr: 1, Bytes: sizeClass(256 * 257 * 3072 * 2)})
	if got := p.bestFit(sizeClass(250 * 257 * 3072 * 2)); got != sizeClass(256*257*3072*2) {
		t.Errorf("a 250-image buffer is served by class %d", got)
	}
	if got := p.bestFit(sizeClass(100 * 257 * 3072 * 2)); got != 0 {
		t.Errorf("a 100-image buffer must not take the 256-image one (%d)", got)
	}
}
