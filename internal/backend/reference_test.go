package backend_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
)

// Every op of the CPU backend against a naive float64 reference, and every
// backward op against central finite differences of that float64 reference
// (step 1e-6, so the numerical gradient is good to ~1e-9 relative).
//
// Tolerances (relative, ‖got−ref‖/‖ref‖): the backend computes in float32
// (eps 6e-8); sums of up to a few hundred terms leave ~1e-6. Forward 2e-6 /
// backward 2e-5 give a margin of ~10× over what is measured while a wrong
// index, sign or missing term shows as an error of order 1e-2..1.
const (
	fwdTol = 2e-6
	bwdTol = 2e-5
)

// backends are the configurations every reference test runs on.
func backends() []*backend.CPU {
	// OpenBLAS when present (else the default Go path), then every Go kernel.
	return append([]*backend.CPU{backend.NewCPUWith(backend.CPUOptions{PreferBLAS: true})}, backend.NewCPUEachKernel(2)...)
}

// vec is a host vector: float32 values given to the backend and the same
// values widened to float64 for the reference.
type vec struct {
	f32   []float32
	f64   []float64
	shape []int
}

func randVec(rng *rand.Rand, shape ...int) vec {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := vec{f32: make([]float32, n), f64: make([]float64, n), shape: shape}
	for i := range v.f32 {
		v.f32[i] = float32(rng.NormFloat64())
		v.f64[i] = float64(v.f32[i])
	}
	return v
}

func (v vec) t(be backend.Backend) backend.Tensor { return be.FromFloat32(v.f32, v.shape...) }

func checkClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	w32 := make([]float32, len(want))
	var num, den float64
	for i := range want {
		w32[i] = float32(want[i])
		d := float64(got[i]) - want[i]
		num += d * d
		den += want[i] * want[i]
	}
	e := math.Sqrt(num / math.Max(den, 1e-300))
	if e > tol || math.IsNaN(e) {
		_, worst := backendtest.RelErr(got, w32)
		t.Errorf("%s: relative error %.3g > %.3g (worst at %d: got %g, want %g)", what, e, tol, worst, got[worst], want[worst])
	}
}

// numGrad returns d(Σ f(x)·dout)/dx by central differences in float64.
func numGrad(f func(x []float64) []float64, x, dout []float64) []float64 {
	const h = 1e-6
	g := make([]float64, len(x))
	xx := append([]float64(nil), x...)
	for i := range xx {
		orig := xx[i]
		xx[i] = orig + h
		fp := f(xx)
		xx[i] = orig - h
		fm := f(xx)
		xx[i] = orig
		var s float64
		for j := range fp {
			s += (fp[j] - fm[j]) * dout[j]
		}
		g[i] = s / (2 * h)
	}
	return g
}

// accumulated returns the gradient a backward op added to a start value.
func accumulated(after []float32, before vec) []float32 {
	out := make([]float32, len(after))
	for i := range after {
		out[i] = after[i] - before.f32[i]
	}
	return out
}

// ---- float64 references ----

func act64(x float64, act backend.Act) float64 {
	switch act {
	case backend.ActGELU:
		return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
	case backend.ActQuickGELU:
		return x / (1 + math.Exp(-1.702*x))
	}
	return x
}

// gemm64: op(a) (M,K) · op(b) (K,N).
func gemm64(ta, tb bool, m, n, k int, a, b []float64) []float64 {
	c := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				av, bv := a[i*k+p], b[p*n+j]
				if ta {
					av = a[p*m+i]
				}
				if tb {
					bv = b[j*k+p]
				}
				s += av * bv
			}
			c[i*n+j] = s
		}
	}
	return c
}

func linear64(x, w, bias []float64, n, in, o int, act backend.Act) []float64 {
	y := gemm64(false, true, n, o, in, x, w)
	for r := 0; r < n; r++ {
		for j := 0; j < o; j++ {
			if bias != nil {
				y[r*o+j] += bias[j]
			}
			y[r*o+j] = act64(y[r*o+j], act)
		}
	}
	return y
}

func layerNorm64(x, g, b []float64, n, c int, eps float64) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < n; r++ {
		xs := x[r*c : r*c+c]
		var mu, vr float64
		for _, v := range xs {
			mu += v
		}
		mu /= float64(c)
		for _, v := range xs {
			vr += (v - mu) * (v - mu)
		}
		vr /= float64(c)
		for i, v := range xs {
			out[r*c+i] = (v-mu)/math.Sqrt(vr+eps)*g[i] + b[i]
		}
	}
	return out
}

// attention64 returns out (B·T,C) and probs (B,H,T,T).
func attention64(qkv []float64, B, T, H int, causal bool) (out, probs []float64) {
	return attentionRef64(qkv, nil, B, T, H, causal)
}

// attentionRef64 is attention in float64: scores q·kᵀ/√D, plus
// bias[b mod G] (G,H,T,T) when bias is not nil, future positions masked when
// causal, row softmax, times v. Returns out (B·T,C) and probs (B,H,T,T).
func attentionRef64(qkv, bias []float64, B, T, H int, causal bool) (out, probs []float64) {
	C := len(qkv) / (B * T * 3)
	D := C / H
	G := max(1, len(bias)/(H*T*T))
	out = make([]float64, B*T*C)
	probs = make([]float64, B*H*T*T)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			for i := 0; i < T; i++ {
				s := make([]float64, T)
				mx := math.Inf(-1)
				for j := 0; j < T; j++ {
					if causal && j > i {
						s[j] = math.Inf(-1)
						continue
					}
					for d := 0; d < D; d++ {
						s[j] += qkv[(b*T+i)*3*C+h*D+d] * qkv[(b*T+j)*3*C+C+h*D+d]
					}
					s[j] /= math.Sqrt(float64(D))
					if bias != nil {
						s[j] += bias[(((b%G)*H+h)*T+i)*T+j]
					}
					mx = math.Max(mx, s[j])
				}
				var sum float64
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := range s {
					p := s[j] / sum
					probs[((b*H+h)*T+i)*T+j] = p
					for d := 0; d < D; d++ {
						out[(b*T+i)*C+h*D+d] += p * qkv[(b*T+j)*3*C+2*C+h*D+d]
					}
				}
			}
		}
	}
	return out, probs
}

func l2norm64(x []float64, n, c int) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < n; r++ {
		var ss float64
		for _, v := range x[r*c : r*c+c] {
			ss += v * v
		}
		nrm := math.Max(math.Sqrt(ss), 1e-12)
		for i, v := range x[r*c : r*c+c] {
			out[r*c+i] = v / nrm
		}
	}
	return out
}

func crossEntropy64(logits []float64, targets []int32, n, m int) float64 {
	var total float64
	for r := 0; r < n; r++ {
		xs := logits[r*m : r*m+m]
		mx := math.Inf(-1)
		for _, v := range xs {
			mx = math.Max(mx, v)
		}
		var s float64
		for _, v := range xs {
			s += math.Exp(v - mx)
		}
		total += mx + math.Log(s) - xs[targets[r]]
	}
	return total / float64(n)
}

// ---- forward ----

// The shapes reach the OpenBLAS path's row split (67×131×40) and column
// split (9×300×120) as well as the pure-Go GEMM's edges and K blocks.
func TestGemmReference(t *testing.T) {
	for _, be := range backends() {
		rng := rand.New(rand.NewSource(2))
		for _, s := range []struct{ m, n, k int }{{1, 1, 1}, {5, 3, 7}, {33, 65, 47}, {70, 9, 800}, {67, 131, 40}, {9, 300, 120}} {
			for _, ta := range []bool{false, true} {
				for _, tb := range []bool{false, true} {
					name := fmt.Sprintf("%s/m%d_n%d_k%d_ta%v_tb%v", be.Name(), s.m, s.n, s.k, ta, tb)
					t.Run(name, func(t *testing.T) {
						a, b, c := randVec(rng, s.m, s.k), randVec(rng, s.k, s.n), randVec(rng, s.m, s.n)
						if ta {
							a.shape = []int{s.k, s.m}
						}
						if tb {
							b.shape = []int{s.n, s.k}
						}
						ct := c.t(be)
						be.Gemm(ta, tb, 0.75, a.t(be), b.t(be), -0.5, ct)
						want := gemm64(ta, tb, s.m, s.n, s.k, a.f64, b.f64)
						for i := range want {
							want[i] = 0.75*want[i] - 0.5*c.f64[i]
						}
						// Per-element sums of up to 800 float32 products (three K blocks).
						checkClose(t, "c", backend.Data(ct), want, 1e-5)
					})
				}
			}
		}
	}
}

func TestLinearReference(t *testing.T) {
	// (N, I, O, activation): the last two span several column panels
	// (NC = 4096) and several K blocks (KC = 384), where the fused
	// bias+activation must wait for the last block; N = 2 also takes the
	// column-split path (fewer row blocks than threads).
	cases := []struct {
		N, I, O int
		act     backend.Act
	}{
		{22, 40, 24, backend.ActNone}, {22, 40, 24, backend.ActGELU}, {22, 40, 24, backend.ActQuickGELU},
		{2, 20, 4100, backend.ActGELU}, {13, 600, 37, backend.ActQuickGELU},
	}
	for _, tc := range cases {
		N, I, O := tc.N, tc.I, tc.O
		rng := rand.New(rand.NewSource(3))
		x, w, b := randVec(rng, N, I), randVec(rng, O, I), randVec(rng, O)
		// The float64 references are computed once for every backend.
		want := linear64(x.f64, w.f64, b.f64, N, I, O, tc.act)
		wantNoBias := linear64(x.f64, w.f64, nil, N, I, O, tc.act)
		for _, be := range backends() {
			t.Run(fmt.Sprintf("%s/%s/%s/N%d_I%d_O%d", be.Name(), be.GemmKernel(), tc.act, N, I, O), func(t *testing.T) {
				out := be.FromFloat32(nanSlice(N*O), N, O) // beta = 0: NaNs must not survive
				be.Linear(out, x.t(be), w.t(be), b.t(be), tc.act)
				checkClose(t, "out", backend.Data(out), want, 1e-5)
				be.Linear(out, x.t(be), w.t(be), nil, tc.act)
				checkClose(t, "out without bias", backend.Data(out), wantNoBias, 1e-5)
			})
		}
	}
}

func nanSlice(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(math.NaN())
	}
	return s
}

func TestActivationReference(t *testing.T) {
	be := backend.NewCPU()
	xs := []float64{-8, -3, -1.5, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 2.5, 7}
	x32 := make([]float32, len(xs))
	x64 := make([]float64, len(xs))
	for i, v := range xs {
		x32[i] = float32(v)
		x64[i] = float64(x32[i])
	}
	for _, act := range []backend.Act{backend.ActNone, backend.ActGELU, backend.ActQuickGELU} {
		t.Run(act.String(), func(t *testing.T) {
			out := be.Zeros(len(xs))
			be.Activation(out, be.FromFloat32(x32, len(xs)), act)
			want := make([]float64, len(xs))
			for i, v := range x64 {
				want[i] = act64(v, act)
			}
			checkClose(t, "out", backend.Data(out), want, fwdTol)
		})
	}
	// Known values: torch.nn.GELU()(tensor([1., -1.])) = 0.8413447, -0.1586553.
	out := be.Zeros(2)
	be.Activation(out, be.FromFloat32([]float32{1, -1}, 2), backend.ActGELU)
	checkClose(t, "gelu(±1)", backend.Data(out), []float64{0.8413447460685429, -0.15865525393145707}, 1e-7)
}

func TestLayerNormReference(t *testing.T) {
	for _, be := range backends() {
		rng := rand.New(rand.NewSource(4))
		x, g, b := randVec(rng, 13, 64), randVec(rng, 64), randVec(rng, 64)
		for i := range x.f32 { // a large offset: the mean must be removed accurately
			x.f32[i] += 10
			x.f64[i] = float64(x.f32[i])
		}
		out, mean, rstd := be.Zeros(13, 64), be.Zeros(13), be.Zeros(13)
		be.LayerNorm(out, x.t(be), g.t(be), b.t(be), 1e-5, mean, rstd)
		checkClose(t, "out", backend.Data(out), layerNorm64(x.f64, g.f64, b.f64, 13, 64, 1e-5), fwdTol)
		m := make([]float64, 13)
		for r := range m {
			for _, v := range x.f64[r*64 : r*64+64] {
				m[r] += v / 64
			}
		}
		checkClose(t, "mean", backend.Data(mean), m, fwdTol)
	}
}

func TestAttentionReference(t *testing.T) {
	for _, be := range backends() {
		for _, causal := range []bool{false, true} {
			for _, s := range []struct{ B, T, H, D int }{{2, 7, 2, 4}, {1, 40, 3, 16}, {3, 1, 1, 8}} {
				t.Run(fmt.Sprintf("%s/B%d_T%d_H%d_D%d_causal%v", be.Name(), s.B, s.T, s.H, s.D, causal), func(t *testing.T) {
					rng := rand.New(rand.NewSource(5))
					C := s.H * s.D
					qkv := randVec(rng, s.B*s.T, 3*C)
					out, probs := be.Zeros(s.B*s.T, C), be.Zeros(s.B, s.H, s.T, s.T)
					be.Attention(out, qkv.t(be), s.B, s.T, s.H, causal, probs)
					wo, wp := attention64(qkv.f64, s.B, s.T, s.H, causal)
					checkClose(t, "out", backend.Data(out), wo, 1e-5)
					checkClose(t, "probs", backend.Data(probs), wp, 1e-5)
				})
			}
		}
	}
}

func TestSmallOpsReference(t *testing.T) {
	be := backend.NewCPU()
	rng := rand.New(rand.NewSource(6))
	t.Run("L2Normalize", func(t *testing.T) {
		x := randVec(rng, 5, 17)
		out := be.Zeros(5, 17)
		be.L2Normalize(out, x.t(be))
		checkClose(t, "out", backend.Data(out), l2norm64(x.f64, 5, 17), fwdTol)
	})
	t.Run("L2NormalizeZeroRow", func(t *testing.T) {
		out := be.Zeros(1, 4)
		be.L2Normalize(out, be.Zeros(1, 4))
		checkClose(t, "out", backend.Data(out), []float64{0, 0, 0, 0}, 0)
	})
	t.Run("CrossEntropy", func(t *testing.T) {
		x := randVec(rng, 6, 6)
		targets := []int32{0, 1, 2, 3, 4, 5}
		got := be.CrossEntropy(x.t(be), targets, nil, 1)
		checkClose(t, "loss", []float32{got}, []float64{crossEntropy64(x.f64, targets, 6, 6)}, fwdTol)
	})
	t.Run("SumSquares", func(t *testing.T) {
		x := randVec(rng, 1000, 3)
		var want float64
		for _, v := range x.f64 {
			want += v * v
		}
		if got := be.SumSquares(x.t(be)); math.Abs(got-want) > 1e-12*want {
			t.Errorf("SumSquares = %.15g, want %.15g", got, want)
		}
	})
	t.Run("Patchify", func(t *testing.T) {
		const B, S, P = 2, 6, 3
		px := make([]float32, B*3*S*S)
		for i := range px {
			px[i] = float32(i)
		}
		out := be.Zeros(B*4, 3*P*P)
		be.Patchify(out, be.FromFloat32(px, B, 3, S, S), B, S, P)
		d := backend.Data(out)
		for b := 0; b < B; b++ {
			for gy := 0; gy < 2; gy++ {
				for gx := 0; gx < 2; gx++ {
					for c := 0; c < 3; c++ {
						for dy := 0; dy < P; dy++ {
							for dx := 0; dx < P; dx++ {
								got := d[(b*4+gy*2+gx)*27+(c*P+dy)*P+dx]
								want := px[((b*3+c)*S+gy*P+dy)*S+gx*P+dx]
								if got != want {
									t.Fatalf("b%d patch (%d,%d) c%d (%d,%d): %g, want %g", b, gy, gx, c, dy, dx, got, want)
								}
							}
						}
					}
				}
			}
		}
	})
	t.Run("PrependRowEmbeddingGatherAddPeriodic", func(t *testing.T) {
		x := be.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 2, 2)
		out := be.Zeros(2, 3, 2)
		be.PrependRow(out, x, be.FromFloat32([]float32{-1, -2}, 2), 2, 2)
		checkClose(t, "PrependRow", backend.Data(out), []float64{-1, -2, 1, 2, 3, 4, -1, -2, 5, 6, 7, 8}, 0)
		emb := be.Zeros(3, 2)
		be.Embedding(emb, x, []int32{3, 0, 3})
		checkClose(t, "Embedding", backend.Data(emb), []float64{7, 8, 1, 2, 7, 8}, 0)
		g := be.Zeros(2, 2)
		be.GatherRows(g, x, []int{2, 1})
		checkClose(t, "GatherRows", backend.Data(g), []float64{5, 6, 3, 4}, 0)
		ap := be.Zeros(4, 2)
		be.AddPeriodic(ap, x, be.FromFloat32([]float32{10, 20, 30, 40, 50, 60}, 3, 2), 2)
		checkClose(t, "AddPeriodic", backend.Data(ap), []float64{11, 22, 33, 44, 15, 26, 37, 48}, 0)
	})
}

// TestAdamWHandComputed checks one step against PyTorch's torch.optim.AdamW
// formula worked out by hand in float64 for a few values.
func TestAdamWHandComputed(t *testing.T) {
	be := backend.NewCPU()
	p0 := []float64{0.5, -1.25, 2, 0}
	g := []float64{0.1, -0.3, 0, 2}
	m0 := []float64{0.01, 0.02, -0.05, 0}
	v0 := []float64{0.001, 0.004, 0.0002, 0}
	const lr, b1, b2, eps, wd, step = 1e-2, 0.9, 0.98, 1e-6, 0.2, 3
	f32 := func(x []float64) []float32 {
		o := make([]float32, len(x))
		for i, v := range x {
			o[i] = float32(v)
		}
		return o
	}
	param, grad, m, v := be.FromFloat32(f32(p0), 4), be.FromFloat32(f32(g), 4), be.FromFloat32(f32(m0), 4), be.FromFloat32(f32(v0), 4)
	be.AdamW(param, grad, m, v, lr, b1, b2, eps, wd, step)
	wantP, wantM, wantV := make([]float64, 4), make([]float64, 4), make([]float64, 4)
	for i := range p0 {
		p := p0[i] * (1 - lr*wd)
		wantM[i] = b1*m0[i] + (1-b1)*g[i]
		wantV[i] = b2*v0[i] + (1-b2)*g[i]*g[i]
		bc1 := 1 - math.Pow(b1, step)
		bc2 := 1 - math.Pow(b2, step)
		wantP[i] = p - lr/bc1*wantM[i]/(math.Sqrt(wantV[i])/math.Sqrt(bc2)+eps)
	}
	checkClose(t, "param", backend.Data(param), wantP, 1e-6)
	checkClose(t, "m", backend.Data(m), wantM, 1e-6)
	checkClose(t, "v", backend.Data(v), wantV, 1e-6)
	// First element by hand: p = 0.5·0.998 = 0.499; m = 0.019; v = 0.00118;
	// m̂ = 0.019/0.271 = 0.0701107; v̂ = 0.00118/0.058808 = 0.0200653;
	// p − 0.01·0.0701107/(0.1416521+1e-6) = 0.499 − 0.0049495 = 0.4940505.
	if got := backend.Data(param)[0]; math.Abs(float64(got)-0.4940505) > 2e-7 {
		t.Errorf("param[0] = %.8f, want 0.4940505 (worked by hand)", got)
	}
}
