package clip

import "github.com/litcache/litcache/internal/backend"

// layerNorm is nn.LayerNorm over the last dim (eps LayerNormEps): gain g (C), bias b (C).
type layerNorm struct {
	g, b   backend.Tensor
	dg, db backend.Tensor
}

func (l *layerNorm) register(ps *paramSet, prefix string, width int) {
	ps.add(prefix+".weight", &l.g, &l.dg, width)
	ps.add(prefix+".bias", &l.b, &l.db, width)
}

// forward: out (N,C) = (x-mean)·rstd·g + b; mean, rstd (N) kept for backward when not nil.
func (l *layerNorm) forward(be backend.Backend, out, x, mean, rstd backend.Tensor) {
	be.LayerNorm(out, x, l.g, l.b, LayerNormEps, mean, rstd)
}

// backward: dx (N,C) += from dout (N,C), with the forward's x, mean and rstd; dg, db accumulate.
func (l *layerNorm) backward(be backend.Backend, dx, dout, x, mean, rstd backend.Tensor) {
	be.LayerNormBackward(dx, l.dg, l.db, dout, x, l.g, mean, rstd)
}
