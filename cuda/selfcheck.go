package cuda

import (
	"fmt"
	"math"
	"math/rand"
	"strings"

	"github.com/litcache/litcache/internal/backend"
)

// CheckResult is one compared output of the self-check.
type CheckResult struct {
	Case, Output string
	RelErr       float64 // ‖got − ref‖ / ‖ref‖
	Tol          float64
}

// OK reports whether the output is within tolerance (NaN never is).
func (r CheckResult) OK() bool { return r.RelErr <= r.Tol }

func (r CheckResult) String() string {
	return fmt.Sprintf("%s/%s: relative error %.3g (limit %g)", r.Case, r.Output, r.RelErr, r.Tol)
}

// SelfCheck runs the self-check cases on b and on the CPU reference and
// compares them. `--device auto` uses the GPU only when this passes, so a
// broken driver, library, kernel build or a GPU that fails at the real
// shapes falls back to the CPU instead of producing wrong embeddings. The
// cases are a small one (B=2, T=9, C=32: LayerNorm, Linear, causal
// attention) and one at ViT-L/14's shapes (T=257, C=1024, 16 heads:
// patchify, patch embedding, class token, positional add + LayerNorm, qkv,
// attention, the residual projection, GELU and QuickGELU layers).
func SelfCheck(b *Backend) error {
	_, err := SelfCheckResults(b)
	return err
}

// SelfCheckResults is SelfCheck with every compared output.
func SelfCheckResults(b *Backend) ([]CheckResult, error) {
	tol := 1e-4 // float32 on both sides, other summation orders
	if b.prec == BF16 {
		tol = 3e-2 // bf16 rounding through a chain of ops (measured ≤ 1e-2 on the emulator)
	}
	return compareBackends(b, backend.NewCPU(), tol)
}

// checkCase runs a sequence of ops on be and returns its named outputs.
type checkCase struct {
	name string
	run  func(be backend.Backend, rng *rand.Rand) map[string][]float32
}

var checkCases = []checkCase{{"small", smallCase}, {"vit-l14", vitL14Case}}

// compareBackends runs every case on got and ref with the same inputs and
// fails when an output differs by more than tol (relative) or is not finite.
func compareBackends(got, ref backend.Backend, tol float64) (res []CheckResult, err error) {
	defer Recover(&err)
	var bad []string
	for i, c := range checkCases {
		g := c.run(got, rand.New(rand.NewSource(int64(7+i))))
		r := c.run(ref, rand.New(rand.NewSource(int64(7+i))))
		for _, name := range sortedKeys(r) {
			cr := CheckResult{Case: c.name, Output: name, RelErr: relErr(g[name], r[name]), Tol: tol}
			res = append(res, cr)
			if !cr.OK() {
				bad = append(bad, cr.String())
			}
		}
	}
	if len(bad) > 0 {
		return res, fmt.Errorf("cuda: self-check on %s failed against %s: %s", got.Name(), ref.Name(), strings.Join(bad, "; "))
	}
	return res, nil
}

func sortedKeys(m map[string][]float32) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// relErr is ‖got − ref‖/‖ref‖; NaN when got has another length or a NaN.
func relErr(got, ref []float32) float64 {
	if len(got) != len(ref) || len(ref) == 0 {
		return math.NaN()
	}
	var num, den float64
	for i := range ref {
		d := float64(got[i]) - float64(ref[i])
		num += d * d
		den += float64(ref[i]) * float64(ref[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func randn(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return v
}

// session allocates on be and frees everything at the end.
type session struct {
	be  backend.Backend
	all []backend.Tensor
}

func (s *session) from(v []float32, shape ...int) backend.Tensor {
	t := s.be.FromFloat32(v, shape...)
	s.all = append(s.all, t)
	return t
}

func (s *session) zeros(shape ...int) backend.Tensor {
	t := s.be.Zeros(shape...)
	s.all = append(s.all, t)
	return t
}

func (s *session) free() {
	for _, t := range s.all {
		s.be.Free(t)
	}
}

func smallCase(be backend.Backend, rng *rand.Rand) map[string][]float32 {
	const B, T, H, C = 2, 9, 2, 32
	s := &session{be: be}
	defer s.free()
	x, w, bias := s.from(randn(rng, B*T*C, 1), B*T, C), s.from(randn(rng, 3*C*C, 1), 3*C, C), s.from(randn(rng, 3*C, 1), 3*C)
	g, beta := s.from(randn(rng, C, 1), C), s.from(randn(rng, C, 1), C)
	ln, qkv, out := s.zeros(B*T, C), s.zeros(B*T, 3*C), s.zeros(B*T, C)
	be.LayerNorm(ln, x, g, beta, 1e-5, nil, nil)
	be.Linear(qkv, ln, w, bias, backend.ActNone)
	be.Attention(out, qkv, B, T, H, true, nil)
	return map[string][]float32{"attention": be.ToFloat32(out, nil)}
}

// fusedOps are the CUDA backend's fused epilogues; on a backend without
// them the check composes the same result from the plain ops.
type fusedOps interface {
	LinearResidual(out, x, w, bias, residual backend.Tensor)
	AddLayerNorm(sum, out, x, r, gamma, beta backend.Tensor, period int, eps float32)
}

func vitL14Case(be backend.Backend, rng *rand.Rand) map[string][]float32 {
	const B, S, P, C, H = 2, 224, 14, 1024, 16
	const G = S / P
	const T, N, K = G*G + 1, B * (G*G + 1), 3 * P * P
	s := &session{be: be}
	defer s.free()
	px := s.from(randn(rng, B*3*S*S, 1), B, 3, S, S)
	wPatch := s.from(randn(rng, C*K, 1/math.Sqrt(K)), C, K)
	cls, pos := s.from(randn(rng, C, 1), C), s.from(randn(rng, T*C, 0.5), T, C)
	g1, b1 := s.from(randn(rng, C, 0.2), C), s.from(randn(rng, C, 0.2), C)
	wQKV, bQKV := s.from(randn(rng, 3*C*C, 1/math.Sqrt(C)), 3*C, C), s.from(randn(rng, 3*C, 0.1), 3*C)
	wOut, bOut := s.from(randn(rng, C*C, 1/math.Sqrt(C)), C, C), s.from(randn(rng, C, 0.1), C)
	wFC, bFC := s.from(randn(rng, C*C, 1/math.Sqrt(C)), C, C), s.from(randn(rng, C, 0.1), C)
	patches, emb := s.zeros(B*G*G, K), s.zeros(B*G*G, C)
	be.Patchify(patches, px, B, S, P)
	be.Linear(emb, patches, wPatch, nil, backend.ActNone)
	x, ln := s.zeros(N, C), s.zeros(N, C)
	be.PrependRow(x, emb, cls, B, G*G)
	f, fused := be.(fusedOps)
	if fused {
		f.AddLayerNorm(x, ln, x, pos, g1, b1, T, 1e-5)
	} else {
		be.AddPeriodic(x, x, pos, T)
		be.LayerNorm(ln, x, g1, b1, 1e-5, nil, nil)
	}
	qkv, att, x1 := s.zeros(N, 3*C), s.zeros(N, C), s.zeros(N, C)
	be.Linear(qkv, ln, wQKV, bQKV, backend.ActNone)
	be.Attention(att, qkv, B, T, H, false, nil)
	if fused {
		f.LinearResidual(x1, att, wOut, bOut, x)
	} else {
		be.Linear(x1, att, wOut, bOut, backend.ActNone)
		be.Add(x1, x1, x)
	}
	gelu, qgelu := s.zeros(N, C), s.zeros(N, C)
	be.Linear(gelu, x1, wFC, bFC, backend.ActGELU)
	be.Linear(qgelu, x1, wFC, bFC, backend.ActQuickGELU)
	return map[string][]float32{
		"patch_embedding": be.ToFloat32(emb, nil),
		"ln_pre":          be.ToFloat32(ln, nil),
		"attention":       be.ToFloat32(att, nil),
		"residual":        be.ToFloat32(x1, nil),
		"gelu":            be.ToFloat32(gelu, nil),
		"quick_gelu":      be.ToFloat32(qgelu, nil),
	}
}
