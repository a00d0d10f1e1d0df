package clip

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/weights"
)

// Scheme is a naming scheme of CLIP weights.
type Scheme int

const (
	// OpenCLIP names: visual.conv1.weight, transformer.resblocks.N.attn.in_proj_weight, text_projection (W,E), ...
	OpenCLIP Scheme = iota
	// HF names (transformers' CLIPModel): vision_model.encoder.layers.N.self_attn.q_proj.weight, text_projection.weight (E,W), ...
	HF
)

// String names the scheme.
func (s Scheme) String() string {
	if s == HF {
		return "HF transformers names"
	}
	return "OpenCLIP names"
}

// Source is a set of named tensors weights are read from: a safetensors
// file (weights.Open) or, in tests, a map.
type Source = weights.Source

// WeightsError lists every problem found matching a weights file to a model:
// tensors the model needs that the file lacks, tensors of the file the model
// does not know, tensors whose shape differs, and tensors that cannot be
// read. It is internal/weights' error, the one every tower family reports;
// clip's errors wrap it ("clip: weights … do not fit the model").
type WeightsError = weights.Error

// layout says how the file's tensors become the internal one.
type layout int

const (
	direct     layout = iota // same elements in the same order (possibly another shape)
	transposed               // 2-d file tensor (I,O) → internal (O,I)
	stacked                  // q, k, v files concatenated along dim 0
)

// binding is one row of the mapping table: an internal tensor and the file
// tensors (names and shapes) it is read from in one scheme.
type binding struct {
	ref    paramRef
	names  []string
	shapes [][]int
	layout layout
}

// renames is the mapping table between OpenCLIP and HF names, most specific
// first; "N" stands for a block index. In-projection rows name q; k and v
// follow by replacing "q_proj".
var renames = []struct{ openclip, hf string }{
	{"visual.class_embedding", "vision_model.embeddings.class_embedding"},
	{"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
	{"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
	{"visual.proj", "visual_projection.weight"},
	{"visual.ln_pre.", "vision_model.pre_layrnorm."},
	{"visual.ln_post.", "vision_model.post_layernorm."},
	{"visual.transformer.resblocks.N.", "vision_model.encoder.layers.N."},
	{"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
	{"positional_embedding", "text_model.embeddings.position_embedding.weight"},
	{"transformer.resblocks.N.", "text_model.encoder.layers.N."},
	{"ln_final.", "text_model.final_layer_norm."},
	{"text_projection", "text_projection.weight"},
	{"logit_scale", "logit_scale"},
}

// blockRenames maps names inside a residual block.
var blockRenames = []struct{ openclip, hf string }{
	{"ln_1.", "layer_norm1."},
	{"ln_2.", "layer_norm2."},
	{"attn.in_proj_weight", "self_attn.q_proj.weight"},
	{"attn.in_proj_bias", "self_attn.q_proj.bias"},
	{"attn.out_proj.", "self_attn.out_proj."},
	{"mlp.c_fc.", "mlp.fc1."},
	{"mlp.c_proj.", "mlp.fc2."},
}

// ignorable are buffers some exporters save that carry no weights.
var ignorable = []string{
	"vision_model.embeddings.position_ids",
	"text_model.embeddings.position_ids",
	"attn_mask",
}

// splitBlock splits "visual.transformer.resblocks.3.ln_1.weight" into
// ("visual.transformer.resblocks.N.", "3", "ln_1.weight").
func splitBlock(name, prefix string) (pattern, index, rest string, ok bool) {
	p := strings.TrimSuffix(prefix, "N.")
	if !strings.HasPrefix(name, p) {
		return "", "", "", false
	}
	tail := name[len(p):]
	dot := strings.IndexByte(tail, '.')
	if dot <= 0 {
		return "", "", "", false
	}
	return prefix, tail[:dot], tail[dot+1:], true
}

// hfName translates an OpenCLIP name to its HF name(s): three for a stacked in-projection.
func hfName(openclip string) ([]string, error) {
	for _, r := range renames {
		if strings.HasSuffix(r.openclip, "N.") {
			_, idx, rest, ok := splitBlock(openclip, r.openclip)
			if !ok {
				continue
			}
			hfPrefix := strings.Replace(r.hf, "N.", idx+".", 1)
			for _, br := range blockRenames {
				if !strings.HasPrefix(rest, br.openclip) {
					continue
				}
				name := hfPrefix + br.hf + rest[len(br.openclip):]
				if strings.HasPrefix(br.openclip, "attn.in_proj") {
					return []string{name, strings.Replace(name, "q_proj", "k_proj", 1), strings.Replace(name, "q_proj", "v_proj", 1)}, nil
				}
				return []string{name}, nil
			}
			return nil, fmt.Errorf("clip: no HF name for %s", openclip)
		}
		if openclip == r.openclip || (strings.HasSuffix(r.openclip, ".") && strings.HasPrefix(openclip, r.openclip)) {
			return []string{r.hf + openclip[len(r.openclip):]}, nil
		}
	}
	return nil, fmt.Errorf("clip: no HF name for %s", openclip)
}

// bindings is the mapping table instantiated for a tower's parameters in scheme.
func bindings(ps paramSet, scheme Scheme) ([]binding, error) {
	out := make([]binding, 0, len(ps))
	for _, r := range ps {
		b := binding{ref: r}
		if scheme == OpenCLIP {
			b.names = []string{r.name}
			b.shapes = [][]int{r.openclipShape()}
			if r.transposed {
				b.layout = transposed
			}
			out = append(out, b)
			continue
		}
		names, err := hfName(r.name)
		if err != nil {
			return nil, err
		}
		b.names = names
		// HF keeps projections as Linear weights (the internal layout) and
		// conv1 as a Conv2d weight (OpenCLIP's shape).
		shape := r.shape
		if !r.transposed {
			shape = r.openclipShape()
		}
		if len(names) == 3 {
			b.layout = stacked
			part := slices.Clone(r.shape)
			part[0] /= 3
			b.shapes = [][]int{part, part, part}
		} else {
			b.shapes = [][]int{shape}
		}
		out = append(out, b)
	}
	return out, nil
}

// DetectScheme tells the naming scheme from a file's tensor names.
func DetectScheme(names []string) (Scheme, error) {
	var hf, oc bool
	for _, n := range names {
		switch {
		case slices.Contains(ignorable, n):
		case strings.HasPrefix(n, "vision_model.") || strings.HasPrefix(n, "text_model.") || n == "visual_projection.weight" || n == "text_projection.weight":
			hf = true
		case strings.HasPrefix(n, "visual.") || strings.HasPrefix(n, "transformer.") || n == "token_embedding.weight" || n == "positional_embedding" || n == "text_projection" || strings.HasPrefix(n, "ln_final."):
			oc = true
		}
	}
	switch {
	case hf && oc:
		return 0, errors.New("clip: weights mix OpenCLIP and HF transformers names")
	case hf:
		return HF, nil
	case oc:
		return OpenCLIP, nil
	}
	return 0, errors.New("clip: weights hold neither OpenCLIP nor HF transformers CLIP names")
}

// tower says which part of a CLIP state dict a name belongs to.
func tower(name string) string {
	switch {
	case name == "logit_scale":
		return "logit_scale"
	case strings.HasPrefix(name, "visual.") || strings.HasPrefix(name, "vision_model.") || strings.HasPrefix(name, "visual_projection."):
		return "vision"
	case strings.HasPrefix(name, "text_model.") || strings.HasPrefix(name, "transformer.") || strings.HasPrefix(name, "ln_final.") ||
		strings.HasPrefix(name, "token_embedding.") || strings.HasPrefix(name, "text_projection") || name == "positional_embedding":
		return "text"
	}
	return ""
}

// loadRequest says what to read from a source.
type loadRequest struct {
	sets       []paramSet // towers to fill (their values are allocated here)
	towers     []string   // their namespaces ("vision", "text"); others' tensors are skipped
	needsScale bool       // logit_scale must be present
}

// load fills the requested towers from src, checking every tensor first and
// reporting all problems in one *WeightsError (internal/weights' table
// loader, with logit_scale, optional and of shape [] or [1], checked here).
// It returns logit_scale (and whether the file had it).
func load(be backend.Backend, src Source, label string, req loadRequest) (float32, bool, error) {
	names := src.Names()
	scheme, err := DetectScheme(names)
	if err != nil {
		return 0, false, fmt.Errorf("%w (in %s)", err, label)
	}
	var all []binding
	for _, ps := range req.sets {
		bs, err := bindings(ps, scheme)
		if err != nil {
			return 0, false, err
		}
		all = append(all, bs...)
	}
	table := make([]weights.Binding, len(all))
	for i, b := range all {
		table[i] = weights.Binding{Name: b.ref.name, Shape: b.ref.shape}
		for j, n := range b.names {
			table[i].Parts = append(table[i].Parts, weights.Part{Name: n, Shape: b.shapes[j]})
		}
	}
	known := func(n string) bool {
		if n == "logit_scale" || slices.Contains(ignorable, n) {
			return true
		}
		t := tower(n)
		return t != "" && !slices.Contains(req.towers, t) // the other tower's weights
	}
	werr := weights.Check(src, label, scheme.String(), table, known)
	var scale float32
	shape, hasScale := src.Shape("logit_scale")
	if hasScale {
		if n := numel(shape); n != 1 {
			werr.Misshaped = append(werr.Misshaped, fmt.Sprintf("logit_scale: %v in the file, want [] or [1]", shape))
		} else if d, err := src.Float32("logit_scale"); err != nil {
			werr.Unreadable = append(werr.Unreadable, "logit_scale: "+err.Error())
		} else {
			scale = d[0]
		}
	} else if req.needsScale {
		werr.Missing = append(werr.Missing, "logit_scale")
	}
	if werr.Problems() > 0 {
		return 0, false, fmt.Errorf("clip: %w", werr)
	}
	values, err := weights.Read(src, label, scheme.String(), table)
	if err != nil {
		return 0, false, fmt.Errorf("clip: %w", err)
	}
	for _, b := range all {
		data := values[b.ref.name]
		if b.layout == transposed {
			s := b.shapes[0]
			data = transpose(data, s[0], s[1])
		}
		*b.ref.value = be.FromFloat32(data, b.ref.shape...)
	}
	return scale, hasScale, nil
}

// fileTensor is a tensor as it is written to a file.
type fileTensor struct {
	name  string
	shape []int
	data  []float32
}

// encodeParams is the inverse of load: a tower's tensors under scheme's names and shapes.
func encodeParams(be backend.Backend, ps paramSet, scheme Scheme) ([]fileTensor, error) {
	lts, err := lazyParams(be, ps, scheme)
	if err != nil {
		return nil, err
	}
	out := make([]fileTensor, len(lts))
	for i, lt := range lts {
		out[i] = fileTensor{lt.name, lt.shape, slices.Clone(lt.values())}
	}
	return out, nil
}

// lazyTensor is a file tensor whose values are copied out of the backend
// only when asked for, into buffers shared by the tensors of one call to
// lazyParams: a save then holds one tensor's copy at a time.
type lazyTensor struct {
	name   string
	shape  []int
	values func() []float32 // valid until the next call of any of the set's values
}

// lazyParams is encodeParams without the copies: each tensor is read from
// the backend (and transposed or split) when its values are asked for.
func lazyParams(be backend.Backend, ps paramSet, scheme Scheme) ([]lazyTensor, error) {
	bs, err := bindings(ps, scheme)
	if err != nil {
		return nil, err
	}
	var host, tr []float32 // shared: the backend's copy, and its transpose
	var out []lazyTensor
	for _, b := range bs {
		v := *b.ref.value
		switch b.layout {
		case transposed:
			rows, cols := b.ref.shape[0], b.ref.shape[1]
			out = append(out, lazyTensor{b.names[0], b.shapes[0], func() []float32 {
				host = be.ToFloat32(v, host)
				tr = transposeInto(tr, host, rows, cols)
				return tr
			}})
		case stacked:
			for i := range 3 {
				out = append(out, lazyTensor{b.names[i], b.shapes[i], func() []float32 {
					host = be.ToFloat32(v, host)
					n := len(host) / 3
					return host[i*n : (i+1)*n]
				}})
			}
		default:
			out = append(out, lazyTensor{b.names[0], b.shapes[0], func() []float32 {
				host = be.ToFloat32(v, host)
				return host
			}})
		}
	}
	return out, nil
}

// transpose returns the (cols,rows) transpose of a row-major (rows,cols) matrix.
func transpose(d []float32, rows, cols int) []float32 {
	return transposeInto(nil, d, rows, cols)
}

// transposeInto is transpose into dst when it is large enough.
func transposeInto(dst, d []float32, rows, cols int) []float32 {
	if cap(dst) < len(d) {
		dst = make([]float32, len(d))
	}
	out := dst[:len(d)]
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[c*rows+r] = d[r*cols+c]
		}
	}
	return out
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
