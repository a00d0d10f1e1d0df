package clip

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/testutil/parity"
)

// The fixture (testdata/clip-tiny, or $LITCACHE_FIXTURE_DIR for another
// directory of the same shape) comes from HF transformers 5.17 CLIP in float64
// with every parameter randomised (FIXTURES.md):
//   - weights_hf / weights_openclip: the same float32 weights under both names;
//   - forward.safetensors: pixel_values [4,3,S,S], input_ids [4,T] int32 and the
//     float64 outputs image_embeds, text_embeds, vision_hidden.i (0: after
//     ln_pre, L: last block), vision_pooled (class token before ln_post),
//     text_hidden.i (0: token+position embeddings), text_last_hidden (after ln_final);
//   - train_*: a LiT run of the text tower; step 0's gradients under HF names.
//
// Text pooling takes the first position holding vocab_size-1; attention is causal.
//
// Tolerances: the fixture's float64 numbers against our float32 arithmetic on
// float32 weights. FIXTURES.md expects a float32 implementation within about
// 1e-5 relative (‖a−b‖/‖b‖) on the forward outputs; float32 rounding
// (ε≈6e-8) grows through two blocks to ~1e-7..1e-6, so 1e-5 leaves margin
// without hiding a real mistake (a swapped weight or wrong mask is ≥ 1e-2).
// Gradients pass through twice as many ops and the softmax of the loss:
// 1e-4 relative per tensor.
const (
	forwardTol = 1e-5
	gradTol    = 1e-4
)

func fixtureConfig(t *testing.T) (string, Config) {
	t.Helper()
	dir := testutil.FixtureDir(t)
	cfg, err := LoadConfig(filepath.Join(dir, "open_clip_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

func TestForwardParity(t *testing.T) {
	dir, cfg := fixtureConfig(t)
	fwd := parity.Open(t, filepath.Join(dir, "forward.safetensors"))
	pixels, ps := parity.Float32(t, fwd, "pixel_values")
	ids, is, err := fwd.Int32s("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	B, BT, T := ps[0], is[0], is[1]
	be := backend.NewCPU()
	for _, weights := range []string{"weights_hf.safetensors", "weights_openclip.safetensors"} {
		t.Run(weights, func(t *testing.T) {
			m, err := LoadModel(be, cfg, filepath.Join(dir, weights))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			got := map[string][]float32{}
			hook := func(name string, x backend.Tensor) { got[name] = be.ToFloat32(x, nil) }
			img := m.Vision.encode(pixels, B, hook)
			got["image_embeds"] = be.ToFloat32(img, nil)
			txt := m.Text.encode(ids, BT, T, hook)
			got["text_embeds"] = be.ToFloat32(txt, nil)
			var names []string
			for i := 0; i <= cfg.Vision.Layers; i++ {
				names = append(names, fmt.Sprintf("vision_hidden.%d", i))
			}
			for i := 0; i <= cfg.Text.Layers; i++ {
				names = append(names, fmt.Sprintf("text_hidden.%d", i))
			}
			names = append(names, "vision_pooled", "text_last_hidden", "image_embeds", "text_embeds")
			for _, n := range names {
				want, _ := parity.Float64(t, fwd, n)
				if e := parity.RelErr(got[n], want); !(e <= forwardTol) {
					t.Errorf("%s: relative error %.3g > %g", n, e, forwardTol)
				} else {
					t.Logf("%s: relative error %.3g", n, e)
				}
			}
			// The public API gives the same numbers.
			if e := parity.RelErr(m.Vision.Encode(pixels, B), toF64(got["image_embeds"])); e != 0 {
				t.Errorf("Vision.Encode differs from encode: %g", e)
			}
			if e := parity.RelErr(m.Text.Encode(ids, BT, T), toF64(got["text_embeds"])); e != 0 {
				t.Errorf("Text.Encode differs from encode: %g", e)
			}
		})
	}
}

func toF64(a []float32) []float64 {
	out := make([]float64, len(a))
	for i, v := range a {
		out[i] = float64(v)
	}
	return out
}

// TestTextForwardMatchesEncode: Forward (training) and Encode (inference)
// compute the same embeddings, also with the context trimmed to the longest row.
func TestTextForwardMatchesEncode(t *testing.T) {
	dir, cfg := fixtureConfig(t)
	fwd := parity.Open(t, filepath.Join(dir, "forward.safetensors"))
	ids, is, err := fwd.Int32s("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	B, T := is[0], is[1]
	want, _ := parity.Float64(t, fwd, "text_embeds")
	be := backend.NewCPU()
	m, err := LoadModel(be, cfg, filepath.Join(dir, "weights_hf.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	// The longest row's end-of-text position + 1: positions after it are
	// padding the causal mask hides from every pooled token.
	trim := 0
	for _, p := range m.Text.PoolPositions(ids, B, T) {
		trim = max(trim, p+1)
	}
	for _, tc := range []struct {
		name string
		T    int
	}{{"full context", T}, {"trimmed", trim}} {
		t.Run(tc.name, func(t *testing.T) {
			rows := make([]int32, 0, B*tc.T)
			for b := 0; b < B; b++ {
				rows = append(rows, ids[b*T:b*T+tc.T]...)
			}
			got := be.ToFloat32(m.Text.Forward(rows, B, tc.T), nil)
			if e := parity.RelErr(got, want); !(e <= forwardTol) {
				t.Errorf("Forward: relative error %.3g", e)
			}
			if e := parity.RelErr(m.Text.Encode(rows, B, tc.T), want); !(e <= forwardTol) {
				t.Errorf("Encode: relative error %.3g", e)
			}
		})
	}
}

type trainReference struct {
	Loss           []float64 `json:"loss"`
	LogitScaleInit float64   `json:"logit_scale_init"`
}

// TestGradientParityStep0 runs step 0 of the fixture's LiT run: loss and every
// text-tower gradient (and logit_scale's) against PyTorch's float64 autograd.
func TestGradientParityStep0(t *testing.T) {
	dir, cfg := fixtureConfig(t)
	in := parity.Open(t, filepath.Join(dir, "train_inputs.safetensors"))
	ref := parity.Open(t, filepath.Join(dir, "train_grads_step0.safetensors"))
	var tr trainReference
	b, err := os.ReadFile(filepath.Join(dir, "train_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}

	feats, fs := parity.Float32(t, in, "image_features") // [steps,B,E]
	ids, is, err := in.Int32s("input_ids")               // [steps,B,T]
	if err != nil {
		t.Fatal(err)
	}
	B, E, T := fs[1], fs[2], is[2]
	be := backend.NewCPU()
	tt, err := LoadTextTower(be, cfg, filepath.Join(dir, "weights_hf.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	scale, ok, err := ReadLogitScale(filepath.Join(dir, "weights_hf.safetensors"))
	if err != nil || !ok {
		t.Fatalf("logit_scale: %v %v", ok, err)
	}
	if math.Abs(float64(scale)-tr.LogitScaleInit) > 1e-6 {
		t.Fatalf("logit_scale %g, reference %g", scale, tr.LogitScaleInit)
	}

	tt.ZeroGrad()
	img := be.FromFloat32(feats[:B*E], B, E)
	emb := tt.Forward(ids[:B*T], B, T)
	dEmb := be.Zeros(B, E)
	loss, dScale := ContrastiveLoss(be, img, emb, scale, nil, dEmb)
	tt.Backward(dEmb)

	if e := math.Abs(float64(loss)-tr.Loss[0]) / math.Abs(tr.Loss[0]); e > forwardTol {
		t.Errorf("loss %.8g, reference %.8g (relative %.3g)", loss, tr.Loss[0], e)
	}
	wantScale, _ := parity.Float64(t, ref, "logit_scale")
	if e := parity.RelErr([]float32{dScale}, wantScale); e > gradTol {
		t.Errorf("d logit_scale %.6g, reference %.6g (relative %.3g)", dScale, wantScale[0], e)
	}

	// Map the gradients to HF names with the weights' own mapping table.
	grads := make(paramSet, len(tt.ps))
	for i, r := range tt.ps {
		grads[i] = r
		grads[i].value = r.grad
	}
	enc, err := encodeParams(be, grads, HF)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{"logit_scale": true}
	for _, g := range enc {
		seen[g.name] = true
		want, shape := parity.Float64(t, ref, g.name)
		if fmt.Sprint(shape) != fmt.Sprint(g.shape) {
			t.Errorf("%s: shape %v, reference %v", g.name, g.shape, shape)
			continue
		}
		if strings.HasSuffix(g.name, "k_proj.bias") {
			// The key bias adds q·b_k to every score of a query, which softmax
			// ignores: its gradient is exactly 0 and both sides hold rounding
			// noise (PyTorch ~1e-20, float32 ~1e-12). Judge it absolutely,
			// against the scale of the same layer's query-bias gradient.
			qb, _ := parity.Float64(t, ref, strings.Replace(g.name, "k_proj", "q_proj", 1))
			var qn, an float64
			for i := range qb {
				qn += qb[i] * qb[i]
				d := float64(g.data[i]) - want[i]
				an += d * d
			}
			if e := math.Sqrt(an / qn); !(e <= gradTol) {
				t.Errorf("grad %s: ‖error‖/‖q-bias grad‖ %.3g > %g", g.name, e, gradTol)
			} else {
				t.Logf("grad %s (exactly 0 in exact arithmetic): ‖error‖/‖q-bias grad‖ %.3g", g.name, e)
			}
			continue
		}
		if e := parity.RelErr(g.data, want); !(e <= gradTol) {
			t.Errorf("grad %s: relative error %.3g > %g", g.name, e, gradTol)
		} else {
			t.Logf("grad %s: relative error %.3g", g.name, e)
		}
	}
	for _, n := range ref.Names() {
		if !seen[n] {
			t.Errorf("reference gradient %s has no counterpart", n)
		}
	}
}

// TestTrimmedBackwardMatchesFull: training at the batch's longest caption
// (DESIGN.md decision 5) gives the gradients of the full context: padding
// after the end-of-text token never reaches a pooled token through the causal
// mask, so every gradient is equal (the unused positional rows get 0).
func TestTrimmedBackwardMatchesFull(t *testing.T) {
	dir, cfg := fixtureConfig(t)
	in := parity.Open(t, filepath.Join(dir, "train_inputs.safetensors"))
	feats, fs := parity.Float32(t, in, "image_features")
	ids, is, err := in.Int32s("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	B, E, T := fs[1], fs[2], is[2]
	be := backend.NewCPU()
	tt, err := LoadTextTower(be, cfg, filepath.Join(dir, "weights_hf.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	img := be.FromFloat32(feats[:B*E], B, E)
	grads := func(ids []int32, T int) map[string][]float32 {
		tt.ZeroGrad()
		emb := tt.Forward(ids, B, T)
		d := be.Zeros(B, E)
		ContrastiveLoss(be, img, emb, DefaultLogitScale, nil, d)
		tt.Backward(d)
		out := map[string][]float32{}
		for _, p := range tt.Params() {
			out[p.Name] = be.ToFloat32(p.Grad, nil)
		}
		return out
	}
	full := grads(ids[:B*T], T)
	trim := 0
	for _, p := range tt.PoolPositions(ids[:B*T], B, T) {
		trim = max(trim, p+1)
	}
	if trim == T {
		t.Skip("step 0 has a row without padding")
	}
	rows := make([]int32, 0, B*trim)
	for b := 0; b < B; b++ {
		rows = append(rows, ids[b*T:b*T+trim]...)
	}
	short := grads(rows, trim)
	for name, want := range full {
		if e := parity.RelErr(short[name], toF64(want)); !(e <= forwardTol) {
			t.Errorf("%s: trimmed to %d of %d tokens: relative error %.3g", name, trim, T, e)
		}
	}
}
