package dinov2

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/litcache/litcache/internal/weights"
)

// Naming schemes of DINOv2 weights.
const (
	// SchemeMeta is facebookresearch/dinov2's state dict (torch.hub
	// checkpoints, timm's vit_*_dinov2): cls_token, pos_embed,
	// blocks.N.attn.qkv, blocks.N.ls1.gamma, …; block_chunks > 0 checkpoints
	// ("blocks.C.N.…") are read too. These are the canonical names.
	SchemeMeta = "Meta DINOv2 names"
	// SchemeHF is HF transformers' Dinov2Model / Dinov2WithRegistersModel:
	// embeddings.*, encoder.layer.N.attention.attention.{query,key,value}, …
	// (a "dinov2." prefix, as Dinov2ForImageClassification saves, is accepted).
	SchemeHF = "HF Dinov2Model names"
)

// param is one canonical tensor: its Meta name and shape.
type param struct {
	name  string
	shape []int
}

// params lists the canonical tensors of c in state-dict order.
func (c Config) params() []param {
	C, P, M, R, F := c.EmbedDim, c.PatchSize, c.Grid(), c.NumRegisterTokens, c.Hidden()
	ps := []param{{"cls_token", []int{1, 1, C}}, {"pos_embed", []int{1, 1 + M*M, C}}}
	if R > 0 {
		ps = append(ps, param{"register_tokens", []int{1, R, C}})
	}
	ps = append(ps, param{"patch_embed.proj.weight", []int{C, 3, P, P}}, param{"patch_embed.proj.bias", []int{C}})
	for i := 0; i < c.Depth; i++ {
		b := fmt.Sprintf("blocks.%d.", i)
		add := func(name string, shape ...int) { ps = append(ps, param{b + name, shape}) }
		add("norm1.weight", C)
		add("norm1.bias", C)
		add("attn.qkv.weight", 3*C, C)
		if c.QKVBias {
			add("attn.qkv.bias", 3*C)
		}
		add("attn.proj.weight", C, C)
		if c.ProjBias {
			add("attn.proj.bias", C)
		}
		if c.LayerScale() {
			add("ls1.gamma", C)
		}
		add("norm2.weight", C)
		add("norm2.bias", C)
		in, out := "mlp.fc1", "mlp.fc2"
		inRows := F
		if c.FFNLayer == FFNSwiGLU {
			in, out, inRows = "mlp.w12", "mlp.w3", 2*F
		}
		add(in+".weight", inRows, C)
		if c.FFNBias {
			add(in+".bias", inRows)
		}
		add(out+".weight", C, F)
		if c.FFNBias {
			add(out+".bias", C)
		}
		if c.LayerScale() {
			add("ls2.gamma", C)
		}
	}
	return append(ps, param{"norm.weight", []int{C}}, param{"norm.bias", []int{C}})
}

// hfRenames maps Meta names to HF names, most specific first; in block
// names "N" stands for the index. q, k, v are handled apart (one qkv from three).
var hfRenames = []struct{ meta, hf string }{
	{"cls_token", "embeddings.cls_token"},
	{"pos_embed", "embeddings.position_embeddings"},
	{"register_tokens", "embeddings.register_tokens"},
	{"patch_embed.proj.", "embeddings.patch_embeddings.projection."},
	{"norm.", "layernorm."},
	{"blocks.N.norm1.", "encoder.layer.N.norm1."},
	{"blocks.N.attn.proj.", "encoder.layer.N.attention.output.dense."},
	{"blocks.N.ls1.gamma", "encoder.layer.N.layer_scale1.lambda1"},
	{"blocks.N.norm2.", "encoder.layer.N.norm2."},
	{"blocks.N.mlp.fc1.", "encoder.layer.N.mlp.fc1."},
	{"blocks.N.mlp.fc2.", "encoder.layer.N.mlp.fc2."},
	{"blocks.N.mlp.w12.", "encoder.layer.N.mlp.weights_in."},
	{"blocks.N.mlp.w3.", "encoder.layer.N.mlp.weights_out."},
	{"blocks.N.ls2.gamma", "encoder.layer.N.layer_scale2.lambda1"},
}

var blockIndex = regexp.MustCompile(`^blocks\.(\d+)\.`)

// hfName is the HF name of a Meta name ("" when the table has none).
func hfName(meta string) string {
	idx := ""
	pattern := meta
	if m := blockIndex.FindStringSubmatch(meta); m != nil {
		idx = m[1]
		pattern = "blocks.N." + meta[len(m[0]):]
	}
	for _, r := range hfRenames {
		if pattern == r.meta || (strings.HasSuffix(r.meta, ".") && strings.HasPrefix(pattern, r.meta)) {
			return strings.Replace(r.hf, "N.", idx+".", 1) + pattern[len(r.meta):]
		}
	}
	return ""
}

// table is the mapping table of c in scheme: one binding per canonical tensor.
func (c Config) table(scheme string) ([]weights.Binding, error) {
	var out []weights.Binding
	for _, p := range c.params() {
		if scheme == SchemeMeta {
			out = append(out, weights.One(p.name, p.shape, p.name, nil))
			continue
		}
		if strings.HasSuffix(p.name, ".attn.qkv.weight") || strings.HasSuffix(p.name, ".attn.qkv.bias") {
			idx := blockIndex.FindStringSubmatch(p.name)[1]
			kind := p.name[strings.LastIndexByte(p.name, '.')+1:] // weight or bias
			part := append([]int{p.shape[0] / 3}, p.shape[1:]...)
			b := weights.Binding{Name: p.name, Shape: p.shape}
			for _, qkv := range []string{"query", "key", "value"} {
				b.Parts = append(b.Parts, weights.Part{Name: fmt.Sprintf("encoder.layer.%s.attention.attention.%s.%s", idx, qkv, kind), Shape: part})
			}
			out = append(out, b)
			continue
		}
		hf := hfName(p.name)
		if hf == "" {
			return nil, errorf("no HF name for %s", p.name)
		}
		out = append(out, weights.One(p.name, p.shape, hf, nil))
	}
	return out, nil
}

// known are tensors a file may hold that the tower does not use: the mask
// token (masked training only) and heads of classification checkpoints.
func known(name string) bool {
	switch {
	case name == "mask_token", name == "embeddings.mask_token":
		return true
	case strings.HasPrefix(name, "head."), strings.HasPrefix(name, "classifier."):
		return true
	}
	return false
}

var chunked = regexp.MustCompile(`^blocks\.\d+\.(\d+\.)`)

// DetectScheme tells the naming scheme of a file from its names and returns
// the source to read, with Meta's chunked block names ("blocks.C.N.") and
// HF's "dinov2." prefix taken off.
func DetectScheme(src weights.Source) (string, weights.Source, error) {
	var meta, hf, isChunked, prefixed bool
	for _, n := range src.Names() {
		switch {
		case strings.HasPrefix(n, "dinov2."):
			prefixed, hf = true, true
		case strings.HasPrefix(n, "embeddings.") || strings.HasPrefix(n, "encoder.layer.") || strings.HasPrefix(n, "layernorm."):
			hf = true
		case n == "cls_token" || n == "pos_embed" || strings.HasPrefix(n, "blocks.") || strings.HasPrefix(n, "patch_embed."):
			meta = true
			if chunked.MatchString(n) {
				isChunked = true
			}
		}
	}
	switch {
	case meta && hf:
		return "", nil, errorf("weights mix Meta and HF transformers DINOv2 names")
	case hf:
		if prefixed {
			src = weights.Renamed(src, func(n string) string { return strings.TrimPrefix(n, "dinov2.") })
		}
		return SchemeHF, src, nil
	case meta:
		if isChunked {
			// BlockChunk pads each chunk with Identity modules so that a
			// block keeps its global index: blocks.C.N. is block N.
			src = weights.Renamed(src, func(n string) string { return chunked.ReplaceAllString(n, "blocks.$1") })
		}
		return SchemeMeta, src, nil
	}
	return "", nil, errorf("weights hold neither Meta nor HF transformers DINOv2 names")
}

// readWeights reads c's canonical tensors from src under any scheme.
func readWeights(c Config, src weights.Source, label string) (map[string][]float32, error) {
	scheme, src, err := DetectScheme(src)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, label)
	}
	table, err := c.table(scheme)
	if err != nil {
		return nil, err
	}
	got, err := weights.Load(src, label, scheme, table, known)
	if err != nil {
		return nil, fmt.Errorf("dinov2: %w", err)
	}
	return got, nil
}
