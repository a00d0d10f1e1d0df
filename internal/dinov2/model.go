package dinov2

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/weights"
)

// Model is a DINOv2 backbone for inference (forward_features):
//
//	x = [cls + pos₀; patch_embed(pixels) + pos₁…] with pos resized to the grid
//	x = [x₀; register_tokens; x₁…]
//	x = blocks(x)                      x_prenorm
//	x_norm = norm(x) → cls | registers | patches
//
// It is locked (no gradients). Encode allocates its activations per call, so
// several goroutines may call it at once on a backend safe for concurrent use.
type Model struct {
	be     backend.Backend
	cfg    Config
	patchW backend.Tensor // (C, 3·P·P), Conv2d weight flattened as Patchify orders a patch
	patchB backend.Tensor // (C)
	clsPos backend.Tensor // (C) cls_token + pos_embed[0]
	regs   []backend.Tensor
	blocks []block
	normG  backend.Tensor
	normB  backend.Tensor

	host map[string][]float32 // canonical tensors kept on the host: tokens and the position table

	mu  sync.Mutex
	pos map[int]posTable // by grid side g
}

// posTable is the position table at one grid: host values (1+g², C) and the
// patch rows on the backend (g², C).
type posTable struct {
	host  []float32
	patch backend.Tensor
}

// block is one pre-norm residual block (dinov2.layers.Block) with LayerScale
// folded into the branch outputs:
//
//	x1  = x  + ls1 ⊙ proj(attn(qkv(norm1(x))))
//	out = x1 + ls2 ⊙ ffn(norm2(x1))
//
// ls ⊙ (W·h + b) = (diag(ls)·W)·h + ls ⊙ b, so proj and the FFN's output
// projection hold the scaled weights (float32 rounding of one product per
// weight, ~6e-8 relative).
type block struct {
	norm1G, norm1B backend.Tensor
	qkvW, qkvB     backend.Tensor // (3C,C), (3C) or nil
	projW, projB   backend.Tensor // (C,C), (C) or nil; ls1 folded in
	norm2G, norm2B backend.Tensor
	inW, inB       backend.Tensor // fc1 (F,C) or w12 (2F,C)
	outW, outB     backend.Tensor // fc2 / w3 (C,F); ls2 folded in
}

// Config is the config the model was built with.
func (m *Model) Config() Config { return m.cfg }

// Load builds the model of cfg from src (Meta or HF names, told apart by the
// names); label names the source in errors. Every missing, unexpected or
// mis-shaped tensor is reported in one error.
func Load(be backend.Backend, cfg Config, src weights.Source, label string) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := readWeights(cfg, src, label)
	if err != nil {
		return nil, err
	}
	return build(be, cfg, t)
}

// LoadFile is Load from a safetensors file.
func LoadFile(be backend.Backend, cfg Config, path string) (*Model, error) {
	f, err := weights.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dinov2: %w", err)
	}
	defer f.Close()
	return Load(be, cfg, f, path)
}

// NewRandom builds a model of cfg with random weights, deterministic in
// seed, initialised as DinoVisionTransformer.init_weights does: pos_embed
// and every Linear weight N(0, 0.02) truncated at ±2σ, Linear biases 0,
// cls and register tokens N(0, 1e-6), the patch Conv2d PyTorch's default
// U(±1/√fan_in), norms 1 and 0, LayerScale gammas init_values.
func NewRandom(be backend.Backend, cfg Config, seed int64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x64696e6f7632))
	t := map[string][]float32{}
	fanIn := 3 * cfg.PatchSize * cfg.PatchSize
	for _, p := range cfg.params() {
		d := make([]float32, numel(p.shape))
		switch n := p.name; {
		case n == "pos_embed" || (len(p.shape) == 2 && !hasSuffix(n, "patch_embed.proj.weight")):
			for i := range d {
				d[i] = float32(truncNormal(rng) * 0.02)
			}
		case n == "cls_token" || n == "register_tokens":
			for i := range d {
				d[i] = float32(rng.NormFloat64() * 1e-6)
			}
		case hasSuffix(n, "patch_embed.proj.weight", "patch_embed.proj.bias"):
			bound := 1 / math.Sqrt(float64(fanIn))
			for i := range d {
				d[i] = float32((2*rng.Float64() - 1) * bound)
			}
		case hasSuffix(n, "norm1.weight", "norm2.weight") || n == "norm.weight":
			fill(d, 1)
		case hasSuffix(n, ".gamma"):
			fill(d, float32(cfg.InitValues))
		}
		t[p.name] = d
	}
	return build(be, cfg, t)
}

func truncNormal(rng *rand.Rand) float64 {
	for {
		if v := rng.NormFloat64(); math.Abs(v) <= 2 {
			return v
		}
	}
}

func fill(d []float32, v float32) {
	for i := range d {
		d[i] = v
	}
}

func hasSuffix(s string, suffixes ...string) bool {
	for _, x := range suffixes {
		if len(s) >= len(x) && s[len(s)-len(x):] == x {
			return true
		}
	}
	return false
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// build uploads the canonical tensors t (Meta names and shapes).
func build(be backend.Backend, cfg Config, t map[string][]float32) (*Model, error) {
	C, P := cfg.EmbedDim, cfg.PatchSize
	up := func(name string, shape ...int) backend.Tensor {
		d, ok := t[name]
		if !ok {
			return nil // an absent bias
		}
		return be.FromFloat32(d, shape...)
	}
	m := &Model{be: be, cfg: cfg, pos: map[int]posTable{}, host: map[string][]float32{}}
	for _, n := range []string{"cls_token", "pos_embed", "register_tokens"} {
		if d, ok := t[n]; ok {
			m.host[n] = d
		}
	}
	m.patchW = up("patch_embed.proj.weight", C, 3*P*P)
	m.patchB = up("patch_embed.proj.bias", C)
	cls := slices.Clone(t["cls_token"])
	for i, v := range t["pos_embed"][:C] {
		cls[i] += v
	}
	m.clsPos = be.FromFloat32(cls, C)
	for r := 0; r < cfg.NumRegisterTokens; r++ {
		m.regs = append(m.regs, be.FromFloat32(t["register_tokens"][r*C:(r+1)*C], C))
	}
	F := cfg.Hidden()
	inRows, in, out := F, "mlp.fc1", "mlp.fc2"
	if cfg.FFNLayer == FFNSwiGLU {
		inRows, in, out = 2*F, "mlp.w12", "mlp.w3"
	}
	for i := 0; i < cfg.Depth; i++ {
		p := fmt.Sprintf("blocks.%d.", i)
		projW, projB := t[p+"attn.proj.weight"], t[p+"attn.proj.bias"]
		outW, outB := t[p+out+".weight"], t[p+out+".bias"]
		if cfg.LayerScale() {
			projW, projB = scaleRows(projW, projB, t[p+"ls1.gamma"])
			outW, outB = scaleRows(outW, outB, t[p+"ls2.gamma"])
		}
		opt := func(d []float32, shape ...int) backend.Tensor {
			if d == nil {
				return nil
			}
			return be.FromFloat32(d, shape...)
		}
		m.blocks = append(m.blocks, block{
			norm1G: up(p+"norm1.weight", C), norm1B: up(p+"norm1.bias", C),
			qkvW: up(p+"attn.qkv.weight", 3*C, C), qkvB: up(p+"attn.qkv.bias", 3*C),
			projW: opt(projW, C, C), projB: opt(projB, C),
			norm2G: up(p+"norm2.weight", C), norm2B: up(p+"norm2.bias", C),
			inW: up(p+in+".weight", inRows, C), inB: up(p+in+".bias", inRows),
			outW: opt(outW, C, F), outB: opt(outB, C),
		})
	}
	m.normG, m.normB = up("norm.weight", C), up("norm.bias", C)
	if _, err := m.positions(cfg.RunGrid()); err != nil {
		m.Free()
		return nil, err
	}
	return m, nil
}

// scaleRows returns diag(g)·w and g ⊙ b for w (O,I), b (O) or nil.
func scaleRows(w, b, g []float32) ([]float32, []float32) {
	O := len(g)
	I := len(w) / O
	sw := make([]float32, len(w))
	for o := 0; o < O; o++ {
		for i := 0; i < I; i++ {
			sw[o*I+i] = g[o] * w[o*I+i]
		}
	}
	var sb []float32
	if b != nil {
		sb = make([]float32, O)
		for o := range sb {
			sb[o] = g[o] * b[o]
		}
	}
	return sw, sb
}

// positions returns the position table for a g×g grid, resized once and kept.
func (m *Model) positions(g int) (posTable, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pos[g]; ok {
		return p, nil
	}
	C := m.cfg.EmbedDim
	host, err := ResizePositions(m.host["pos_embed"], m.cfg.Grid(), C, g, m.cfg.InterpolateOffset, m.cfg.InterpolateAntialias)
	if err != nil {
		return posTable{}, err
	}
	p := posTable{host: host, patch: m.be.FromFloat32(host[C:], g*g, C)}
	m.pos[g] = p
	return p, nil
}

// Free releases the model's tensors.
func (m *Model) Free() {
	be := m.be
	for _, t := range []backend.Tensor{m.patchW, m.patchB, m.clsPos, m.normG, m.normB} {
		be.Free(t)
	}
	for _, t := range m.regs {
		be.Free(t)
	}
	for _, b := range m.blocks {
		for _, t := range []backend.Tensor{b.norm1G, b.norm1B, b.qkvW, b.qkvB, b.projW, b.projB, b.norm2G, b.norm2B, b.inW, b.inB, b.outW, b.outB} {
			be.Free(t)
		}
	}
	m.mu.Lock()
	for _, p := range m.pos {
		be.Free(p.patch)
	}
	m.pos = map[int]posTable{}
	m.mu.Unlock()
}
