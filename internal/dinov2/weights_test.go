package dinov2

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/weights"
)

// tinyConfig is a one-block model with every optional tensor: registers,
// LayerScale, biases; ffn selects the MLP or SwiGLU.
func tinyConfig(ffn string) Config {
	c := defaults()
	c.ImgSize, c.ImageSize, c.ResizeSize, c.PatchSize, c.EmbedDim, c.Depth, c.NumHeads = 28, 28, 32, 14, 8, 1, 2
	c.InitValues, c.NumRegisterTokens, c.FFNLayer = 1e-5, 2, ffn
	return c
}

// metaTensors are random tensors under Meta's names for c.
func metaTensors(c Config, seed uint64) weights.Map {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := weights.Map{}
	for _, p := range c.params() {
		d := make([]float32, numel(p.shape))
		for i := range d {
			d[i] = float32(rng.NormFloat64())
		}
		m[p.name] = weights.Tensor{Name: p.name, Shape: p.shape, Data: d}
	}
	return m
}

// hfNamesOneBlock are the HF transformers names of tinyConfig's tensors, as
// Dinov2WithRegistersModel's state dict spells them, written out by hand
// from modeling_dinov2.py (not derived from the mapping table under test),
// each with the Meta tensor (and third of qkv) it holds.
func hfNamesOneBlock(ffn string) map[string]struct {
	meta  string
	third int // -1: the whole tensor; 0, 1, 2: q, k, v rows of qkv
} {
	type src = struct {
		meta  string
		third int
	}
	in, out := "fc1", "fc2"
	mi, mo := "fc1", "fc2"
	if ffn == FFNSwiGLU {
		in, out, mi, mo = "weights_in", "weights_out", "w12", "w3"
	}
	m := map[string]src{
		"embeddings.cls_token":                             {"cls_token", -1},
		"embeddings.position_embeddings":                   {"pos_embed", -1},
		"embeddings.register_tokens":                       {"register_tokens", -1},
		"embeddings.patch_embeddings.projection.weight":    {"patch_embed.proj.weight", -1},
		"embeddings.patch_embeddings.projection.bias":      {"patch_embed.proj.bias", -1},
		"encoder.layer.0.norm1.weight":                     {"blocks.0.norm1.weight", -1},
		"encoder.layer.0.norm1.bias":                       {"blocks.0.norm1.bias", -1},
		"encoder.layer.0.attention.attention.query.weight": {"blocks.0.attn.qkv.weight", 0},
		"encoder.layer.0.attention.attention.key.weight":   {"blocks.0.attn.qkv.weight", 1},
		"encoder.layer.0.attention.attention.value.weight": {"blocks.0.attn.qkv.weight", 2},
		"encoder.layer.0.attention.attention.query.bias":   {"blocks.0.attn.qkv.bias", 0},
		"encoder.layer.0.attention.attention.key.bias":     {"blocks.0.attn.qkv.bias", 1},
		"encoder.layer.0.attention.attention.value.bias":   {"blocks.0.attn.qkv.bias", 2},
		"encoder.layer.0.attention.output.dense.weight":    {"blocks.0.attn.proj.weight", -1},
		"encoder.layer.0.attention.output.dense.bias":      {"blocks.0.attn.proj.bias", -1},
		"encoder.layer.0.layer_scale1.lambda1":             {"blocks.0.ls1.gamma", -1},
		"encoder.layer.0.norm2.weight":                     {"blocks.0.norm2.weight", -1},
		"encoder.layer.0.norm2.bias":                       {"blocks.0.norm2.bias", -1},
		"encoder.layer.0.mlp." + in + ".weight":            {"blocks.0.mlp." + mi + ".weight", -1},
		"encoder.layer.0.mlp." + in + ".bias":              {"blocks.0.mlp." + mi + ".bias", -1},
		"encoder.layer.0.mlp." + out + ".weight":           {"blocks.0.mlp." + mo + ".weight", -1},
		"encoder.layer.0.mlp." + out + ".bias":             {"blocks.0.mlp." + mo + ".bias", -1},
		"encoder.layer.0.layer_scale2.lambda1":             {"blocks.0.ls2.gamma", -1},
		"layernorm.weight":                                 {"norm.weight", -1},
		"layernorm.bias":                                   {"norm.bias", -1},
	}
	return m
}

// toHF builds the HF-named fake source from Meta tensors with the hand table.
func toHF(meta weights.Map, ffn, prefix string) weights.Map {
	hf := weights.Map{}
	for name, s := range hfNamesOneBlock(ffn) {
		t := meta[s.meta]
		d, shape := t.Data, t.Shape
		if s.third >= 0 {
			n := len(d) / 3
			d = d[s.third*n : (s.third+1)*n]
			shape = append([]int{shape[0] / 3}, shape[1:]...)
		}
		hf[prefix+name] = weights.Tensor{Name: prefix + name, Shape: shape, Data: d}
	}
	hf[prefix+"embeddings.mask_token"] = weights.Tensor{Name: prefix + "embeddings.mask_token", Shape: []int{1, 8}, Data: make([]float32, 8)}
	return hf
}

func encodeAll(t *testing.T, be backend.Backend, c Config, src weights.Source) []float32 {
	t.Helper()
	m, err := Load(be, c, src, "fake")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	px := make([]float32, 2*3*c.ImageSize*c.ImageSize)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	return m.Encode(px, 2, PoolCLSMean)
}

// TestHFNamesMapping: a fake source with HF names (the hand-written list)
// builds the same model as Meta's names: identical embeddings. Every table
// row must find its HF tensor and every HF tensor must be used.
func TestHFNamesMapping(t *testing.T) {
	be := backend.NewCPU()
	for _, ffn := range []string{FFNMLP, FFNSwiGLU} {
		for _, prefix := range []string{"", "dinov2."} {
			t.Run(ffn+"/"+prefix, func(t *testing.T) {
				c := tinyConfig(ffn)
				meta := metaTensors(c, 3)
				want := encodeAll(t, be, c, meta)
				got := encodeAll(t, be, c, toHF(meta, ffn, prefix))
				if !slices.Equal(got, want) {
					t.Fatal("HF names give other embeddings than Meta's")
				}
				table, err := c.table(SchemeHF)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, b := range table {
					for _, p := range b.Parts {
						names = append(names, p.Name)
					}
				}
				var hand []string
				for n := range hfNamesOneBlock(ffn) {
					hand = append(hand, n)
				}
				sort.Strings(names)
				sort.Strings(hand)
				if !slices.Equal(names, hand) {
					t.Errorf("table's HF names\n%v\nwant\n%v", names, hand)
				}
			})
		}
	}
}

// TestChunkedNames: Meta's block_chunks checkpoints name block N of chunk C
// "blocks.C.N."; they load as "blocks.N.".
func TestChunkedNames(t *testing.T) {
	be := backend.NewCPU()
	c := tinyConfig(FFNMLP)
	c.Depth = 2
	meta := metaTensors(c, 4)
	chunked := weights.Map{}
	for n, tt := range meta {
		if strings.HasPrefix(n, "blocks.") {
			idx := n[len("blocks.") : strings.Index(n[len("blocks."):], ".")+len("blocks.")]
			n = "blocks." + idx + "." + n[len("blocks."):] // chunk C = N: Identity padding keeps N
			tt.Name = n
		}
		chunked[n] = tt
	}
	if !slices.Equal(encodeAll(t, be, c, chunked), encodeAll(t, be, c, meta)) {
		t.Fatal("chunked names give other embeddings")
	}
}

// TestWeightsErrors: every problem is named at once.
func TestWeightsErrors(t *testing.T) {
	be := backend.NewCPU()
	c := tinyConfig(FFNMLP)
	src := metaTensors(c, 6)
	delete(src, "blocks.0.ls1.gamma")
	src["blocks.0.attn.extra"] = weights.Tensor{Name: "blocks.0.attn.extra", Shape: []int{1}, Data: []float32{0}}
	bad := src["norm.bias"]
	bad.Shape, bad.Data = []int{9}, make([]float32, 9)
	src["norm.bias"] = bad
	src["mask_token"] = weights.Tensor{Name: "mask_token", Shape: []int{1, 8}, Data: make([]float32, 8)} // known, fine
	_, err := Load(be, c, src, "fake.safetensors")
	var werr *weights.Error
	if !errors.As(err, &werr) {
		t.Fatalf("want a *weights.Error, got %v", err)
	}
	if !slices.Equal(werr.Missing, []string{"blocks.0.ls1.gamma"}) || !slices.Equal(werr.Unexpected, []string{"blocks.0.attn.extra"}) || len(werr.Misshaped) != 1 {
		t.Errorf("error lists missing %v, unexpected %v, mis-shaped %v", werr.Missing, werr.Unexpected, werr.Misshaped)
	}
	for _, s := range []string{"fake.safetensors", "missing blocks.0.ls1.gamma", "unexpected blocks.0.attn.extra", "mis-shaped norm.bias: [9]"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	mixed := metaTensors(c, 7)
	mixed["layernorm.weight"] = weights.Tensor{Name: "layernorm.weight", Shape: []int{8}, Data: make([]float32, 8)}
	if _, err := Load(be, c, mixed, "mixed"); err == nil || !strings.Contains(err.Error(), "mix") {
		t.Errorf("mixed names: %v", err)
	}
	if _, err := Load(be, c, weights.Map{"x": {Name: "x", Shape: []int{1}, Data: []float32{1}}}, "other"); err == nil {
		t.Error("a file of other names accepted")
	}
}

// TestRoundTripTensors: Tensors gives Meta-named tensors that rebuild a model
// computing the same numbers (LayerScale comes back folded, gammas ones).
func TestRoundTripTensors(t *testing.T) {
	be := backend.NewCPU()
	for _, ffn := range []string{FFNMLP, FFNSwiGLU} {
		c := tinyConfig(ffn)
		m, err := NewRandom(be, c, 11)
		if err != nil {
			t.Fatal(err)
		}
		src := weights.MapOf(m.Tensors())
		m.Free()
		m2, err := NewRandom(be, c, 11)
		if err != nil {
			t.Fatal(err)
		}
		px := make([]float32, 3*3*28*28)
		for i := range px {
			px[i] = float32(i%17) / 17
		}
		want := m2.Encode(px, 3, PoolCLS)
		m2.Free()
		if got := encodeAll2(t, be, c, src, px); !slices.Equal(got, want) {
			t.Errorf("%s: rebuilt from Tensors, the embeddings differ", ffn)
		}
	}
}

func encodeAll2(t *testing.T, be backend.Backend, c Config, src weights.Source, px []float32) []float32 {
	t.Helper()
	m, err := Load(be, c, src, "tensors")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	return m.Encode(px, len(px)/(3*c.ImageSize*c.ImageSize), PoolCLS)
}
