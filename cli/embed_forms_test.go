package cli

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/safetensors"
)

// TestEmbedBothForms: embed takes a tuned model in either form — the full
// model tune writes by default and the text tower alone of --text-only —
// as a file or as a run folder: the text embeddings agree; images need the
// image tower, and the text tower alone says so before any device opens.
func TestEmbedBothForms(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := clip.Builtin("clip-tiny")
	be := backend.NewCPU()
	m := clip.NewRandomModel(be, cfg, 5)
	full := filepath.Join(dir, "full", "final", "open_clip_model.safetensors")
	text := filepath.Join(dir, "text", "final", "open_clip_model.safetensors")
	for _, p := range []string{full, text} {
		os.MkdirAll(filepath.Dir(p), 0o755)
	}
	if err := clip.SaveModelMeta(full, m, clip.OpenCLIP, map[string]string{clip.MetaImageFingerprint: "sha256:x"}); err != nil {
		t.Fatal(err)
	}
	if err := clip.SaveTextTower(text, cfg, m.Text, m.LogitScale); err != nil {
		t.Fatal(err)
	}
	S, T := cfg.Vision.ImageSize, cfg.Text.ContextLength
	pix := make([]float32, 2*3*S*S)
	for i := range pix {
		pix[i] = float32(i%13)/6 - 1
	}
	ids := make([]int32, 2*T)
	ids[0], ids[1], ids[2] = 1, 7, cfg.Text.EOT()
	ids[T], ids[T+1], ids[T+2] = 1, 9, cfg.Text.EOT()
	inputs := filepath.Join(dir, "inputs.safetensors")
	if err := safetensors.Write(inputs, []safetensors.Tensor{
		safetensors.F32("pixel_values", []int{2, 3, S, S}, pix),
		safetensors.I32("input_ids", []int{2, T}, ids),
	}, nil); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		app := App()
		app.Writer, app.ErrWriter = &out, io.Discard
		err := app.Run(append([]string{"litcache", "embed", "--device", "cpu"}, args...))
		return out.String(), err
	}
	want, err := run("--model", "clip-tiny", "--weights", "random:5", "--ids", inputs)
	if err != nil {
		t.Fatal(err)
	}
	wantImg, err := run("--model", "clip-tiny", "--weights", "random:5", "--pixels", inputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"full file", []string{"--model", "clip-tiny", "--weights", full}},
		{"text-only file", []string{"--model", "clip-tiny", "--weights", text}},
		{"full run folder", []string{"--weights", filepath.Join(dir, "full")}},
		{"text-only run folder", []string{"--weights", filepath.Join(dir, "text")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(append(tc.args, "--ids", inputs)...)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("text embeddings differ from the model's:\n%s\nwant\n%s", got, want)
			}
			got, err = run(append(tc.args, "--pixels", inputs)...)
			if strings.HasPrefix(tc.name, "full") {
				if err != nil || got != wantImg {
					t.Errorf("image embeddings: err %v\n%s\nwant\n%s", err, got, wantImg)
				}
			} else if err == nil || !strings.Contains(err.Error(), "text tower alone") {
				t.Errorf("images from a text tower alone: err %v", err)
			}
		})
	}
	if _, err := run("--model", "clip-tiny", "--weights", filepath.Join(dir, "full"), "--ids", inputs); err == nil || !strings.Contains(err.Error(), "leave --model out") {
		t.Errorf("--model beside a run folder: err %v", err)
	}
	if _, err := run("--weights", full, "--ids", inputs); err == nil || !strings.Contains(err.Error(), "--model is required") {
		t.Errorf("a file without --model: err %v", err)
	}
}
