// Package backendtest holds op-by-op parity checks between two implementations
// of backend.Backend: every op of the interface runs on both with the same
// fresh random inputs, and the outputs are compared by relative error
// ‖got − ref‖ / ‖ref‖. The CPU tests run it CPU(OpenBLAS) against CPU(pure-Go
// GEMM); a GPU backend runs it against the CPU reference with its own tolerances.
package backendtest

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// Options tunes ParityWith.
type Options struct {
	// Tol is the largest relative error ‖got−ref‖/‖ref‖ accepted for any op
	// not listed in PerOp.
	Tol float64
	// PerOp overrides Tol by op name (the subtest's first path element, e.g.
	// "Gemm", "Attention", "AttentionBackward").
	PerOp map[string]float64
	// Seed seeds the random inputs (0 means 1).
	Seed int64
	// Skip names ops not to run, e.g. the backward ops for a backend whose
	// inference precision (bf16) does not support them.
	Skip []string
	// LogErrors logs every comparison's relative error, not only failures
	// (the GPU check reports the measured values).
	LogErrors bool
}

// BackwardOps names the ops that only training needs: the backward passes,
// AdamW and SumSquares.
var BackwardOps = []string{"LinearBackward", "LayerNormBackward", "AttentionBackward", "ActivationBackward",
	"AddPeriodicBackward", "EmbeddingBackward", "GatherRowsBackward", "L2NormalizeBackward", "AdamW", "SumSquares"}

// Parity runs every op of the interface on ref and got with fresh random
// inputs and fails t where an output differs by more than tol (relative).
func Parity(t *testing.T, ref, got backend.Backend, tol float64) {
	t.Helper()
	ParityWith(t, ref, got, Options{Tol: tol})
}

// ParityWith is Parity with per-op tolerances.
func ParityWith(t *testing.T, ref, got backend.Backend, opts Options) {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	for _, op := range ops {
		if slices.Contains(opts.Skip, op.name) {
			continue
		}
		t.Run(op.name, func(t *testing.T) {
			tol := opts.Tol
			if v, ok := opts.PerOp[op.name]; ok {
				tol = v
			}
			p := &pair{t: t, ref: ref, got: got, tol: tol, rng: rand.New(rand.NewSource(opts.Seed)), log: opts.LogErrors}
			op.run(p)
		})
	}
}

// OpNames lists the op names Parity checks, the keys of Options.PerOp.
func OpNames() []string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.name
	}
	return names
}

// pair holds the two backends under comparison and the random source.
type pair struct {
	t        *testing.T
	ref, got backend.Backend
	tol      float64
	rng      *rand.Rand
	log      bool
}

// both is one tensor living on both backends with the same contents.
type both struct {
	r, g backend.Tensor
	host []float32
}

func (p *pair) randn(shape ...int) both {
	n := 1
	for _, d := range shape {
		n *= d
	}
	h := make([]float32, n)
	for i := range h {
		h[i] = float32(p.rng.NormFloat64())
	}
	return p.from(h, shape...)
}

func (p *pair) uniform(lo, hi float64, shape ...int) both {
	b := p.randn(shape...)
	for i := range b.host {
		b.host[i] = float32(lo + (hi-lo)*p.rng.Float64())
	}
	return p.from(b.host, shape...)
}

func (p *pair) from(h []float32, shape ...int) both {
	return both{r: p.ref.FromFloat32(h, shape...), g: p.got.FromFloat32(h, shape...), host: h}
}

func (p *pair) zeros(shape ...int) both {
	return both{r: p.ref.Zeros(shape...), g: p.got.Zeros(shape...)}
}

// check compares b on the two backends.
func (p *pair) check(what string, b both) {
	p.t.Helper()
	r := p.ref.ToFloat32(b.r, nil)
	g := p.got.ToFloat32(b.g, nil)
	p.checkSlices(what, r, g)
}

func (p *pair) checkSlices(what string, r, g []float32) {
	p.t.Helper()
	if len(r) != len(g) {
		p.t.Errorf("%s: %d values from ref, %d from got", what, len(r), len(g))
		return
	}
	e, worst := RelErr(g, r)
	if p.log {
		p.t.Logf("%s: relative error %.3g (limit %.3g)", what, e, p.tol)
	}
	if e > p.tol || math.IsNaN(e) {
		p.t.Errorf("%s: relative error %.3g > %.3g (worst at %d: got %g, ref %g)", what, e, p.tol, worst, g[worst], r[worst])
	}
}

func (p *pair) checkScalar(what string, r, g float64) {
	p.t.Helper()
	if e := math.Abs(g-r) / math.Max(math.Abs(r), 1e-30); e > p.tol || math.IsNaN(e) {
		p.t.Errorf("%s: got %g, ref %g (relative error %.3g > %.3g)", what, g, r, e, p.tol)
	}
}

// RelErr returns ‖got−ref‖₂/‖ref‖₂ (the absolute norm when ref is all zero)
// and the index of the largest absolute difference.
func RelErr(got, ref []float32) (float64, int) {
	var num, den, worstD float64
	worst := 0
	for i := range ref {
		d := float64(got[i]) - float64(ref[i])
		num += d * d
		den += float64(ref[i]) * float64(ref[i])
		if ad := math.Abs(d); ad > worstD || math.IsNaN(ad) {
			worstD, worst = ad, i
		}
	}
	if den == 0 {
		return math.Sqrt(num), worst
	}
	return math.Sqrt(num / den), worst
}

type op struct {
	name string
	run  func(p *pair)
}

var acts = []backend.Act{backend.ActNone, backend.ActGELU, backend.ActQuickGELU}

// ops is every op of backend.Backend with its inputs. Shapes are small and
// deliberately not multiples of common block sizes, to reach the edge code.
var ops = []op{
	{"Memory", func(p *pair) {
		a := p.randn(3, 5)
		p.check("FromFloat32/ToFloat32", a)
		r2 := both{r: p.ref.Reshape(a.r, 5, 3), g: p.got.Reshape(a.g, 5, 3)}
		if s := r2.g.Shape(); len(s) != 2 || s[0] != 5 || s[1] != 3 || r2.g.Len() != 15 {
			p.t.Errorf("Reshape: shape %v len %d, want [5 3] 15", s, r2.g.Len())
		}
		c := p.zeros(15)
		p.ref.Copy(c.r, r2.r)
		p.got.Copy(c.g, r2.g)
		p.check("Copy", c)
		p.ref.Zero(a.r)
		p.got.Zero(a.g)
		p.check("Zero", a)
		if h := p.got.ToFloat32(a.g, nil); h[0] != 0 || h[14] != 0 {
			p.t.Errorf("Zero left %v", h)
		}
		p.ref.Free(c.r)
		p.got.Free(c.g)
		p.got.Free(nil)
	}},
	{"Gemm", func(p *pair) {
		for _, s := range []struct{ m, n, k int }{{1, 1, 1}, {7, 5, 3}, {37, 53, 29}, {50, 40, 400}, {3, 200, 17}} {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					a := p.randn(s.m, s.k)
					if ta {
						a = p.randn(s.k, s.m)
					}
					b := p.randn(s.k, s.n)
					if tb {
						b = p.randn(s.n, s.k)
					}
					for _, ab := range [][2]float32{{1, 0}, {0.5, 1}, {-2, 0.25}} {
						c := p.randn(s.m, s.n)
						p.ref.Gemm(ta, tb, ab[0], a.r, b.r, ab[1], c.r)
						p.got.Gemm(ta, tb, ab[0], a.g, b.g, ab[1], c.g)
						p.check(fmt.Sprintf("m%d n%d k%d transA %v transB %v alpha %g beta %g", s.m, s.n, s.k, ta, tb, ab[0], ab[1]), c)
					}
				}
			}
		}
	}},
	{"Linear", func(p *pair) {
		for _, act := range acts {
			for _, bias := range []bool{false, true} {
				x, w := p.randn(2, 19, 33), p.randn(45, 33)
				out := p.randn(2, 19, 45) // garbage that must be overwritten
				var br, bg backend.Tensor
				if bias {
					b := p.randn(45)
					br, bg = b.r, b.g
				}
				p.ref.Linear(out.r, x.r, w.r, br, act)
				p.got.Linear(out.g, x.g, w.g, bg, act)
				p.check(fmt.Sprintf("act %v bias %v", act, bias), out)
			}
		}
	}},
	{"LayerNorm", func(p *pair) {
		x, g, b := p.randn(23, 40), p.randn(40), p.randn(40)
		for i := range x.host { // an offset, as residual streams have
			x.host[i] += 3
		}
		x = p.from(x.host, 23, 40)
		out, mean, rstd := p.randn(23, 40), p.zeros(23), p.zeros(23)
		p.ref.LayerNorm(out.r, x.r, g.r, b.r, 1e-5, mean.r, rstd.r)
		p.got.LayerNorm(out.g, x.g, g.g, b.g, 1e-5, mean.g, rstd.g)
		p.check("out", out)
		p.check("mean", mean)
		p.check("rstd", rstd)
		out2 := p.zeros(23, 40)
		p.ref.LayerNorm(out2.r, x.r, g.r, b.r, 1e-5, nil, nil)
		p.got.LayerNorm(out2.g, x.g, g.g, b.g, 1e-5, nil, nil)
		p.check("out without statistics", out2)
	}},
	{"Attention", func(p *pair) {
		for _, causal := range []bool{false, true} {
			for _, s := range []struct{ B, T, H, D int }{{2, 13, 3, 8}, {1, 1, 2, 4}, {2, 50, 2, 16}} {
				C := s.H * s.D
				qkv := p.randn(s.B*s.T, 3*C)
				out, probs := p.randn(s.B*s.T, C), p.randn(s.B, s.H, s.T, s.T)
				p.ref.Attention(out.r, qkv.r, s.B, s.T, s.H, causal, probs.r)
				p.got.Attention(out.g, qkv.g, s.B, s.T, s.H, causal, probs.g)
				what := fmt.Sprintf("B%d T%d H%d D%d causal %v", s.B, s.T, s.H, s.D, causal)
				p.check(what+" out", out)
				p.check(what+" probs", probs)
				out2 := p.zeros(s.B*s.T, C)
				p.ref.Attention(out2.r, qkv.r, s.B, s.T, s.H, causal, nil)
				p.got.Attention(out2.g, qkv.g, s.B, s.T, s.H, causal, nil)
				p.check(what+" out without probs", out2)
			}
		}
	}},
	{"AttentionBias", func(p *pair) {
		// G = 1 (a bias shared by every entry, Swin without shift) and G = 3
		// (per-window bias and mask), with −100 entries as the shifted-window
		// mask has them; T = 13 runs the loop path, T = 49 (a 7×7 window) the GEMM one.
		for _, s := range []struct{ B, T, H, D, G int }{{3, 13, 2, 8, 1}, {6, 13, 3, 4, 3}, {4, 49, 2, 16, 2}} {
			C := s.H * s.D
			qkv := p.randn(s.B*s.T, 3*C)
			bias := p.randn(s.G, s.H, s.T, s.T)
			for i := range bias.host {
				if i%7 == 3 {
					bias.host[i] = -100
				}
			}
			bias = p.from(bias.host, s.G, s.H, s.T, s.T)
			out, probs := p.randn(s.B*s.T, C), p.randn(s.B, s.H, s.T, s.T)
			p.ref.AttentionBias(out.r, qkv.r, bias.r, s.B, s.T, s.H, probs.r)
			p.got.AttentionBias(out.g, qkv.g, bias.g, s.B, s.T, s.H, probs.g)
			what := fmt.Sprintf("B%d T%d H%d D%d G%d", s.B, s.T, s.H, s.D, s.G)
			p.check(what+" out", out)
			p.check(what+" probs", probs)
			out2 := p.zeros(s.B*s.T, C)
			p.ref.AttentionBias(out2.r, qkv.r, bias.r, s.B, s.T, s.H, nil)
			p.got.AttentionBias(out2.g, qkv.g, bias.g, s.B, s.T, s.H, nil)
			p.check(what+" out without probs", out2)
		}
	}},
	{"SwiGLU", func(p *pair) {
		x, out := p.uniform(-8, 8, 2, 7, 2*37), p.randn(2, 7, 37)
		p.ref.SwiGLU(out.r, x.r)
		p.got.SwiGLU(out.g, x.g)
		p.check("out", out)
	}},
	{"Activation", func(p *pair) {
		for _, act := range acts {
			x := p.uniform(-6, 6, 9, 31)
			out := p.randn(9, 31)
			p.ref.Activation(out.r, x.r, act)
			p.got.Activation(out.g, x.g, act)
			p.check(act.String(), out)
			p.ref.Activation(x.r, x.r, act)
			p.got.Activation(x.g, x.g, act)
			p.check(act.String()+" in place", x)
		}
	}},
	{"Add", func(p *pair) {
		a, b, out := p.randn(11, 7), p.randn(11, 7), p.randn(11, 7)
		p.ref.Add(out.r, a.r, b.r)
		p.got.Add(out.g, a.g, b.g)
		p.check("out", out)
		p.ref.Add(a.r, a.r, b.r)
		p.got.Add(a.g, a.g, b.g)
		p.check("in place", a)
	}},
	{"AddPeriodic", func(p *pair) {
		x, pos, out := p.randn(3*5, 12), p.randn(8, 12), p.randn(3*5, 12)
		p.ref.AddPeriodic(out.r, x.r, pos.r, 5)
		p.got.AddPeriodic(out.g, x.g, pos.g, 5)
		p.check("out", out)
	}},
	{"Embedding", func(p *pair) {
		table := p.randn(17, 6)
		ids := []int32{0, 16, 3, 3, 9}
		out := p.randn(5, 6)
		p.ref.Embedding(out.r, table.r, ids)
		p.got.Embedding(out.g, table.g, ids)
		p.check("out", out)
	}},
	{"GatherRows", func(p *pair) {
		x := p.randn(10, 9)
		rows := []int{9, 0, 4, 4}
		out := p.randn(4, 9)
		p.ref.GatherRows(out.r, x.r, rows)
		p.got.GatherRows(out.g, x.g, rows)
		p.check("out", out)
	}},
	{"L2Normalize", func(p *pair) {
		x, out := p.randn(7, 21), p.randn(7, 21)
		p.ref.L2Normalize(out.r, x.r)
		p.got.L2Normalize(out.g, x.g)
		p.check("out", out)
		p.ref.L2Normalize(x.r, x.r)
		p.got.L2Normalize(x.g, x.g)
		p.check("in place", x)
	}},
	{"Patchify", func(p *pair) {
		px := p.randn(2, 3, 12, 12)
		out := p.randn(2*9, 3*4*4)
		p.ref.Patchify(out.r, px.r, 2, 12, 4)
		p.got.Patchify(out.g, px.g, 2, 12, 4)
		p.check("out", out)
	}},
	{"PrependRow", func(p *pair) {
		x, tok, out := p.randn(3, 4, 5), p.randn(5), p.randn(3, 5, 5)
		p.ref.PrependRow(out.r, x.r, tok.r, 3, 4)
		p.got.PrependRow(out.g, x.g, tok.g, 3, 4)
		p.check("out", out)
	}},
	{"Scale", func(p *pair) {
		x := p.randn(6, 13)
		p.ref.Scale(x.r, -0.37)
		p.got.Scale(x.g, -0.37)
		p.check("out", x)
	}},
	{"CrossEntropy", func(p *pair) {
		logits := p.randn(9, 9)
		for i := range logits.host {
			logits.host[i] *= 5
		}
		logits = p.from(logits.host, 9, 9)
		targets := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8}
		d := p.randn(9, 9)
		lr := p.ref.CrossEntropy(logits.r, targets, d.r, 0.5)
		lg := p.got.CrossEntropy(logits.g, targets, d.g, 0.5)
		p.checkScalar("loss", float64(lr), float64(lg))
		p.check("dlogits", d)
		lr = p.ref.CrossEntropy(logits.r, []int32{8, 7, 6, 5, 4, 3, 2, 1, 0}, nil, 1)
		lg = p.got.CrossEntropy(logits.g, []int32{8, 7, 6, 5, 4, 3, 2, 1, 0}, nil, 1)
		p.checkScalar("loss without gradient", float64(lr), float64(lg))
	}},
	{"LinearBackward", func(p *pair) {
		x, w, dout := p.randn(29, 33), p.randn(45, 33), p.randn(29, 45)
		dx, dw, db := p.randn(29, 33), p.randn(45, 33), p.randn(45)
		p.ref.LinearBackward(dx.r, dw.r, db.r, dout.r, x.r, w.r)
		p.got.LinearBackward(dx.g, dw.g, db.g, dout.g, x.g, w.g)
		p.check("dx", dx)
		p.check("dw", dw)
		p.check("dbias", db)
		dw2 := p.randn(45, 33)
		p.ref.LinearBackward(nil, dw2.r, nil, dout.r, x.r, w.r)
		p.got.LinearBackward(nil, dw2.g, nil, dout.g, x.g, w.g)
		p.check("dw alone", dw2)
		// many rows and more than one 256-column tile: a reduction over several blocks
		x3, w3, dout3 := p.randn(301, 7), p.randn(300, 7), p.randn(301, 300)
		db3 := p.randn(300)
		p.ref.LinearBackward(nil, nil, db3.r, dout3.r, x3.r, w3.r)
		p.got.LinearBackward(nil, nil, db3.g, dout3.g, x3.g, w3.g)
		p.check("dbias over 301 rows", db3)
	}},
	{"LayerNormBackward", func(p *pair) {
		x, g, b, dout := p.randn(23, 40), p.randn(40), p.randn(40), p.randn(23, 40)
		out, mean, rstd := p.zeros(23, 40), p.zeros(23), p.zeros(23)
		// Both backends get the same saved statistics (the ref's).
		p.ref.LayerNorm(out.r, x.r, g.r, b.r, 1e-5, mean.r, rstd.r)
		mean = p.from(p.ref.ToFloat32(mean.r, nil), 23)
		rstd = p.from(p.ref.ToFloat32(rstd.r, nil), 23)
		dx, dg, db := p.randn(23, 40), p.randn(40), p.randn(40)
		p.ref.LayerNormBackward(dx.r, dg.r, db.r, dout.r, x.r, g.r, mean.r, rstd.r)
		p.got.LayerNormBackward(dx.g, dg.g, db.g, dout.g, x.g, g.g, mean.g, rstd.g)
		p.check("dx", dx)
		p.check("dgamma", dg)
		p.check("dbeta", db)
		// rows shared by several blocks, several columns per thread, gradients asked for alone
		for _, s := range []struct{ N, C int }{{1031, 96}, {37, 520}} {
			x, g, b, dout := p.randn(s.N, s.C), p.randn(s.C), p.randn(s.C), p.randn(s.N, s.C)
			out, mean, rstd := p.zeros(s.N, s.C), p.zeros(s.N), p.zeros(s.N)
			p.ref.LayerNorm(out.r, x.r, g.r, b.r, 1e-5, mean.r, rstd.r)
			mean = p.from(p.ref.ToFloat32(mean.r, nil), s.N)
			rstd = p.from(p.ref.ToFloat32(rstd.r, nil), s.N)
			dx, dg, db := p.randn(s.N, s.C), p.randn(s.C), p.randn(s.C)
			p.ref.LayerNormBackward(dx.r, dg.r, db.r, dout.r, x.r, g.r, mean.r, rstd.r)
			p.got.LayerNormBackward(dx.g, dg.g, db.g, dout.g, x.g, g.g, mean.g, rstd.g)
			what := fmt.Sprintf("%d×%d ", s.N, s.C)
			p.check(what+"dx", dx)
			p.check(what+"dgamma", dg)
			p.check(what+"dbeta", db)
			dg2 := p.randn(s.C)
			p.ref.LayerNormBackward(nil, dg2.r, nil, dout.r, x.r, g.r, mean.r, rstd.r)
			p.got.LayerNormBackward(nil, dg2.g, nil, dout.g, x.g, g.g, mean.g, rstd.g)
			p.check(what+"dgamma alone", dg2)
		}
	}},
	{"AttentionBackward", func(p *pair) {
		for _, causal := range []bool{false, true} {
			for _, s := range []struct{ B, T, H, D int }{{2, 13, 3, 8}, {2, 50, 2, 16}} {
				C := s.H * s.D
				qkv, dout := p.randn(s.B*s.T, 3*C), p.randn(s.B*s.T, C)
				out, probs := p.zeros(s.B*s.T, C), p.zeros(s.B, s.H, s.T, s.T)
				p.ref.Attention(out.r, qkv.r, s.B, s.T, s.H, causal, probs.r)
				probs = p.from(p.ref.ToFloat32(probs.r, nil), s.B, s.H, s.T, s.T)
				dqkv := p.randn(s.B*s.T, 3*C)
				p.ref.AttentionBackward(dqkv.r, dout.r, qkv.r, probs.r, s.B, s.T, s.H, causal)
				p.got.AttentionBackward(dqkv.g, dout.g, qkv.g, probs.g, s.B, s.T, s.H, causal)
				p.check(fmt.Sprintf("B%d T%d H%d D%d causal %v dqkv", s.B, s.T, s.H, s.D, causal), dqkv)
			}
		}
	}},
	{"ActivationBackward", func(p *pair) {
		for _, act := range acts {
			x, dout, dx := p.uniform(-6, 6, 9, 31), p.randn(9, 31), p.randn(9, 31)
			p.ref.ActivationBackward(dx.r, dout.r, x.r, act)
			p.got.ActivationBackward(dx.g, dout.g, x.g, act)
			p.check(act.String(), dx)
		}
	}},
	{"AddPeriodicBackward", func(p *pair) {
		dout, dp := p.randn(3*5, 12), p.randn(8, 12)
		p.ref.AddPeriodicBackward(dp.r, dout.r, 5)
		p.got.AddPeriodicBackward(dp.g, dout.g, 5)
		p.check("dp", dp)
		// many periods: a column reduction over several blocks
		dout3, dp3 := p.randn(64*7, 40), p.randn(7, 40)
		p.ref.AddPeriodicBackward(dp3.r, dout3.r, 7)
		p.got.AddPeriodicBackward(dp3.g, dout3.g, 7)
		p.check("dp, 64 periods", dp3)
	}},
	{"EmbeddingBackward", func(p *pair) {
		dt, dout := p.randn(17, 6), p.randn(5, 6)
		ids := []int32{0, 16, 3, 3, 9}
		p.ref.EmbeddingBackward(dt.r, dout.r, ids)
		p.got.EmbeddingBackward(dt.g, dout.g, ids)
		p.check("dtable", dt)
	}},
	{"GatherRowsBackward", func(p *pair) {
		dx, dout := p.randn(10, 9), p.randn(4, 9)
		rows := []int{9, 0, 4, 4}
		p.ref.GatherRowsBackward(dx.r, dout.r, rows)
		p.got.GatherRowsBackward(dx.g, dout.g, rows)
		p.check("dx", dx)
	}},
	{"L2NormalizeBackward", func(p *pair) {
		x, dout, dx := p.randn(7, 21), p.randn(7, 21), p.randn(7, 21)
		p.ref.L2NormalizeBackward(dx.r, dout.r, x.r)
		p.got.L2NormalizeBackward(dx.g, dout.g, x.g)
		p.check("dx", dx)
	}},
	{"AdamW", func(p *pair) {
		param, grad := p.randn(13, 11), p.randn(13, 11)
		m := p.randn(13, 11)
		v := p.uniform(0, 2, 13, 11)
		for _, step := range []int{1, 2, 10} {
			p.ref.AdamW(param.r, grad.r, m.r, v.r, 1e-3, 0.9, 0.98, 1e-6, 0.2, step)
			p.got.AdamW(param.g, grad.g, m.g, v.g, 1e-3, 0.9, 0.98, 1e-6, 0.2, step)
			p.check(fmt.Sprintf("step %d param", step), param)
			p.check(fmt.Sprintf("step %d m", step), m)
			p.check(fmt.Sprintf("step %d v", step), v)
		}
	}},
	{"SumSquares", func(p *pair) {
		x := p.randn(101, 37)
		p.checkScalar("sum", p.ref.SumSquares(x.r), p.got.SumSquares(x.g))
	}},
}
