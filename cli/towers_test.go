package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/dinov2"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

// TestEmbedDINOv2Image: `embed --image` through a DINOv2 tower gives the
// embedding dinov2's own model makes of the image after DINOv2's eval
// transform, with the pooling asked; texts are refused (no text tower).
func TestEmbedDINOv2Image(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "bird.jpg")
	jpg, err := imageproc.EncodeJPEG(imageproc.TestPattern(90, 70, 3), 90)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(img, jpg, 0o644)
	out := filepath.Join(dir, "out.safetensors")
	if msg, err := runApp(t, "", "embed", "--model", dinov2.TinyName, "--weights", "random:3", "--pool", "cls+mean",
		"--image", img, "--out", out, "--device", "cpu"); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, shape, err := f.Float32("image_embeds")
	if err != nil {
		t.Fatal(err)
	}

	c, _ := dinov2.Builtin(dinov2.TinyName)
	m, err := dinov2.NewRandom(backend.NewCPU(), c, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	rgb, err := imageproc.DecodeFile(img)
	if err != nil {
		t.Fatal(err)
	}
	want := m.Encode(c.Preprocessor().Transform(rgb, nil), 1, dinov2.PoolCLSMean)
	if !slices.Equal(shape, []int{1, 2 * c.EmbedDim}) || !slices.Equal(got, want) {
		t.Fatalf("image_embeds %v: %v…, dinov2's own %v…", shape, got[:3], want[:3])
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--text", "a bird"}, "dinov2-tiny is a dinov2 image tower, with no text tower"},
		{[]string{"--image", img, "--pool", "max"}, "cls or mean or cls+mean"},
		{[]string{"--image", img, "--model", "swin-tiny", "--pool", "cls"}, "swin pools mean"},
	} {
		args := append([]string{"embed", "--model", dinov2.TinyName, "--weights", "random:3", "--device", "cpu"}, tc.args...)
		if msg, err := runApp(t, "", args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q\n%s", tc.args, err, tc.want, msg)
		}
	}
}

// TestExtractOtherTowers: extract and cache fingerprint take a DINOv2 and a
// Swin tower by built-in name; the pooling is in the fingerprint (and the
// dim), and a pooling the family lacks stops extract before the cache exists.
func TestExtractOtherTowers(t *testing.T) {
	dir := t.TempDir()
	shard := filepath.Join(dir, "train-000000.tar")
	writeCacheTestShard(t, shard, "s", 4)
	fingerprint := func(args ...string) string {
		t.Helper()
		out, err := runApp(t, "", append([]string{"cache", "fingerprint", "--weights", "random:2"}, args...)...)
		if err != nil {
			t.Fatalf("cache fingerprint %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(out)
	}
	seen := map[string]string{}
	for _, tc := range []struct {
		model, pool string
		dim         int
	}{
		{"dinov2-tiny", "", 64},
		{"dinov2-tiny", "mean", 64},
		{"dinov2-tiny", "cls+mean", 128},
		{"swin-tiny", "", 64},
	} {
		name := tc.model + "-" + tc.pool
		cache := filepath.Join(dir, name)
		args := []string{"extract", "--shards", shard, "--model", tc.model, "--weights", "random:2", "--cache", cache,
			"--max-reject-fraction", "0.3", "--device", "cpu", "--quiet"}
		fpArgs := []string{"--model", tc.model}
		if tc.pool != "" {
			args, fpArgs = append(args, "--pool", tc.pool), append(fpArgs, "--pool", tc.pool)
		}
		out, err := runApp(t, "", args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		fp := fingerprint(fpArgs...)
		m, err := store.ReadManifest(cache)
		if err != nil {
			t.Fatal(err)
		}
		if m.Fingerprint != fp || !strings.Contains(out, "fingerprint "+fp) || m.Dim != tc.dim {
			t.Errorf("%s: manifest %s dim %d, cache fingerprint %s; want dim %d", name, m.Fingerprint, m.Dim, fp, tc.dim)
		}
		if prev, dup := seen[fp]; dup {
			t.Errorf("%s has the fingerprint of %s", name, prev)
		}
		seen[fp] = name
	}
	if fingerprint("--model", "dinov2-tiny", "--pool", "cls") != fingerprint("--model", "dinov2-tiny") {
		t.Error("--pool cls is not DINOv2's default")
	}

	refused := filepath.Join(dir, "refused")
	out, err := runApp(t, "", "extract", "--shards", shard, "--model", "swin-tiny", "--weights", "random:2", "--pool", "cls+mean",
		"--cache", refused, "--device", "cpu", "--quiet")
	if err == nil || !strings.Contains(err.Error(), `swin pools mean, not "cls+mean"`) {
		t.Errorf("swin --pool cls+mean: %v\n%s", err, out)
	}
	if _, err := os.Stat(refused); !os.IsNotExist(err) {
		t.Errorf("a refused --pool made %s (%v)", refused, err)
	}
	if out, err := runApp(t, "", "cache", "fingerprint", "--model", "clip-tiny", "--weights", "random:2", "--pool", "mean"); err == nil {
		t.Errorf("clip --pool mean accepted: %s", out)
	}
}

// TestTowerModelHelp: extract, embed and cache fingerprint list every
// built-in tower of every family in --model's help.
func TestTowerModelHelp(t *testing.T) {
	for _, cmd := range [][]string{{"extract"}, {"embed"}, {"cache", "fingerprint"}} {
		out, _ := runApp(t, "", append(cmd, "--help")...)
		for _, name := range append(tower.Builtins(), "--pool") {
			if !strings.Contains(out, name) {
				t.Errorf("%s --help lacks %s", strings.Join(cmd, " "), name)
			}
		}
	}
	if n := len(tower.Builtins()); n < 12 {
		t.Errorf("%d built-ins: %s", n, fmt.Sprint(tower.Builtins()))
	}
}

// TestNewProjectionFlag: tune and sweep take --new-projection, which needs
// pretrained --weights.
func TestNewProjectionFlag(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"tune", "sweep"} {
		out, err := runApp(t, "", cmd, "--cache", dir, "--classes", filepath.Join(dir, "classes.json"), "--out", filepath.Join(dir, cmd),
			"--new-projection", "--device", "cpu")
		if err == nil || !strings.Contains(err.Error(), "--new-projection needs pretrained --weights") {
			t.Errorf("%s --new-projection without --weights: %v\n%s", cmd, err, out)
		}
	}
}
