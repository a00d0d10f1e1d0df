package cuda

import "fmt"

// Two-stage reductions over rows (lit.cu): column sums for bias and
// positional-embedding gradients, and the LayerNorm backward's gain and bias
// gradients. Each spreads the rows over G blocks that write one partial per
// column, then a small kernel adds the G partials: no thread loops over
// every row of its column alone and no two blocks add to one address.

// maxLNBackward is the widest row lit_ln_bwd handles (4 columns per thread,
// 1024 threads).
const maxLNBackward = 4096

// colsumBlocks is G for summing the columns of an (R,C) matrix: enough
// blocks to fill the GPU (about 4 per multiprocessor over the 256-column
// tiles), each taking at least 8 rows.
func (b *Backend) colsumBlocks(R, C int) int {
	tiles := (C + 255) / 256
	want := max(1, 4*max(b.dv.SMs, 1)/tiles)
	return max(1, min((R+7)/8, want))
}

// colsum adds the column sums of x (R,C) (float32, or bf16 when bf16in) to
// out (C) float32, with part (at least G·C floats) for the partials.
func (b *Backend) colsum(out, x uintptr, R, C, G int, part uintptr, bf16in bool) error {
	if R == 0 || C == 0 {
		return nil
	}
	l := launchConfig{grid: Dim3{X: uint32((C + 255) / 256), Y: uint32(G)}, block: Dim3{X: 256}, stream: b.dv.Stream}
	run := b.k.launchLitColsumF32
	if bf16in {
		run = b.k.launchLitColsumBF16
	}
	if err := run(l, part, x, int64(R), int32(C)); err != nil {
		return err
	}
	return b.k.launchLitColsumFinish(b.gridN(C), out, part, int32(G), int32(C))
}

// lnBackwardBlocks is G and the block width of lit_ln_bwd over N rows of C.
func (b *Backend) lnBackwardBlocks(N, C int) (G int, threads uint32) {
	if C > maxLNBackward {
		panic(fmt.Sprintf("cuda: LayerNorm backward over %d columns (at most %d)", C, maxLNBackward))
	}
	threads = uint32(min(max((C+3)/4+31, 32)/32*32, 1024))
	perSM := max(1, 2048/int(threads))
	return max(1, min(N, perSM*max(b.dv.SMs, 1))), threads
}

// lnBackward: dx (when not 0) += the LayerNorm input gradient, dgamma and
// dbeta (either may be 0) += their gradients, from dout and the forward's x,
// gamma and saved float32 mean and rstd; activations float32, or bf16 when
// bf16in. part holds at least G·2C floats.
func (b *Backend) lnBackward(dx, dgamma, dbeta, dout, x, gamma, mean, rstd uintptr, N, C, G int, threads uint32, part uintptr, bf16in bool) error {
	if N == 0 {
		return nil
	}
	l := launchConfig{grid: Dim3{X: uint32(G)}, block: Dim3{X: threads}, stream: b.dv.Stream}
	run := b.k.launchLitLnBwdF32
	if bf16in {
		run = b.k.launchLitLnBwdBF16
	}
	if err := run(l, dx, part, dout, x, gamma, mean, rstd, int64(N), int32(C)); err != nil {
		return err
	}
	if dgamma == 0 && dbeta == 0 {
		return nil
	}
	return b.k.launchLitColsum2Finish(b.gridN(C), dgamma, dbeta, part, int32(G), int32(C))
}
