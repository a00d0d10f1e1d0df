package clip

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

// fakeSource is a Source over a map: the mapping table tested without files.
type fakeSource struct {
	order   []string
	tensors map[string]fileTensor
}

func newFakeSource(fts []fileTensor) *fakeSource {
	s := &fakeSource{tensors: map[string]fileTensor{}}
	for _, ft := range fts {
		s.order = append(s.order, ft.name)
		s.tensors[ft.name] = ft
	}
	return s
}

func (s *fakeSource) Names() []string { return slices.Clone(s.order) }
func (s *fakeSource) Shape(name string) ([]int, bool) {
	ft, ok := s.tensors[name]
	return ft.shape, ok
}
func (s *fakeSource) Float32(name string) ([]float32, error) {
	ft, ok := s.tensors[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	return slices.Clone(ft.data), nil
}
func (s *fakeSource) remove(name string) {
	delete(s.tensors, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
}
func (s *fakeSource) set(ft fileTensor) {
	if _, ok := s.tensors[ft.name]; !ok {
		s.order = append(s.order, ft.name)
	}
	s.tensors[ft.name] = ft
}

// modelSource encodes a model's tensors under scheme's names.
func modelSource(t *testing.T, m *Model, scheme Scheme) *fakeSource {
	t.Helper()
	var all []fileTensor
	for _, ps := range []paramSet{m.Vision.ps, m.Text.ps} {
		fts, err := encodeParams(m.Vision.be, ps, scheme)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, fts...)
	}
	all = append(all, fileTensor{"logit_scale", []int{}, []float32{m.LogitScale}})
	return newFakeSource(all)
}

// sameParams fails unless both sets hold bit-identical tensors.
func sameParams(t *testing.T, be backend.Backend, a, b paramSet) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d params vs %d", len(a), len(b))
	}
	for i := range a {
		if a[i].name != b[i].name {
			t.Fatalf("param %d: %s vs %s", i, a[i].name, b[i].name)
		}
		x, y := be.ToFloat32(*a[i].value, nil), be.ToFloat32(*b[i].value, nil)
		if !slices.Equal(x, y) || !slices.Equal((*a[i].value).Shape(), (*b[i].value).Shape()) {
			t.Errorf("%s differs", a[i].name)
		}
	}
}

func tinyConfig(t *testing.T) Config {
	c, ok := Builtin("clip-tiny")
	if !ok {
		t.Fatal("no clip-tiny")
	}
	return c
}

func TestHFNames(t *testing.T) {
	for _, tc := range []struct {
		openclip string
		hf       []string
	}{
		{"visual.class_embedding", []string{"vision_model.embeddings.class_embedding"}},
		{"visual.conv1.weight", []string{"vision_model.embeddings.patch_embedding.weight"}},
		{"visual.positional_embedding", []string{"vision_model.embeddings.position_embedding.weight"}},
		{"visual.ln_pre.bias", []string{"vision_model.pre_layrnorm.bias"}},
		{"visual.ln_post.weight", []string{"vision_model.post_layernorm.weight"}},
		{"visual.proj", []string{"visual_projection.weight"}},
		{"visual.transformer.resblocks.11.attn.in_proj_weight", []string{
			"vision_model.encoder.layers.11.self_attn.q_proj.weight",
			"vision_model.encoder.layers.11.self_attn.k_proj.weight",
			"vision_model.encoder.layers.11.self_attn.v_proj.weight"}},
		{"visual.transformer.resblocks.0.mlp.c_proj.bias", []string{"vision_model.encoder.layers.0.mlp.fc2.bias"}},
		{"token_embedding.weight", []string{"text_model.embeddings.token_embedding.weight"}},
		{"positional_embedding", []string{"text_model.embeddings.position_embedding.weight"}},
		{"transformer.resblocks.3.attn.in_proj_bias", []string{
			"text_model.encoder.layers.3.self_attn.q_proj.bias",
			"text_model.encoder.layers.3.self_attn.k_proj.bias",
			"text_model.encoder.layers.3.self_attn.v_proj.bias"}},
		{"transformer.resblocks.3.attn.out_proj.weight", []string{"text_model.encoder.layers.3.self_attn.out_proj.weight"}},
		{"transformer.resblocks.3.ln_2.weight", []string{"text_model.encoder.layers.3.layer_norm2.weight"}},
		{"transformer.resblocks.3.mlp.c_fc.weight", []string{"text_model.encoder.layers.3.mlp.fc1.weight"}},
		{"ln_final.bias", []string{"text_model.final_layer_norm.bias"}},
		{"text_projection", []string{"text_projection.weight"}},
	} {
		t.Run(tc.openclip, func(t *testing.T) {
			got, err := hfName(tc.openclip)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.hf) {
				t.Errorf("got %v, want %v", got, tc.hf)
			}
		})
	}
	if _, err := hfName("visual.transformer.resblocks.0.attn.nope"); err == nil {
		t.Error("unknown block tensor mapped")
	}
}

func TestDetectScheme(t *testing.T) {
	for _, tc := range []struct {
		name    string
		names   []string
		want    Scheme
		wantErr string
	}{
		{"openclip", []string{"visual.conv1.weight", "logit_scale"}, OpenCLIP, ""},
		{"openclip text only", []string{"token_embedding.weight", "text_projection"}, OpenCLIP, ""},
		{"hf", []string{"text_model.embeddings.token_embedding.weight", "logit_scale"}, HF, ""},
		{"mixed", []string{"visual.conv1.weight", "text_model.final_layer_norm.bias"}, 0, "mix"},
		{"neither", []string{"encoder.weight"}, 0, "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DetectScheme(tc.names)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestLoadRoundTrip: a random model encoded under either scheme loads back bit for bit.
func TestLoadRoundTrip(t *testing.T) {
	be := backend.NewCPU()
	cfg := tinyConfig(t)
	m := NewRandomModel(be, cfg, 7)
	for _, scheme := range []Scheme{OpenCLIP, HF} {
		t.Run(scheme.String(), func(t *testing.T) {
			got, err := LoadModelFrom(be, cfg, modelSource(t, m, scheme), "fake")
			if err != nil {
				t.Fatal(err)
			}
			sameParams(t, be, m.Vision.ps, got.Vision.ps)
			sameParams(t, be, m.Text.ps, got.Text.ps)
			if got.LogitScale != m.LogitScale {
				t.Errorf("logit_scale %g, want %g", got.LogitScale, m.LogitScale)
			}
			tt, err := LoadTextTowerFrom(be, cfg, modelSource(t, m, scheme), "fake")
			if err != nil {
				t.Fatalf("text tower from a full model: %v", err)
			}
			sameParams(t, be, m.Text.ps, tt.ps)
		})
	}
}

// TestLoadProblems: every missing, unexpected and mis-shaped tensor is named in one error.
func TestLoadProblems(t *testing.T) {
	be := backend.NewCPU()
	cfg := tinyConfig(t)
	m := NewRandomModel(be, cfg, 1)
	for _, tc := range []struct {
		scheme  Scheme
		missing []string
		extra   string
		reshape string
	}{
		{OpenCLIP, []string{"visual.ln_post.bias", "transformer.resblocks.1.mlp.c_fc.weight"}, "visual.head.weight", "text_projection"},
		{HF, []string{"vision_model.encoder.layers.0.self_attn.k_proj.weight", "logit_scale"}, "text_model.pooler.weight", "vision_model.embeddings.patch_embedding.weight"},
	} {
		t.Run(tc.scheme.String(), func(t *testing.T) {
			src := modelSource(t, m, tc.scheme)
			for _, n := range tc.missing {
				src.remove(n)
			}
			src.set(fileTensor{tc.extra, []int{2}, []float32{1, 2}})
			ft := src.tensors[tc.reshape]
			ft.shape = []int{ft.shape[0], 1, len(ft.data) / ft.shape[0]}
			src.set(ft)
			// Ignorable buffers are not problems.
			src.set(fileTensor{"text_model.embeddings.position_ids", []int{1, 16}, make([]float32, 16)})
			_, err := LoadModelFrom(be, cfg, src, "bad.safetensors")
			var werr *WeightsError
			if !errors.As(err, &werr) {
				t.Fatalf("error %v, want *WeightsError", err)
			}
			msg := err.Error()
			t.Log(msg)
			for _, n := range tc.missing {
				if !slices.Contains(werr.Missing, n) || !strings.Contains(msg, "missing "+n) {
					t.Errorf("missing %s not reported", n)
				}
			}
			if !slices.Equal(werr.Unexpected, []string{tc.extra}) {
				t.Errorf("unexpected %v, want [%s]", werr.Unexpected, tc.extra)
			}
			if len(werr.Misshaped) != 1 || !strings.HasPrefix(werr.Misshaped[0], tc.reshape+":") {
				t.Errorf("mis-shaped %v, want %s", werr.Misshaped, tc.reshape)
			}
			if !strings.Contains(msg, "bad.safetensors") {
				t.Error("error does not name the file")
			}
		})
	}
}

// TestFixtureWeightFilesAgree: the fixture's HF and OpenCLIP files load to the
// same tensors bit for bit (transposes and q/k/v stacking are exact).
func TestFixtureWeightFilesAgree(t *testing.T) {
	dir, cfg := fixtureConfig(t)
	be := backend.NewCPU()
	a, err := LoadModel(be, cfg, filepath.Join(dir, "weights_hf.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadModel(be, cfg, filepath.Join(dir, "weights_openclip.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, be, a.Vision.ps, b.Vision.ps)
	sameParams(t, be, a.Text.ps, b.Text.ps)
	if a.LogitScale != b.LogitScale {
		t.Errorf("logit_scale %g vs %g", a.LogitScale, b.LogitScale)
	}
}

func TestLoadWrongConfig(t *testing.T) {
	dir, cfg := fixtureConfig(t)
	cfg.Text.Layers++ // the file has one block too few
	cfg.EmbedDim *= 2 // and other projections
	_, err := LoadModel(backend.NewCPU(), cfg, filepath.Join(dir, "weights_openclip.safetensors"))
	var werr *WeightsError
	if !errors.As(err, &werr) {
		t.Fatalf("error %v, want *WeightsError", err)
	}
	if len(werr.Missing) != 12 || len(werr.Misshaped) != 2 {
		t.Errorf("missing %d (want the 12 tensors of a block), mis-shaped %v (want both projections)", len(werr.Missing), werr.Misshaped)
	}
}

// FuzzLoadNames feeds the loader a clip-tiny state dict whose names and
// shapes the fuzzer edits (names come from the file: outside bytes). The
// loader must never panic, and must either load or explain itself.
func FuzzLoadNames(f *testing.F) {
	f.Add(uint8(0), "visual.head.weight", uint8(2), false)
	f.Add(uint8(3), "text_model.embeddings.position_ids", uint8(1), false)
	f.Add(uint8(7), "transformer.resblocks.9.ln_1.weight", uint8(0), true)
	f.Add(uint8(200), "vision_model.encoder.layers.0.self_attn.q_proj.weight", uint8(3), true)
	f.Add(uint8(1), "", uint8(0), false)
	be := backend.NewCPU()
	cfg, _ := Builtin("clip-tiny")
	m := NewRandomModel(be, cfg, 1)
	var base []fileTensor
	for _, ps := range []paramSet{m.Vision.ps, m.Text.ps} {
		fts, err := encodeParams(be, ps, OpenCLIP)
		if err != nil {
			f.Fatal(err)
		}
		base = append(base, fts...)
	}
	f.Fuzz(func(t *testing.T, which uint8, name string, dims uint8, rename bool) {
		fts := slices.Clone(base)
		i := int(which) % len(fts)
		ft := fts[i]
		if rename {
			ft.name = name
		} else {
			fts = append(fts, fileTensor{name, []int{1}, []float32{1}})
		}
		switch dims % 4 {
		case 1:
			ft.shape = []int{len(ft.data)}
		case 2:
			ft.shape = []int{1, len(ft.data)}
		}
		fts[i] = ft
		src := newFakeSource(fts)
		got, err := LoadModelFrom(be, cfg, src, "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "clip: ") {
				t.Fatalf("error without the package: %v", err)
			}
			return
		}
		got.Free()
	})
}
