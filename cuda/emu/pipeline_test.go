package emu_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/half"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/testutil"
)

// TestImageUploaderOrdering drives the double-buffered uploader for six
// batches without waiting for any result, on emulated streams slowed to
// 3 ms a task so that the host runs far ahead of the copies, then checks
// every batch's tensor against the CPU's Normalize of its own images,
// rounded to bf16: exact. The host refilling a slot whose copy has not run
// yet (Next not waiting for the slot's event) shows as batches holding a
// later batch's images; that break fails this test.
func TestImageUploaderOrdering(t *testing.T) {
	os.Setenv("LITCACHE_EMU_DELAY_US", "3000") // read when a stream starts
	g := open(t, cuda.Options{Precision: cuda.BF16})
	os.Unsetenv("LITCACHE_EMU_DELAY_US")
	const S, maxBatch = 16, 3
	pre := imageproc.CLIPPreprocessor(S)
	u, err := g.NewImageUploader(maxBatch, S, pre.NormalizeTable())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	type batch struct {
		imgs []*imageproc.RGB
		t    backend.Tensor
	}
	var batches []batch
	for i := range 6 {
		host, err := u.Next()
		if err != nil {
			t.Fatal(err)
		}
		n := 1 + i%maxBatch
		var b batch
		for j := range n {
			img := imageproc.NewRGB(S, S)
			for k := range img.Pix {
				img.Pix[k] = uint8(rng.IntN(256))
			}
			copy(host[j*u.ImageBytes():], img.Pix)
			b.imgs = append(b.imgs, img)
		}
		if b.t, err = u.Submit(n); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	for i, b := range batches {
		got := g.ToFloat32(b.t, nil)
		g.Free(b.t)
		for j, img := range b.imgs {
			want := pre.Normalize(img, nil)
			for k, v := range want {
				w := half.BF16ToF32(half.F32ToBF16(v))
				if got[j*3*S*S+k] != w {
					t.Fatalf("batch %d image %d value %d: got %v, want %v", i, j, k, got[j*3*S*S+k], w)
				}
			}
		}
	}
}

// TestGPUResizeMatchesCPU: ImageBatch's resize and crop on the (emulated)
// GPU, from device RGB, gives exactly the CPU eval transform's values —
// Transform's float32 in F32 precision, their bf16 rounding in BF16 — for
// landscape, portrait, square, upscaled and pass-skipping sizes, in one
// batch with the per-size taps cached and reused.
func TestGPUResizeMatchesCPU(t *testing.T) {
	sizes := [][2]int{{500, 375}, {375, 500}, {224, 224}, {300, 224}, {224, 300}, {100, 80}, {500, 375}}
	for _, p := range []cuda.Precision{cuda.F32, cuda.BF16} {
		g := open(t, cuda.Options{Precision: p})
		pre := imageproc.CLIPPreprocessor(224)
		ib, err := g.NewImageBatch(pre, len(sizes))
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(7, 8))
		var imgs []*imageproc.RGB
		dv := g.Device()
		for _, sz := range sizes {
			img := imageproc.NewRGB(sz[0], sz[1])
			for i := range img.Pix {
				img.Pix[i] = uint8(rng.IntN(256))
			}
			imgs = append(imgs, img)
			src, err := dv.Alloc(uint64(len(img.Pix)))
			if err != nil {
				t.Fatal(err)
			}
			defer dv.Free(src)
			if err := dv.CopyToDevice(src, img.Pix); err != nil {
				t.Fatal(err)
			}
			if err := ib.Add(src.Ptr, 3*sz[0], sz[0], sz[1]); err != nil {
				t.Fatal(err)
			}
		}
		x, err := ib.Tensor()
		if err != nil {
			t.Fatal(err)
		}
		got := g.ToFloat32(x, nil)
		n := 3 * 224 * 224
		for i, img := range imgs {
			want := pre.Transform(img, nil)
			for k, v := range want {
				if p == cuda.BF16 {
					v = half.BF16ToF32(half.F32ToBF16(v))
				}
				if got[i*n+k] != v {
					t.Fatalf("%v image %d (%dx%d) value %d: GPU %v, CPU %v", p, i, img.W, img.H, k, got[i*n+k], v)
				}
			}
		}
		g.Free(x)
		if err := ib.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEncodeUploaded: the tower on images uploaded as uint8 and normalised
// on the GPU gives exactly the embeddings of the CPU-preprocessed float32
// path on the same backend (both round the same float32 values to bf16).
func TestEncodeUploaded(t *testing.T) {
	g := open(t, cuda.Options{Precision: cuda.BF16})
	dir := testutil.FixtureDir(t)
	cfg, err := clip.LoadConfig(filepath.Join(dir, "open_clip_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := clip.LoadModel(g, cfg, filepath.Join(dir, "weights_openclip.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	S := cfg.Vision.ImageSize
	pre := imageproc.CLIPPreprocessor(S)
	u, err := g.NewImageUploader(4, S, pre.NormalizeTable())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	rng := rand.New(rand.NewPCG(9, 10))
	host, err := u.Next()
	if err != nil {
		t.Fatal(err)
	}
	var pixels []float32
	for i := range 3 {
		img := imageproc.NewRGB(S+7*i, S+3)
		for k := range img.Pix {
			img.Pix[k] = uint8(rng.IntN(256))
		}
		r := pre.Resized(img)
		copy(host[i*u.ImageBytes():], r.Pix)
		pixels = append(pixels, pre.Normalize(r, nil)...)
	}
	px, err := u.Submit(3)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Vision.EncodeTensor(px, 3)
	g.Free(px)
	want := m.Vision.Encode(pixels, 3)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("embedding value %d: uploaded %v, float32 path %v", i, got[i], want[i])
		}
	}
}
