package swin

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/weights"
)

// Model is a Swin Transformer (v1) backbone for inference:
//
//	x = norm₀(patch_conv(pixels))          features.0, (B·s·s, C) row-major maps
//	stage i: blocks (W-MSA, SW-MSA alternating), then patch merging
//	emb = mean over tokens of norm(x)      the pooled input of the head
//
// It is locked (no gradients). Encode allocates its activations per call,
// so several goroutines may call it at once on a backend safe for
// concurrent use.
type Model struct {
	be             backend.Backend
	cfg            Config
	patchW, patchB backend.Tensor // (E, 3·P·P), (E)
	pnormG, pnormB backend.Tensor
	stages         []stage
	normG, normB   backend.Tensor

	mu    sync.Mutex
	bias  map[[3]int]backend.Tensor // (stage, block, map side) → (G, h, N, N)
	zeros map[int]backend.Tensor    // width → zero row, for padded gathers
	rows  map[rowKey][]int          // gather indexes by layout, built once per batch shape
}

// rowKey names one gather's index list: its kind (window, unwindow,
// merge), batch, map side and shift.
type rowKey struct{ kind, B, s, shift int }

const (
	rowsWindow = iota
	rowsUnwindow
	rowsMerge
)

// gatherRows returns the cached index list for key, building it once; the
// lists are read-only and shared by concurrent calls. An extraction runs
// one batch shape, so a handful of lists serve every batch (Swin-T at
// batch 256: 0.8M indexes for the first stage's window layout).
func (m *Model) gatherRows(key rowKey) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.rows[key]; ok {
		return r
	}
	ws := m.cfg.WindowSize
	p := (key.s + ws - 1) / ws * ws
	var r []int
	switch key.kind {
	case rowsWindow:
		r = windowRows(key.B, key.s, p, ws, key.shift, p != key.s)
	case rowsUnwindow:
		r = unwindowRows(key.B, key.s, p, ws, key.shift)
	case rowsMerge:
		r = mergeRows(key.B, key.s, key.s%2 == 1)
	}
	if len(m.rows) >= 64 { // many batch shapes: keep memory bounded
		clear(m.rows)
	}
	m.rows[key] = r
	return r
}

type stage struct {
	blocks []block
	merge  *merge // nil after the last stage
}

// block is SwinTransformerBlock: x1 = x + attn(norm1(x)); out = x1 + mlp(norm2(x1)).
type block struct {
	norm1G, norm1B backend.Tensor
	qkvW, qkvB     backend.Tensor // (3C,C), (3C)
	projW, projB   backend.Tensor
	norm2G, norm2B backend.Tensor
	fc1W, fc1B     backend.Tensor // mlp.0 (F,C)
	fc2W, fc2B     backend.Tensor // mlp.3 (C,F)
	table          []float32      // relative_position_bias_table ((2ws−1)², h) on the host
	heads          int
	shifted        bool // odd blocks shift by ws/2 (where the map allows)
}

// merge is PatchMerging: reduction(norm(cat(x0, x1, x2, x3))), no bias.
type merge struct {
	normG, normB, redW backend.Tensor
}

// Config is the config the model was built with.
func (m *Model) Config() Config { return m.cfg }

// Load builds the model of cfg from src (torchvision or timm names, told
// apart by the names); label names the source in errors.
func Load(be backend.Backend, cfg Config, src weights.Source, label string) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := readWeights(cfg, src, label)
	if err != nil {
		return nil, err
	}
	return build(be, cfg, t), nil
}

// LoadFile is Load from a safetensors file.
func LoadFile(be backend.Backend, cfg Config, path string) (*Model, error) {
	f, err := weights.Open(path)
	if err != nil {
		return nil, fmt.Errorf("swin: %w", err)
	}
	defer f.Close()
	return Load(be, cfg, f, path)
}

// NewRandom builds a model of cfg with random weights, deterministic in
// seed, initialised as torchvision does: Linear weights and the bias tables
// N(0, 0.02) truncated at ±2σ, Linear biases 0, norms 1 and 0, the patch
// Conv2d PyTorch's default U(±1/√fan_in).
func NewRandom(be backend.Backend, cfg Config, seed int64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x7377696e))
	t := map[string][]float32{}
	bound := 1 / math.Sqrt(float64(3*cfg.PatchSize*cfg.PatchSize))
	for _, p := range cfg.params() {
		d := make([]float32, numel(p.shape))
		switch n := p.name; {
		case n == "features.0.0.weight" || n == "features.0.0.bias":
			for i := range d {
				d[i] = float32((2*rng.Float64() - 1) * bound)
			}
		case len(p.shape) == 2:
			for i := range d {
				d[i] = float32(truncNormal(rng) * 0.02)
			}
		case hasSuffix(n, "norm1.weight", "norm2.weight", "norm.weight", "features.0.2.weight"):
			for i := range d {
				d[i] = 1
			}
		}
		t[p.name] = d
	}
	return build(be, cfg, t), nil
}

func truncNormal(rng *rand.Rand) float64 {
	for {
		if v := rng.NormFloat64(); math.Abs(v) <= 2 {
			return v
		}
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

// build uploads the canonical tensors t (torchvision names and shapes).
func build(be backend.Backend, cfg Config, t map[string][]float32) *Model {
	up := func(name string, shape ...int) backend.Tensor { return be.FromFloat32(t[name], shape...) }
	E, P := cfg.EmbedDim, cfg.PatchSize
	m := &Model{be: be, cfg: cfg, bias: map[[3]int]backend.Tensor{}, zeros: map[int]backend.Tensor{}, rows: map[rowKey][]int{}}
	m.patchW, m.patchB = up("features.0.0.weight", E, 3*P*P), up("features.0.0.bias", E)
	m.pnormG, m.pnormB = up("features.0.2.weight", E), up("features.0.2.bias", E)
	for i, d := range cfg.Depths {
		C, F := cfg.StageDim(i), cfg.Hidden(i)
		var st stage
		for j := 0; j < d; j++ {
			p := fmt.Sprintf("features.%d.%d.", 2*i+1, j)
			st.blocks = append(st.blocks, block{
				norm1G: up(p+"norm1.weight", C), norm1B: up(p+"norm1.bias", C),
				qkvW: up(p+"attn.qkv.weight", 3*C, C), qkvB: up(p+"attn.qkv.bias", 3*C),
				projW: up(p+"attn.proj.weight", C, C), projB: up(p+"attn.proj.bias", C),
				norm2G: up(p+"norm2.weight", C), norm2B: up(p+"norm2.bias", C),
				fc1W: up(p+"mlp.0.weight", F, C), fc1B: up(p+"mlp.0.bias", F),
				fc2W: up(p+"mlp.3.weight", C, F), fc2B: up(p+"mlp.3.bias", C),
				table: t[p+"attn.relative_position_bias_table"], heads: cfg.NumHeads[i], shifted: j%2 == 1,
			})
		}
		if i < len(cfg.Depths)-1 {
			p := fmt.Sprintf("features.%d.", 2*i+2)
			st.merge = &merge{normG: up(p+"norm.weight", 4*C), normB: up(p+"norm.bias", 4*C), redW: up(p+"reduction.weight", 2*C, 4*C)}
		}
		m.stages = append(m.stages, st)
	}
	D := cfg.Dim()
	m.normG, m.normB = up("norm.weight", D), up("norm.bias", D)
	return m
}

// attnBias returns block (i, j)'s score bias at a map of side s: the
// relative position bias (1, h, N, N), plus the shifted-window mask as
// (nW, h, N, N) when the block shifts there. Built once per map side.
func (m *Model) attnBias(i, j, s int) (bias backend.Tensor, shift int) {
	bl := &m.stages[i].blocks[j]
	ws, shifts := m.cfg.window(s)
	if bl.shifted && shifts {
		shift = ws / 2
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := [3]int{i, j, s}
	if b, ok := m.bias[key]; ok {
		return b, shift
	}
	N, h := ws*ws, bl.heads
	rel := relativeBias(bl.table, ws, h)
	if shift == 0 {
		b := m.be.FromFloat32(rel, 1, h, N, N)
		m.bias[key] = b
		return b, 0
	}
	p := (s + ws - 1) / ws * ws
	mask := shiftMask(p, ws, shift)
	nW := len(mask) / (N * N)
	d := make([]float32, nW*h*N*N)
	for w := 0; w < nW; w++ {
		for hh := 0; hh < h; hh++ {
			dst, r, mk := d[(w*h+hh)*N*N:][:N*N], rel[hh*N*N:][:N*N], mask[w*N*N:][:N*N]
			for k := range dst {
				dst[k] = r[k] + mk[k]
			}
		}
	}
	b := m.be.FromFloat32(d, nW, h, N, N)
	m.bias[key] = b
	return b, shift
}

// zeroRow returns a zero vector of width C (shared, read-only).
func (m *Model) zeroRow(C int) backend.Tensor {
	m.mu.Lock()
	defer m.mu.Unlock()
	if z, ok := m.zeros[C]; ok {
		return z
	}
	z := m.be.Zeros(C)
	m.zeros[C] = z
	return z
}

// Free releases the model's tensors.
func (m *Model) Free() {
	be := m.be
	for _, t := range []backend.Tensor{m.patchW, m.patchB, m.pnormG, m.pnormB, m.normG, m.normB} {
		be.Free(t)
	}
	for _, st := range m.stages {
		for _, b := range st.blocks {
			for _, t := range []backend.Tensor{b.norm1G, b.norm1B, b.qkvW, b.qkvB, b.projW, b.projB, b.norm2G, b.norm2B, b.fc1W, b.fc1B, b.fc2W, b.fc2B} {
				be.Free(t)
			}
		}
		if st.merge != nil {
			be.Free(st.merge.normG)
			be.Free(st.merge.normB)
			be.Free(st.merge.redW)
		}
	}
	m.mu.Lock()
	for _, t := range m.bias {
		be.Free(t)
	}
	for _, t := range m.zeros {
		be.Free(t)
	}
	m.bias, m.zeros, m.rows = map[[3]int]backend.Tensor{}, map[int]backend.Tensor{}, map[rowKey][]int{}
	m.mu.Unlock()
}
