package tower

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/testutil/parity"
)

// TestCLIPFingerprintUnchanged: CLIP fingerprints equal those extract wrote
// into caches before the registry. The golden values were printed by
// stages/extract.Fingerprint as of main at a71ab5e (before extract used this
// package): a change here invalidates every existing CLIP cache.
func TestCLIPFingerprintUnchanged(t *testing.T) {
	weightsFile := testutil.Testdata(t, "clip-tiny/weights_openclip.safetensors")
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{Model: "clip-tiny", Weights: "random:7"}, "sha256:e3a73f675f80d8460c27765f7c5befde7fae8ba5da5ab459733e15dd6c24f3b8"},
		{Spec{Model: "clip-tiny", Weights: weightsFile}, "sha256:85f8fcafb65adaadbcecbf27ab46d4a4ef66a480caae927d3d837cee97198cad"},
		{Spec{Model: "ViT-B-16", Weights: "random:3", Pool: "cls"}, "sha256:82f4f7f56a795fedd52df60970789419c67efa6dee100db60be7d3cbd5e7c6ea"},
	} {
		got, err := Fingerprint(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%+v: fingerprint %s, extract gave %s", c.spec, got, c.want)
		}
	}
}

func randPixels(n, S int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 9))
	px := make([]float32, n*3*S*S)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	return px
}

// TestCLIPRandomIsExtracts: the same fingerprint means the same embeddings:
// random:SEED is NewRandomModel(SEED)'s image tower, as extract builds it.
func TestCLIPRandomIsExtracts(t *testing.T) {
	be := backend.NewCPU()
	tw, err := Load(be, Spec{Model: "clip-tiny", Weights: "random:7"})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Free()
	cfg, _ := clip.Builtin("clip-tiny")
	m := clip.NewRandomModel(be, cfg, 7)
	defer m.Free()
	px := randPixels(3, 32, 1)
	if !slices.Equal(tw.Encode(px, 3), m.Vision.Encode(px, 3)) {
		t.Fatal("random:7 through the registry differs from NewRandomModel(7).Vision")
	}
	pre := imageproc.Describe(imageproc.CLIPPreprocessor(32))
	if want := strings.Join([]string{`{"embed_dim":32`}, ""); !strings.HasPrefix(tw.Describe(), want) || !strings.HasSuffix(tw.Describe(), " weights=random:7 | "+pre) {
		t.Errorf("Describe %q is not extract's manifest line", tw.Describe())
	}
	if tw.Dim() != 32 || tw.ImageSize() != 32 || tw.Family() != CLIP || tw.Pool() != "cls" {
		t.Errorf("dim %d size %d family %s pool %s", tw.Dim(), tw.ImageSize(), tw.Family(), tw.Pool())
	}
}

func TestBuiltinsAndDims(t *testing.T) {
	want := map[string]int{
		"dinov2-vits14": 384, "dinov2-vitb14": 768, "dinov2-vitl14": 1024, "dinov2-vitg14": 1536,
		"dinov2-vits14-reg": 384, "dinov2-vitg14-reg": 1536, "swin-t": 768, "swin-s": 768, "swin-b": 1024,
		"ViT-B-16": 512, "ViT-L-14": 768, "clip-tiny": 32,
	}
	all := Builtins()
	for name, dim := range want {
		if !slices.Contains(all, name) {
			t.Errorf("Builtins lacks %s", name)
		}
		c, err := Resolve(name)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := c.Dim(""); err != nil || d != dim {
			t.Errorf("%s: dim %d, %v; want %d", name, d, err, dim)
		}
		if c.ImageSize() != 224 && name != "clip-tiny" {
			t.Errorf("%s: image size %d", name, c.ImageSize())
		}
		if c.FLOPs() <= 0 || c.BytesPerImage(2) <= 0 {
			t.Errorf("%s: FLOPs %g, bytes %d", name, c.FLOPs(), c.BytesPerImage(2))
		}
	}
	c, _ := Resolve("dinov2-vitb14")
	if d, _ := c.Dim("cls+mean"); d != 1536 {
		t.Errorf("dinov2-vitb14 cls+mean: %d", d)
	}
	if _, err := c.Dim("max"); err == nil || !strings.Contains(err.Error(), "cls or mean or cls+mean") {
		t.Errorf("pool max: %v", err)
	}
	if c.Preprocessor().Resize != 256 || c.Preprocessor().Size != 224 {
		t.Errorf("DINOv2 preprocessing %+v", c.Preprocessor())
	}
	s, _ := Resolve("swin-t")
	if s.Preprocessor().Resize != 232 {
		t.Errorf("Swin-T resize %d", s.Preprocessor().Resize)
	}
	if _, err := Resolve("resnet50"); !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "dinov2-vitb14") {
		t.Errorf("unknown name: %v", err)
	}
	// ViT-B/14 at 224: 12 blocks of 257 tokens, 768 wide: about 2×23.2 GMAC.
	if f := c.FLOPs() / 1e9; math.Abs(f-46.4) > 1.5 {
		t.Errorf("DINOv2-B/14 FLOPs %.1f G, want ≈ 46.4", f)
	}
	if f := s.FLOPs() / 1e9; math.Abs(f-9.0) > 0.6 {
		t.Errorf("Swin-T FLOPs %.1f G, want ≈ 9.0 (4.5 GMAC)", f)
	}
}

// TestResolveFiles: a config file of each form lands in its family.
func TestResolveFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		testutil.Testdata(t, "clip-tiny/open_clip_config.json"):                                                                                  CLIP,
		testutil.Testdata(t, "dinov2-tiny/generator_config.json"):                                                                                DINOv2,
		testutil.Testdata(t, "swin-tiny/generator_config.json"):                                                                                  Swin,
		write("hf.json", `{"model_type": "dinov2", "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6}`):                      DINOv2,
		write("fam.json", `{"family": "swin", "config": {"embed_dim": 8, "depths": [1], "num_heads": [1], "window_size": 2, "image_size": 16}}`): Swin,
	}
	for path, fam := range cases {
		c, err := Resolve(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if c.Family() != fam {
			t.Errorf("%s: family %s, want %s", path, c.Family(), fam)
		}
		back, err := ParseConfig(c.Family(), c.JSON())
		if err != nil || string(back.JSON()) != string(c.JSON()) {
			t.Errorf("%s: canonical JSON does not read back: %v", path, err)
		}
	}
	if _, err := Resolve(write("other.json", `{"layers": [3, 4, 6, 3]}`)); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("a ResNet config: %v", err)
	}
	if _, err := Resolve(write("nofam.json", `{"family": "vit"}`)); err == nil {
		t.Error("family vit accepted")
	}
}

// fixtureConfig is a parity fixture's generator_config.json (a config file
// the registry resolves).
func fixtureConfig(t *testing.T, dir string) string {
	return testutil.Testdata(t, dir+"/generator_config.json")
}

func reference(t *testing.T, path, name string) []float64 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatalf("reference file: %v", err)
	}
	defer f.Close()
	d, _, err := f.Float64(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLoadFixtures: the registry loads the parity fixtures from their
// config files and weights and gives their embeddings (1e-5, the families'
// own parity tolerance; the families' tests measure 2e-7).
func TestLoadFixtures(t *testing.T) {
	be := backend.NewCPU()
	for _, c := range []struct {
		dir, input, want string
		n                int
	}{
		{"dinov2-tiny", "native.pixel_values", "native.x_norm_clstoken", 3},
		{"swin-tiny", "pixel_values", "pooled", 3},
		{"clip-tiny", "pixel_values", "image_embeds", 4},
	} {
		dir := testutil.Testdata(t, c.dir)
		cfgFile, weightsFile := filepath.Join(dir, "generator_config.json"), filepath.Join(dir, "weights.safetensors")
		if c.dir == "clip-tiny" {
			cfgFile, weightsFile = filepath.Join(dir, "open_clip_config.json"), filepath.Join(dir, "weights_hf.safetensors")
		}
		tw, err := Load(be, Spec{Model: cfgFile, Weights: weightsFile})
		if err != nil {
			t.Fatal(err)
		}
		px := parity.ToFloat32(reference(t, filepath.Join(dir, "forward.safetensors"), c.input))
		if e := parity.RelErr(tw.Encode(px, c.n), reference(t, filepath.Join(dir, "forward.safetensors"), c.want)); e > 1e-5 {
			t.Errorf("%s: relative error %.3g", c.dir, e)
		}
		fp, err := Fingerprint(Spec{Model: cfgFile, Weights: weightsFile})
		if err != nil || fp != tw.Fingerprint() {
			t.Errorf("%s: Fingerprint(spec) %s, %v; the loaded tower's %s", c.dir, fp, err, tw.Fingerprint())
		}
		tw.Free()
	}
}

// TestLoadWithFingerprint: a tower loaded with its fingerprint known keeps
// that one (the file is not hashed for another) and embeds as Load's does.
func TestLoadWithFingerprint(t *testing.T) {
	be := backend.NewCPU()
	dir := testutil.Testdata(t, "clip-tiny")
	cfg, err := Resolve(filepath.Join(dir, "open_clip_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	weightsFile := filepath.Join(dir, "weights_hf.safetensors")
	const recorded = "sha256:recorded-elsewhere"
	tw, err := LoadWithFingerprint(be, cfg, weightsFile, "", recorded)
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Free()
	if tw.Fingerprint() != recorded {
		t.Errorf("fingerprint %s, want the recorded %s", tw.Fingerprint(), recorded)
	}
	ref, err := LoadConfig(be, cfg, weightsFile, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Free()
	px := parity.ToFloat32(reference(t, filepath.Join(dir, "forward.safetensors"), "pixel_values"))
	if e := parity.RelErr(tw.Encode(px, 4), reference(t, filepath.Join(dir, "forward.safetensors"), "image_embeds")); e > 1e-5 {
		t.Errorf("relative error %.3g", e)
	}
	if ref.Fingerprint() == recorded {
		t.Error("LoadConfig kept no fingerprint of its own")
	}
	if _, err := LoadWithFingerprint(be, cfg, weightsFile, "", ""); err == nil {
		t.Error("an empty fingerprint accepted")
	}
}

// TestSaveRebuild: a Saved tower rebuilds to identical embeddings and keeps
// its fingerprint, for every family.
func TestSaveRebuild(t *testing.T) {
	be := backend.NewCPU()
	dir := t.TempDir()
	small := filepath.Join(dir, "dino.json")
	os.WriteFile(small, []byte(`{"img_size": 28, "patch_size": 14, "embed_dim": 16, "depth": 2, "num_heads": 2,
		"init_values": 1.0, "num_register_tokens": 2, "ffn_layer": "swiglufused", "image_size": 42}`), 0o644)
	sw := filepath.Join(dir, "swin.json")
	os.WriteFile(sw, []byte(`{"family": "swin", "config": {"embed_dim": 8, "depths": [2, 1], "num_heads": [2, 2], "window_size": 2, "image_size": 24}}`), 0o644)
	for _, spec := range []Spec{
		{Model: "clip-tiny", Weights: "random:5"},
		{Model: small, Weights: "random:5", Pool: "cls+mean"},
		{Model: sw, Weights: "random:5"},
	} {
		tw, err := Load(be, spec)
		if err != nil {
			t.Fatal(err)
		}
		px := randPixels(2, tw.ImageSize(), 4)
		want := tw.Encode(px, 2)
		saved := tw.Save()
		tw.Free()
		back, err := Rebuild(be, saved)
		if err != nil {
			t.Fatalf("%s: %v", saved.Family, err)
		}
		if got := back.Encode(px, 2); !slices.Equal(got, want) {
			t.Errorf("%s: rebuilt tower computes other embeddings", saved.Family)
		}
		if back.Fingerprint() != saved.Fingerprint || back.Pool() != saved.Pool || back.Dim() != len(want)/2 {
			t.Errorf("%s: fingerprint %s pool %s dim %d", saved.Family, back.Fingerprint(), back.Pool(), back.Dim())
		}
		back.Free()
	}
	if _, err := Rebuild(be, Saved{Family: "swin", Config: []byte(`{}`)}); err == nil {
		t.Error("an empty saved tower rebuilt")
	}
}

// TestFingerprintCovers: config, weights, pooling and preprocessing each
// change the fingerprint; the same spec gives the same one.
func TestFingerprintCovers(t *testing.T) {
	fp := func(s Spec) string {
		t.Helper()
		f, err := Fingerprint(s)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	base := Spec{Model: "dinov2-vitb14", Weights: "random:1"}
	a := fp(base)
	if fp(base) != a || fp(Spec{Model: "dinov2-vitb14", Weights: "random:1", Pool: "cls"}) != a {
		t.Error("the same tower, another fingerprint")
	}
	dir := t.TempDir()
	c, _ := Resolve("dinov2-vitb14")
	other := strings.Replace(string(c.JSON()), `"resize_size": 256`, `"resize_size": 288`, 1)
	path := filepath.Join(dir, "b14.json")
	os.WriteFile(path, []byte(other), 0o644)
	wfile := filepath.Join(dir, "w.safetensors")
	os.WriteFile(wfile, []byte("not weights, but bytes to hash"), 0o644)
	seen := map[string]string{a: "base"}
	for what, s := range map[string]Spec{
		"pool":          {Model: "dinov2-vitb14", Weights: "random:1", Pool: "cls+mean"},
		"weights":       {Model: "dinov2-vitb14", Weights: "random:2"},
		"weights file":  {Model: "dinov2-vitb14", Weights: wfile},
		"config":        {Model: "dinov2-vitb14-reg", Weights: "random:1"},
		"preprocessing": {Model: path, Weights: "random:1"},
		"family":        {Model: "swin-b", Weights: "random:1"},
	} {
		f := fp(s)
		if prev, dup := seen[f]; dup {
			t.Errorf("%s gives the fingerprint of %s", what, prev)
		}
		seen[f] = what
	}
	if _, err := Fingerprint(Spec{Model: "swin-t"}); err == nil {
		t.Error("no weights, yet a fingerprint")
	}
	if _, err := Fingerprint(Spec{Model: "swin-t", Weights: "random:x"}); err == nil {
		t.Error("random:x accepted")
	}
}

// TestConfigDescribe: the manifest line written before the tower is built
// is the loaded tower's own, and a refused pooling is refused there too.
func TestConfigDescribe(t *testing.T) {
	be := backend.NewCPU()
	for _, spec := range []Spec{
		{Model: "clip-tiny", Weights: "random:3"},
		{Model: "dinov2-tiny", Weights: "random:3", Pool: "cls+mean"},
		{Model: "swin-tiny", Weights: "random:3"},
	} {
		c, err := Resolve(spec.Model)
		if err != nil {
			t.Fatal(err)
		}
		d, err := c.Describe(spec.Weights, spec.Pool)
		if err != nil {
			t.Fatal(err)
		}
		tw, err := LoadConfig(be, c, spec.Weights, spec.Pool)
		if err != nil {
			t.Fatal(err)
		}
		if d != tw.Describe() {
			t.Errorf("%s: Config.Describe %q, Tower.Describe %q", spec.Model, d, tw.Describe())
		}
		tw.Free()
	}
	c, _ := Resolve("swin-tiny")
	if _, err := c.Describe("random:1", "cls"); err == nil || !strings.Contains(err.Error(), "mean") {
		t.Errorf("swin pool cls: %v", err)
	}
}

// TestLinears: the Linear shapes a tower's GEMM ceiling is timed on carry
// nearly all of Config.FLOPs (the rest: patch embedding, attention scores,
// the projection), and scale with the batch.
func TestLinears(t *testing.T) {
	for name, share := range map[string][2]float64{
		// Measured shares of Config.FLOPs: ViT-B/16 0.953, DINOv2-B/14
		// 0.942, DINOv2-g/14 (SwiGLU) 0.972, Swin-T 0.966 (attention
		// scores and the patch embedding are the rest); ±0.01 around them,
		// so a shape left out fails (Swin's merging, the smallest, is 0.04).
		"ViT-B-16": {0.943, 0.963}, "dinov2-vitb14": {0.932, 0.952}, "dinov2-vitg14": {0.962, 0.982}, "swin-t": {0.956, 0.976},
	} {
		c, err := Resolve(name)
		if err != nil {
			t.Fatal(err)
		}
		var one, four float64
		for _, l := range c.Linears(1) {
			one += l.FLOPs()
		}
		for _, l := range c.Linears(4) {
			four += l.FLOPs()
		}
		if s := one / c.FLOPs(); s < share[0] || s > share[1] {
			t.Errorf("%s: Linears carry %.3f of the FLOPs, want %.2f–%.2f", name, s, share[0], share[1])
		}
		if math.Abs(four/one-4) > 1e-9 {
			t.Errorf("%s: 4 images' Linears are %.3f× one's", name, four/one)
		}
	}
}

func TestShort(t *testing.T) {
	for name, want := range map[string]string{
		"ViT-B-16":          "ViT 224 px /16, width 768, 12 layers",
		"dinov2-vitg14-reg": "DINOv2 224 px /14, width 1536, 40 blocks, 4 registers, SwiGLU",
		"dinov2-tiny":       "DINOv2 56 px /14, width 64, 2 blocks, 4 registers",
		"swin-t":            "Swin 224 px /4, width 96, depths 2-2-6-2, window 7",
	} {
		c, err := Resolve(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Short(); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

// TestEncodeTensor: a tower of every family gives the same embeddings from
// pixels already on its backend (the GPU path's uploaded tensor) as from
// host pixels, with every pooling, and leaves the tensor to the caller.
func TestEncodeTensor(t *testing.T) {
	be := backend.NewCPU()
	for _, c := range []struct{ model, pool string }{
		{"clip-tiny", ""}, {"dinov2-tiny", "cls"}, {"dinov2-tiny", "cls+mean"}, {"swin-tiny", ""},
	} {
		tw, err := Load(be, Spec{Model: c.model, Weights: "random:3", Pool: c.pool})
		if err != nil {
			t.Fatal(err)
		}
		S := tw.ImageSize()
		px := randPixels(3, S, 2)
		dev := be.FromFloat32(px, 3, 3, S, S)
		got := tw.EncodeTensor(dev, 3)
		if !slices.Equal(got, tw.Encode(px, 3)) {
			t.Errorf("%s pool %q: EncodeTensor differs from Encode", c.model, tw.Pool())
		}
		if back := be.ToFloat32(dev, nil); !slices.Equal(back, px) {
			t.Errorf("%s: EncodeTensor changed its input", c.model)
		}
		be.Free(dev)
		tw.Free()
	}
}

// TestDepthLimits: a config asking for more blocks than any tower has (a
// bundle's metadata is outside input) is refused before any table is built.
func TestDepthLimits(t *testing.T) {
	for _, c := range []struct{ family, config string }{
		{CLIP, `{"embed_dim": 8, "vision_cfg": {"image_size": 16, "patch_size": 8, "width": 16, "layers": 1001, "head_width": 8},
			"text_cfg": {"context_length": 4, "vocab_size": 16, "width": 8, "heads": 1, "layers": 1}}`},
		{CLIP, `{"embed_dim": 8, "vision_cfg": {"image_size": 16, "patch_size": 8, "width": 16, "layers": 1, "head_width": 8},
			"text_cfg": {"context_length": 4, "vocab_size": 16, "width": 8, "heads": 1, "layers": 1001}}`},
		{DINOv2, `{"img_size": 28, "patch_size": 14, "embed_dim": 16, "depth": 1001, "num_heads": 2}`},
		{Swin, `{"embed_dim": 8, "depths": [2, 1000], "num_heads": [1, 2], "window_size": 2, "image_size": 32}`},
		{Swin, `{"embed_dim": 8, "depths": [1, 1, 1, 1, 1, 1, 1, 1, 1], "num_heads": [1, 1, 1, 1, 1, 1, 1, 1, 1], "window_size": 2, "image_size": 32}`},
		// An image side the patch grid or position table would grow with as its square.
		{CLIP, `{"embed_dim": 8, "vision_cfg": {"image_size": 4104, "patch_size": 8, "width": 16, "layers": 1, "head_width": 8},
			"text_cfg": {"context_length": 4, "vocab_size": 16, "width": 8, "heads": 1, "layers": 1}}`},
		{DINOv2, `{"img_size": 28, "image_size": 4102, "resize_size": 4102, "patch_size": 14, "embed_dim": 16, "depth": 1, "num_heads": 2}`},
		{Swin, `{"embed_dim": 8, "depths": [2], "num_heads": [1], "window_size": 2, "image_size": 4100, "resize_size": 4100}`},
	} {
		if _, err := ParseConfig(c.family, []byte(c.config)); err == nil {
			t.Errorf("%s: %s accepted", c.family, c.config)
		}
	}
	// One block fewer than the limits is a config.
	if _, err := ParseConfig(DINOv2, []byte(`{"img_size": 28, "patch_size": 14, "embed_dim": 16, "depth": 1000, "num_heads": 2}`)); err != nil {
		t.Errorf("depth 1000: %v", err)
	}
}
