package cuda

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
)

// maxFusedLayerNorm is the widest row add_layernorm stages in shared memory.
const maxFusedLayerNorm = 8192

// AddLayerNorm: sum = x + r[row mod period] (r (period, C)); out = LayerNorm(sum)
// over C with gamma, beta, eps — one pass instead of an Add and a LayerNorm.
// sum may be nil (the stream is not kept) or x (in place); period = rows of x
// for a plain residual, T for positional embeddings.
func (b *Backend) AddLayerNorm(sum, out, x, r, gamma, beta backend.Tensor, period int, eps float32) {
	defer guard("AddLayerNorm")
	N, C := rowsCols(x)
	if period <= 0 || r.Len() < period*C {
		panic(fmt.Sprintf("cuda: AddLayerNorm: r %v for period %d × %d", r.Shape(), period, C))
	}
	if b.opt.Unfused || C > maxFusedLayerNorm {
		s := sum
		if s == nil {
			s = b.scratch(N, C)
			defer b.Free(s)
		}
		must(b.k.launchAddPeriodic(b.gridN(N*C), ptr(s), ptr(x), ptr(r), int64(N), int32(C), int32(period)))
		must(b.k.launchLayernorm(b.gridRows(N, C), ptr(out), ptr(s), ptr(gamma), ptr(beta), 0, 0, int32(C), eps))
		return
	}
	must(b.k.launchAddLayernorm(b.gridRows(N, C), ptr(sum), ptr(out), ptr(x), ptr(r), ptr(gamma), ptr(beta), int32(C), int32(period), eps))
}
