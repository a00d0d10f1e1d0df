package cli

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/backend/backendtest"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
)

// TestEmbedPixelsIDs runs `litcache embed --pixels --ids --out` on the
// clip-tiny fixture (forward.safetensors holds pixel_values, input_ids and
// HF transformers' float64 image_embeds/text_embeds) with both weight files;
// the float32 embeddings must land within 1e-5 relative (‖a−b‖/‖b‖), the
// tolerance FIXTURES.md gives a float32 implementation.
func TestEmbedPixelsIDs(t *testing.T) {
	dir := testutil.FixtureDir(t)
	fwd := filepath.Join(dir, "forward.safetensors")
	ref, err := safetensors.Open(fwd)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, weights := range []string{"weights_hf.safetensors", "weights_openclip.safetensors"} {
		t.Run(weights, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.safetensors")
			var stdout bytes.Buffer
			app := App()
			app.Writer, app.ErrWriter = &stdout, io.Discard
			err := app.Run([]string{"litcache", "embed", "--model", filepath.Join(dir, "open_clip_config.json"),
				"--weights", filepath.Join(dir, weights), "--pixels", fwd, "--ids", fwd, "--out", out, "--batch-size", "3", "--device", "cpu"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := safetensors.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			for _, name := range []string{"image_embeds", "text_embeds"} {
				a, as, err := got.Float64(name)
				if err != nil {
					t.Fatal(err)
				}
				b, bs, err := ref.Float64(name)
				if err != nil {
					t.Fatal(err)
				}
				if len(as) != 2 || as[0] != bs[0] || as[1] != bs[1] {
					t.Fatalf("%s: shape %v, reference %v", name, as, bs)
				}
				var num, den float64
				for i := range a {
					num += (a[i] - b[i]) * (a[i] - b[i])
					den += b[i] * b[i]
				}
				if e := math.Sqrt(num / den); !(e <= 1e-5) {
					t.Errorf("%s: relative error %.3g", name, e)
				}
			}
		})
	}
}

func TestEmbedPrintsAndErrors(t *testing.T) {
	dir := testutil.FixtureDir(t)
	fwd := filepath.Join(dir, "forward.safetensors")
	cfg := filepath.Join(dir, "open_clip_config.json")
	weights := filepath.Join(dir, "weights_hf.safetensors")
	// Shapes from the fixture itself, so that any fixture directory of this
	// kind passes ($LITCACHE_FIXTURE_DIR).
	ref, err := safetensors.Open(fwd)
	if err != nil {
		t.Fatal(err)
	}
	pixInfo, okP := ref.Info("pixel_values")
	idsInfo, okI := ref.Info("input_ids")
	ref.Close()
	if !okP || !okI || len(pixInfo.Shape) != 4 || len(idsInfo.Shape) != 2 {
		t.Fatalf("forward.safetensors: pixel_values %v, input_ids %v", pixInfo.Shape, idsInfo.Shape)
	}
	otherSize := "ViT-B-32" // a built-in model whose image size differs from the fixture's
	if pixInfo.Shape[2] == 224 {
		otherSize = "clip-tiny"
	}
	for _, tc := range []struct {
		name    string
		args    []string
		want    string // in stdout
		wantErr string
	}{
		{"cosine table", []string{"--model", cfg, "--weights", weights, "--pixels", fwd, "--ids", fwd}, "cosine similarity", ""},
		{"embeddings", []string{"--model", cfg, "--weights", weights, "--ids", fwd}, fmt.Sprintf("input_ids[%d] ", idsInfo.Shape[0]-1), ""},
		{"random weights", []string{"--model", cfg, "--weights", "random:3", "--pixels", fwd}, "pixel_values[0] ", ""},
		{"nothing", []string{"--model", cfg, "--weights", weights}, "", "nothing to embed"},
		{"vocab without text", []string{"--model", cfg, "--weights", weights, "--ids", fwd, "--vocab", "v.txt"}, "", "--vocab does nothing without --text"},
		{"text with a model of another vocabulary", []string{"--model", cfg, "--weights", weights, "--text", "a bird"}, "", "vocabulary has "},
		{"batch size without images", []string{"--model", cfg, "--weights", weights, "--ids", fwd, "--batch-size", "2"}, "", "--batch-size does nothing without --image or --pixels"},
		{"bad model", []string{"--model", "ViT-Q-1", "--weights", weights, "--ids", fwd}, "", "ViT-Q-1"},
		{"wrong image size", []string{"--model", otherSize, "--weights", "random:1", "--pixels", fwd}, "", fmt.Sprintf("pixel_values has shape %v", pixInfo.Shape)},
		{"no such tensor", []string{"--model", cfg, "--weights", weights, "--pixels", weights}, "", "pixel_values"},
		{"weights do not fit", []string{"--model", "ViT-B-32", "--weights", weights, "--ids", fwd}, "", "mis-shaped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout bytes.Buffer
			app := App()
			app.Writer, app.ErrWriter = &stdout, io.Discard
			err := app.Run(append([]string{"litcache", "embed", "--device", "cpu"}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(stdout.String(), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, stdout.String())
			}
		})
	}
}

// TestEmbedImagesAndTexts runs the real-input path (photos through
// imageproc, captions through the BPE tokenizer) on a small random model with
// CLIP's built-in vocabulary; the photos come from ../shared/data, and the
// test is skipped without them.
func TestEmbedImagesAndTexts(t *testing.T) {
	photos := testutil.SharedData(t, "photos/birds")
	imgs, _ := filepath.Glob(filepath.Join(photos, "*.jpg"))
	if len(imgs) < 2 {
		t.Skip("fewer than two bird photos")
	}
	cfg := filepath.Join(t.TempDir(), "small.json")
	os.WriteFile(cfg, []byte(`{"embed_dim": 16, "quick_gelu": true,
		"vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
		"text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}`), 0o644)
	var stdout bytes.Buffer
	app := App()
	app.Writer, app.ErrWriter = &stdout, io.Discard
	err := app.Run([]string{"litcache", "embed", "--model", cfg, "--weights", "random:1", "--device", "cpu",
		"--image", imgs[0], "--image", imgs[1], "--text", "a photo of a bird", "--text", "a photo of a plant"})
	if err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	if !strings.Contains(out, "t1 = a photo of a plant") || strings.Count(out, "\n") != 6 {
		t.Errorf("unexpected table:\n%s", out)
	}
}

// TestEmbedTruncatedImage: a truncated JPEG is an error naming the file.
func TestEmbedTruncatedImage(t *testing.T) {
	bad := testutil.SharedData(t, "photos/camera_traps/african_elephants_truncated_file.jpg")
	app := App()
	app.Writer, app.ErrWriter = &bytes.Buffer{}, io.Discard
	err := app.Run([]string{"litcache", "embed", "--model", "clip-tiny", "--weights", "random:1", "--device", "cpu", "--image", bad})
	if err == nil || !strings.Contains(err.Error(), "african_elephants_truncated_file.jpg") {
		t.Fatalf("error %v, want one naming the file", err)
	}
	t.Log(err)
}

// TestEmbedDeviceFailure: a device failure inside an op (the backend
// panics with a *cuda.OpError, as the CUDA backend does) ends embed with an
// error naming the op and the CUDA error, not a crash.
func TestEmbedDeviceFailure(t *testing.T) {
	dir := testutil.FixtureDir(t)
	fwd := filepath.Join(dir, "forward.safetensors")
	for _, op := range []string{"Linear", "LayerNorm"} {
		err := runEmbed(io.Discard, embedOptions{model: filepath.Join(dir, "open_clip_config.json"),
			weights: filepath.Join(dir, "weights_openclip.safetensors"), pixels: fwd, ids: fwd, batch: 4, log: io.Discard,
			backend: &backendtest.Failing{Backend: backend.NewCPU(), Op: op,
				Err: &cuda.OpError{Op: op, Err: &cuda.Error{Call: "cuStreamSynchronize", Code: 700,
					Name: "CUDA_ERROR_ILLEGAL_ADDRESS", Text: "an illegal memory access was encountered"}}}})
		if err == nil || !strings.Contains(err.Error(), "cuda: "+op+": ") || !strings.Contains(err.Error(), "CUDA_ERROR_ILLEGAL_ADDRESS") {
			t.Errorf("%s failing: error %v, want one naming the op and the CUDA error", op, err)
		} else {
			t.Log(err)
		}
	}
}
