package clip

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/safetensors"
)

// TestSaveTextTowerRoundTrip: export → import is exact, with OpenCLIP names
// and shapes in the file and the config beside it.
func TestSaveTextTowerRoundTrip(t *testing.T) {
	be := backend.NewCPU()
	cfg := tinyConfig(t)
	tt := NewRandomTextTower(be, cfg, 3)
	dir := t.TempDir()
	path := filepath.Join(dir, "open_clip_model.safetensors")
	if err := SaveTextTower(path, cfg, tt, 2.5); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTextTower(be, cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, be, tt.ps, got.ps)
	scale, ok, err := ReadLogitScale(path)
	if err != nil || !ok || scale != 2.5 {
		t.Errorf("logit_scale %g %v %v, want 2.5", scale, ok, err)
	}
	cfg2, err := LoadConfig(filepath.Join(dir, ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, cfg2) {
		t.Errorf("config %+v read back as %+v", cfg, cfg2)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, ok := f.Info("text_projection")
	if !ok || !reflect.DeepEqual(info.Shape, []int{cfg.Text.Width, cfg.EmbedDim}) || info.DType != "F32" {
		t.Errorf("text_projection stored as %+v, want F32 [W E] as OpenCLIP", info)
	}
	for _, n := range f.Names() {
		if strings.HasPrefix(n, "visual") {
			t.Errorf("text tower file holds %s", n)
		}
	}
}

// TestSaveModelRoundTrip: a whole model saved under either scheme loads back exactly.
func TestSaveModelRoundTrip(t *testing.T) {
	be := backend.NewCPU()
	cfg := tinyConfig(t)
	m := NewRandomModel(be, cfg, 11)
	for _, scheme := range []Scheme{OpenCLIP, HF} {
		t.Run(scheme.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.safetensors")
			if err := SaveModel(path, m, scheme); err != nil {
				t.Fatal(err)
			}
			got, err := LoadModel(be, cfg, path)
			if err != nil {
				t.Fatal(err)
			}
			sameParams(t, be, m.Vision.ps, got.Vision.ps)
			sameParams(t, be, m.Text.ps, got.Text.ps)
			vt, err := LoadVisionTower(be, cfg, path)
			if err != nil {
				t.Fatal(err)
			}
			sameParams(t, be, m.Vision.ps, vt.ps)
		})
	}
}

// TestReadContents tells a full model from a text tower alone, and a full
// model from towers on two backends keeps each tower's values and the extra
// metadata.
func TestReadContents(t *testing.T) {
	cfg := tinyConfig(t)
	dir := t.TempDir()
	vision, text := backend.NewCPU(), backend.NewCPU()
	vm, tm := NewRandomModel(vision, cfg, 1), NewRandomModel(text, cfg, 2)
	full := filepath.Join(dir, "full", "open_clip_model.safetensors")
	os.MkdirAll(filepath.Dir(full), 0o755)
	m := &Model{Config: cfg, Vision: vm.Vision, Text: tm.Text, LogitScale: 3}
	if err := SaveModelMeta(full, m, OpenCLIP, map[string]string{MetaImageFingerprint: "sha256:x"}); err != nil {
		t.Fatal(err)
	}
	textOnly := filepath.Join(dir, "text", "open_clip_model.safetensors")
	os.MkdirAll(filepath.Dir(textOnly), 0o755)
	if err := SaveTextTower(textOnly, cfg, tm.Text, 3); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path         string
		vision, text bool
	}{{full, true, true}, {textOnly, false, true}} {
		c, err := ReadContents(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Vision != tc.vision || c.Text != tc.text || !c.LogitScale {
			t.Errorf("%s: %+v, want vision %v text %v and logit_scale", tc.path, c, tc.vision, tc.text)
		}
	}
	c, _ := ReadContents(full)
	if c.Metadata[MetaImageFingerprint] != "sha256:x" || c.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", c.Metadata)
	}
	got, err := LoadModel(backend.NewCPU(), cfg, full)
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, got.Vision.be, vm.Vision.ps, got.Vision.ps)
	sameParams(t, got.Text.be, tm.Text.ps, got.Text.ps)
	if _, err := ReadContents(filepath.Join(dir, "nope")); err == nil {
		t.Error("a missing file read")
	}
}

func TestVisionFingerprint(t *testing.T) {
	cfg := tinyConfig(t)
	dir := t.TempDir()
	w1, w2 := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(w1, []byte("weights one"), 0o644)
	os.WriteFile(w2, []byte("weights two"), 0o644)
	fp := func(c Config, w string) string {
		t.Helper()
		s, err := VisionFingerprint(c, w)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other := cfg
	other.Vision.Layers++
	base := fp(cfg, w1)
	if !strings.HasPrefix(base, "sha256:") || len(base) != len("sha256:")+64 {
		t.Errorf("fingerprint %q", base)
	}
	for _, tc := range []struct {
		name string
		got  string
		same bool
	}{
		{"same inputs", fp(cfg, w1), true},
		{"other weights", fp(cfg, w2), false},
		{"other config", fp(other, w1), false},
		{"random", fp(cfg, RandomWeights(1)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.got == base) != tc.same {
				t.Errorf("%s vs %s", tc.got, base)
			}
		})
	}
	if fp(cfg, RandomWeights(1)) == fp(cfg, RandomWeights(2)) {
		t.Error("random seeds share a fingerprint")
	}
	for _, bad := range []string{"", "random:x", filepath.Join(dir, "absent")} {
		if _, err := VisionFingerprint(cfg, bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestLoadOtherDTypes: weights stored as F16, BF16 or F64 load, converted to
// float32 (to within the storage type's rounding).
func TestLoadOtherDTypes(t *testing.T) {
	be := backend.NewCPU()
	cfg := tinyConfig(t)
	m := NewRandomModel(be, cfg, 5)
	for _, tc := range []struct {
		dtype string
		conv  func(name string, shape []int, d []float32) safetensors.Tensor
		tol   float64 // relative, per element, of the storage type
		abs   float64 // F16's subnormal step below 2^-14
	}{
		{"F16", safetensors.F16, 1e-3, 6e-8},
		{"BF16", safetensors.BF16, 8e-3, 0},
		{"F64", func(name string, shape []int, d []float32) safetensors.Tensor {
			return safetensors.F64(name, shape, toF64(d))
		}, 0, 0},
	} {
		t.Run(tc.dtype, func(t *testing.T) {
			var ts []safetensors.Tensor
			for _, ps := range []paramSet{m.Vision.ps, m.Text.ps} {
				fts, err := encodeParams(be, ps, HF)
				if err != nil {
					t.Fatal(err)
				}
				for _, ft := range fts {
					ts = append(ts, tc.conv(ft.name, ft.shape, ft.data))
				}
			}
			ts = append(ts, tc.conv("logit_scale", []int{}, []float32{m.LogitScale}))
			path := filepath.Join(t.TempDir(), "w.safetensors")
			if err := safetensors.Write(path, ts, nil); err != nil {
				t.Fatal(err)
			}
			got, err := LoadModel(be, cfg, path)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range m.Text.ps {
				a, b := be.ToFloat32(*r.value, nil), be.ToFloat32(*got.Text.ps[i].value, nil)
				for j := range a {
					if d := math.Abs(float64(a[j] - b[j])); d > tc.tol*math.Abs(float64(a[j]))+tc.abs {
						t.Fatalf("%s[%d]: %g stored as %s reads %g", r.name, j, a[j], tc.dtype, b[j])
					}
				}
			}
		})
	}
}
