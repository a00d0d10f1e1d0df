package clip

import (
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
