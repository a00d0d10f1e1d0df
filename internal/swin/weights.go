package swin

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/weights"
)

// Naming schemes of Swin weights.
const (
	// SchemeTorchvision is torchvision's SwinTransformer state dict:
	// features.0.{0,2} (patch conv, its norm), features.{2i+1}.N.* (stage i's
	// blocks), features.{2i+2}.{reduction,norm} (patch merging), norm, head.
	// These are the canonical names.
	SchemeTorchvision = "torchvision Swin names"
	// SchemeTimm is timm's SwinTransformer: patch_embed.*, layers.i.blocks.N.*
	// (mlp.fc1, mlp.fc2), layers.i.downsample.* (at the end of stage i in
	// timm < 0.9, at the start of stage i+1 from 0.9 on), norm, head or head.fc.
	SchemeTimm = "timm Swin names"
)

type param struct {
	name  string
	shape []int
}

// relIndexName is the buffer torchvision saves beside each table; it is
// checked against the index this package computes, never trusted.
const relIndexName = "attn.relative_position_index"

// params lists the canonical tensors of c in state-dict order.
func (c Config) params() []param {
	P, E, ws := c.PatchSize, c.EmbedDim, c.WindowSize
	ps := []param{
		{"features.0.0.weight", []int{E, 3, P, P}}, {"features.0.0.bias", []int{E}},
		{"features.0.2.weight", []int{E}}, {"features.0.2.bias", []int{E}},
	}
	for i, d := range c.Depths {
		C, F, h := c.StageDim(i), c.Hidden(i), c.NumHeads[i]
		for j := 0; j < d; j++ {
			b := fmt.Sprintf("features.%d.%d.", 2*i+1, j)
			add := func(name string, shape ...int) { ps = append(ps, param{b + name, shape}) }
			add("norm1.weight", C)
			add("norm1.bias", C)
			add("attn.qkv.weight", 3*C, C)
			add("attn.qkv.bias", 3*C)
			add("attn.proj.weight", C, C)
			add("attn.proj.bias", C)
			add("attn.relative_position_bias_table", (2*ws-1)*(2*ws-1), h)
			add("norm2.weight", C)
			add("norm2.bias", C)
			add("mlp.0.weight", F, C)
			add("mlp.0.bias", F)
			add("mlp.3.weight", C, F)
			add("mlp.3.bias", C)
		}
		if i < len(c.Depths)-1 {
			m := fmt.Sprintf("features.%d.", 2*i+2)
			ps = append(ps, param{m + "reduction.weight", []int{2 * C, 4 * C}},
				param{m + "norm.weight", []int{4 * C}}, param{m + "norm.bias", []int{4 * C}})
		}
	}
	D := c.Dim()
	return append(ps, param{"norm.weight", []int{D}}, param{"norm.bias", []int{D}})
}

var (
	tvBlock = regexp.MustCompile(`^features\.(\d+)\.(\d+)\.(.*)$`)
	tvMerge = regexp.MustCompile(`^features\.(\d+)\.(reduction\.weight|norm\.weight|norm\.bias)$`)
)

// timmName is the timm name of a torchvision name; newDownsample puts the
// merging layers at the start of the next stage (timm ≥ 0.9).
func timmName(tv string, newDownsample bool) string {
	switch {
	case strings.HasPrefix(tv, "features.0.0."):
		return "patch_embed.proj." + strings.TrimPrefix(tv, "features.0.0.")
	case strings.HasPrefix(tv, "features.0.2."):
		return "patch_embed.norm." + strings.TrimPrefix(tv, "features.0.2.")
	case tv == "norm.weight", tv == "norm.bias":
		return tv
	}
	if m := tvMerge.FindStringSubmatch(tv); m != nil {
		f, _ := strconv.Atoi(m[1])
		stage := (f - 2) / 2
		if newDownsample {
			stage++
		}
		return fmt.Sprintf("layers.%d.downsample.%s", stage, m[2])
	}
	if m := tvBlock.FindStringSubmatch(tv); m != nil {
		f, _ := strconv.Atoi(m[1])
		rest := strings.NewReplacer("mlp.0.", "mlp.fc1.", "mlp.3.", "mlp.fc2.").Replace(m[3])
		return fmt.Sprintf("layers.%d.blocks.%s.%s", (f-1)/2, m[2], rest)
	}
	return ""
}

// table is c's mapping table in scheme.
func (c Config) table(scheme string, newDownsample bool) ([]weights.Binding, error) {
	var out []weights.Binding
	for _, p := range c.params() {
		n := p.name
		if scheme == SchemeTimm {
			if n = timmName(p.name, newDownsample); n == "" {
				return nil, errorf("no timm name for %s", p.name)
			}
		}
		out = append(out, weights.One(p.name, p.shape, n, nil))
	}
	return out, nil
}

// known are tensors a file may hold that the tower does not use or checks
// apart: the classifier head, the relative position indexes, and the
// attention masks old timm versions saved.
func known(name string) bool {
	switch {
	case name == "head.weight", name == "head.bias", strings.HasPrefix(name, "head.fc."):
		return true
	case strings.HasSuffix(name, relIndexName), strings.HasSuffix(name, ".attn_mask"):
		return true
	}
	return false
}

// DetectScheme tells the naming scheme from a file's names; for timm it also
// tells where the merging layers are.
func DetectScheme(names []string) (scheme string, newDownsample bool, err error) {
	var tv, timm, oldDS, newDS bool
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "features."):
			tv = true
		case strings.HasPrefix(n, "patch_embed.") || strings.HasPrefix(n, "layers."):
			timm = true
			if strings.HasPrefix(n, "layers.0.downsample.") {
				oldDS = true
			}
			if strings.Contains(n, ".downsample.") && !strings.HasPrefix(n, "layers.0.") {
				newDS = true
			}
		}
	}
	switch {
	case tv && timm:
		return "", false, errorf("weights mix torchvision and timm Swin names")
	case tv:
		return SchemeTorchvision, false, nil
	case timm:
		if oldDS {
			// old timm: layers.0..n-2 downsample; the last has none.
			return SchemeTimm, false, nil
		}
		return SchemeTimm, newDS, nil
	}
	return "", false, errorf("weights hold neither torchvision nor timm Swin names")
}

// readWeights reads c's canonical tensors and checks any saved relative
// position index against the computed one.
func readWeights(c Config, src weights.Source, label string) (map[string][]float32, error) {
	scheme, newDS, err := DetectScheme(src.Names())
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, label)
	}
	table, err := c.table(scheme, newDS)
	if err != nil {
		return nil, err
	}
	got, err := weights.Load(src, label, scheme, table, known)
	if err != nil {
		return nil, fmt.Errorf("swin: %w", err)
	}
	if err := checkRelIndex(c, src, label); err != nil {
		return nil, err
	}
	return got, nil
}

// checkRelIndex compares every saved relative_position_index with the
// computed one: a file from a model with another window layout is refused.
func checkRelIndex(c Config, src weights.Source, label string) error {
	is, ok := src.(weights.IntSource)
	if !ok {
		return nil
	}
	want := relativePositionIndex(c.WindowSize)
	for _, n := range src.Names() {
		if !strings.HasSuffix(n, relIndexName) {
			continue
		}
		got, err := is.Int64s(n)
		if err != nil {
			return errorf("weights %s: %s: %w", label, n, err)
		}
		if len(got) != len(want) {
			return errorf("weights %s: %s holds %d entries, window %d needs %d", label, n, len(got), c.WindowSize, len(want))
		}
		for i, v := range got {
			if int(v) != want[i] {
				return errorf("weights %s: %s differs from the index of a %d×%d window at entry %d (%d, want %d)", label, n, c.WindowSize, c.WindowSize, i, v, want[i])
			}
		}
	}
	return nil
}
