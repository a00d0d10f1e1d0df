package backend_test

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// Backward ops against central finite differences of the float64 forward
// references (reference_test.go). Every gradient starts from random values so
// that accumulation (+=) is checked too: the test subtracts the start value.

func TestLinearBackwardGrad(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.Name(), func(t *testing.T) {
			rng := rand.New(rand.NewSource(10))
			const N, I, O = 7, 9, 5
			x, w, b, dout := randVec(rng, N, I), randVec(rng, O, I), randVec(rng, O), randVec(rng, N, O)
			dx0, dw0, db0 := randVec(rng, N, I), randVec(rng, O, I), randVec(rng, O)
			dx, dw, db := dx0.t(be), dw0.t(be), db0.t(be)
			be.LinearBackward(dx, dw, db, dout.t(be), x.t(be), w.t(be))
			checkClose(t, "dx", accumulated(backend.Data(dx), dx0),
				numGrad(func(v []float64) []float64 { return linear64(v, w.f64, b.f64, N, I, O, backend.ActNone) }, x.f64, dout.f64), bwdTol)
			checkClose(t, "dw", accumulated(backend.Data(dw), dw0),
				numGrad(func(v []float64) []float64 { return linear64(x.f64, v, b.f64, N, I, O, backend.ActNone) }, w.f64, dout.f64), bwdTol)
			checkClose(t, "dbias", accumulated(backend.Data(db), db0),
				numGrad(func(v []float64) []float64 { return linear64(x.f64, w.f64, v, N, I, O, backend.ActNone) }, b.f64, dout.f64), bwdTol)
		})
	}
}

func TestLayerNormBackwardGrad(t *testing.T) {
	be := backend.NewCPU()
	rng := rand.New(rand.NewSource(11))
	const N, C = 6, 20
	x, g, b, dout := randVec(rng, N, C), randVec(rng, C), randVec(rng, C), randVec(rng, N, C)
	out, mean, rstd := be.Zeros(N, C), be.Zeros(N), be.Zeros(N)
	be.LayerNorm(out, x.t(be), g.t(be), b.t(be), 1e-5, mean, rstd)
	dx0, dg0, db0 := randVec(rng, N, C), randVec(rng, C), randVec(rng, C)
	dx, dg, db := dx0.t(be), dg0.t(be), db0.t(be)
	be.LayerNormBackward(dx, dg, db, dout.t(be), x.t(be), g.t(be), mean, rstd)
	checkClose(t, "dx", accumulated(backend.Data(dx), dx0),
		numGrad(func(v []float64) []float64 { return layerNorm64(v, g.f64, b.f64, N, C, 1e-5) }, x.f64, dout.f64), bwdTol)
	checkClose(t, "dgamma", accumulated(backend.Data(dg), dg0),
		numGrad(func(v []float64) []float64 { return layerNorm64(x.f64, v, b.f64, N, C, 1e-5) }, g.f64, dout.f64), bwdTol)
	checkClose(t, "dbeta", accumulated(backend.Data(db), db0),
		numGrad(func(v []float64) []float64 { return layerNorm64(x.f64, g.f64, v, N, C, 1e-5) }, b.f64, dout.f64), bwdTol)
}

func TestAttentionBackwardGrad(t *testing.T) {
	for _, causal := range []bool{false, true} {
		for _, s := range []struct{ B, T, H, D int }{{2, 5, 2, 3}, {1, 9, 1, 4}, {1, 20, 2, 2}} {
			rng := rand.New(rand.NewSource(12))
			C := s.H * s.D
			qkv, dout, d0 := randVec(rng, s.B*s.T, 3*C), randVec(rng, s.B*s.T, C), randVec(rng, s.B*s.T, 3*C)
			// One numerical gradient for every backend and both ways of getting probs.
			want := numGrad(func(v []float64) []float64 {
				o, _ := attention64(v, s.B, s.T, s.H, causal)
				return o
			}, qkv.f64, dout.f64)
			for _, be := range backends() {
				for _, saved := range []bool{true, false} {
					name := fmt.Sprintf("%s/%s/B%d_T%d_H%d_D%d_causal%v_savedProbs%v", be.Name(), be.GemmKernel(), s.B, s.T, s.H, s.D, causal, saved)
					t.Run(name, func(t *testing.T) {
						var probs backend.Tensor
						if saved {
							probs = be.Zeros(s.B, s.H, s.T, s.T)
							be.Attention(be.Zeros(s.B*s.T, C), qkv.t(be), s.B, s.T, s.H, causal, probs)
						}
						dqkv := d0.t(be)
						be.AttentionBackward(dqkv, dout.t(be), qkv.t(be), probs, s.B, s.T, s.H, causal)
						checkClose(t, "dqkv", accumulated(backend.Data(dqkv), d0), want, bwdTol)
					})
				}
			}
		}
	}
}

func TestActivationBackwardGrad(t *testing.T) {
	be := backend.NewCPU()
	for _, act := range []backend.Act{backend.ActNone, backend.ActGELU, backend.ActQuickGELU} {
		t.Run(act.String(), func(t *testing.T) {
			rng := rand.New(rand.NewSource(13))
			x, dout, d0 := randVec(rng, 4, 25), randVec(rng, 4, 25), randVec(rng, 4, 25)
			for i := range x.f32 { // cover the tails too
				x.f32[i] *= 3
				x.f64[i] = float64(x.f32[i])
			}
			dx := d0.t(be)
			be.ActivationBackward(dx, dout.t(be), x.t(be), act)
			checkClose(t, "dx", accumulated(backend.Data(dx), d0), numGrad(func(v []float64) []float64 {
				o := make([]float64, len(v))
				for i, e := range v {
					o[i] = act64(e, act)
				}
				return o
			}, x.f64, dout.f64), bwdTol)
		})
	}
}

func TestGatherBackwardGrads(t *testing.T) {
	be := backend.NewCPU()
	rng := rand.New(rand.NewSource(14))
	t.Run("AddPeriodicBackward", func(t *testing.T) {
		const B, T, Tp, C = 3, 4, 6, 5
		x, p, dout, d0 := randVec(rng, B*T, C), randVec(rng, Tp, C), randVec(rng, B*T, C), randVec(rng, Tp, C)
		dp := d0.t(be)
		be.AddPeriodicBackward(dp, dout.t(be), T)
		checkClose(t, "dp", accumulated(backend.Data(dp), d0), numGrad(func(v []float64) []float64 {
			o := append([]float64(nil), x.f64...)
			for r := 0; r < B*T; r++ {
				for c := 0; c < C; c++ {
					o[r*C+c] += v[(r%T)*C+c]
				}
			}
			return o
		}, p.f64, dout.f64), bwdTol)
	})
	t.Run("EmbeddingBackward", func(t *testing.T) {
		const V, C = 7, 4
		ids := []int32{6, 0, 2, 2, 5, 2}
		table, dout, d0 := randVec(rng, V, C), randVec(rng, len(ids), C), randVec(rng, V, C)
		dt := d0.t(be)
		be.EmbeddingBackward(dt, dout.t(be), ids)
		checkClose(t, "dtable", accumulated(backend.Data(dt), d0), numGrad(func(v []float64) []float64 {
			o := make([]float64, len(ids)*C)
			for n, id := range ids {
				copy(o[n*C:], v[int(id)*C:int(id)*C+C])
			}
			return o
		}, table.f64, dout.f64), bwdTol)
	})
	t.Run("GatherRowsBackward", func(t *testing.T) {
		const N, C = 6, 3
		rows := []int{5, 5, 0, 3}
		x, dout, d0 := randVec(rng, N, C), randVec(rng, len(rows), C), randVec(rng, N, C)
		dx := d0.t(be)
		be.GatherRowsBackward(dx, dout.t(be), rows)
		checkClose(t, "dx", accumulated(backend.Data(dx), d0), numGrad(func(v []float64) []float64 {
			o := make([]float64, len(rows)*C)
			for i, r := range rows {
				copy(o[i*C:], v[r*C:r*C+C])
			}
			return o
		}, x.f64, dout.f64), bwdTol)
	})
	t.Run("L2NormalizeBackward", func(t *testing.T) {
		const N, C = 5, 8
		x, dout, d0 := randVec(rng, N, C), randVec(rng, N, C), randVec(rng, N, C)
		dx := d0.t(be)
		be.L2NormalizeBackward(dx, dout.t(be), x.t(be))
		checkClose(t, "dx", accumulated(backend.Data(dx), d0),
			numGrad(func(v []float64) []float64 { return l2norm64(v, N, C) }, x.f64, dout.f64), bwdTol)
	})
	t.Run("CrossEntropyGradient", func(t *testing.T) {
		const N, M = 5, 7
		targets := []int32{6, 0, 3, 3, 1}
		logits, d0 := randVec(rng, N, M), randVec(rng, N, M)
		dl := d0.t(be)
		loss := be.CrossEntropy(logits.t(be), targets, dl, 0.5)
		checkClose(t, "loss", []float32{loss}, []float64{crossEntropy64(logits.f64, targets, N, M)}, fwdTol)
		checkClose(t, "dlogits", accumulated(backend.Data(dl), d0), numGrad(func(v []float64) []float64 {
			return []float64{0.5 * crossEntropy64(v, targets, N, M)}
		}, logits.f64, []float64{1}), bwdTol)
	})
}
