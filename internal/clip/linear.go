package clip

import "github.com/litcache/litcache/internal/backend"

// linear is nn.Linear: w (O,I), optional bias b (O); dw, db their gradients.
type linear struct {
	w, b   backend.Tensor
	dw, db backend.Tensor
}

// register names the weight prefix.weight and the bias prefix.bias (none when bias is false).
func (l *linear) register(ps *paramSet, prefix string, out, in int, bias bool) {
	b := ""
	if bias {
		b = prefix + ".bias"
	}
	l.registerNames(ps, prefix+".weight", b, out, in)
}

// registerNames names the weight and the bias explicitly ("" = no bias).
func (l *linear) registerNames(ps *paramSet, weight, bias string, out, in int) {
	ps.add(weight, &l.w, &l.dw, out, in)
	if bias != "" {
		ps.add(bias, &l.b, &l.db, out)
	}
}

// forward: out (N,O) = act(x (N,I) · wᵀ + b).
func (l *linear) forward(be backend.Backend, out, x backend.Tensor, act backend.Act) {
	be.Linear(out, x, l.w, l.b, act)
}

// backward (no activation): dx (N,I) += dout·w (skipped when dx is nil); dw, db += from dout (N,O) and x.
func (l *linear) backward(be backend.Backend, dx, dout, x backend.Tensor) {
	be.LinearBackward(dx, l.dw, l.db, dout, x, l.w)
}
