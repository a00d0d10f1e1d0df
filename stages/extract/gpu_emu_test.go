package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/emu"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/imageproc/jpegtest"
	"github.com/litcache/litcache/store"
)

// The GPU paths end to end. Here they run on the CUDA emulator (cuda/emu:
// the real kernels and stream order on the CPU; its nvJPEG decodes with
// libjpeg-turbo), so they test the wiring — which view lands in which row,
// the fallbacks, the producers — and the bf16 arithmetic against the CPU.
// The GPU check (.gpu/check.sh, LITCACHE_REQUIRE_GPU=1) runs the same tests
// on the real GPU, where nvJPEG's own decoding differs from libjpeg-turbo's
// by a few levels a pixel.

var (
	emuOnce sync.Once
	emuErr  error
)

// gpuBackend is a bf16 CUDA backend: the real GPU under
// LITCACHE_REQUIRE_GPU=1, else the emulator (built on first use; the test
// skips where it cannot be built: no g++, not x86-64 Linux, or
// LITCACHE_NO_NATIVE). The emulator must be in place before anything loads
// CUDA, which nothing in this package does on a CPU backend.
func gpuBackend(t *testing.T) *cuda.Backend {
	t.Helper()
	if !realGPU() {
		emuOnce.Do(func() { emuErr = emu.Setup() })
		if errors.Is(emuErr, emu.ErrUnavailable) {
			t.Skip(emuErr)
		}
		if emuErr != nil {
			t.Fatal(emuErr)
		}
	}
	b, err := cuda.NewBackend(cuda.Options{Precision: cuda.BF16})
	if err != nil {
		t.Fatalf("CUDA backend (real GPU: %v): %v", realGPU(), err)
	}
	return b
}

// realGPU tells whether the tests run on a GPU (the GPU check) rather than
// the emulator.
func realGPU() bool { return os.Getenv("LITCACHE_REQUIRE_GPU") == "1" }

// needTurbo skips a test of the GPU decode path on the emulator where
// libjpeg-turbo, which its nvJPEG decodes with, is missing.
func needTurbo(t *testing.T) {
	if _, ok := imageproc.TurboJPEG(); !ok && !realGPU() {
		t.Skip("the emulated nvJPEG decodes with libjpeg-turbo, not found here")
	}
}

// rowsOf reads a cache into "key#view" → embedding.
func rowsOf(t *testing.T, dir string) map[string][]float32 {
	t.Helper()
	r, err := store.Open(dir, store.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string][]float32{}
	for _, p := range r.Parts() {
		for i := 0; i < p.N; i++ {
			out[fmt.Sprintf("%s#%d", p.Key(i), p.Views()[i])] = p.Row(i, nil)
		}
	}
	return out
}

// fallbackShards writes two shards: the first mixes JPEGs with the images
// the GPU decode path gives the CPU — a PNG, a CMYK JPEG, a JPEG the
// (emulated) nvJPEG refuses although the screening lets it through, a
// JPEG cut short (which the CPU rejects) — and a sample with no image.
func fallbackShards(t *testing.T, dir string) []string {
	var pngBuf bytes.Buffer
	pimg := image.NewRGBA(image.Rect(0, 0, 50, 44))
	for i := range pimg.Pix {
		pimg.Pix[i] = uint8(i * 13)
	}
	if err := png.Encode(&pngBuf, pimg); err != nil {
		t.Fatal(err)
	}
	plane := make([]uint8, 48*40)
	for i := range plane {
		plane[i] = uint8(i * 7)
	}
	c := jpegtest.Comp{H: 1, V: 1, Plane: plane}
	cmyk := jpegtest.Image{W: 48, H: 40, Adobe: 0, Comps: []jpegtest.Comp{c, c, c, c}}.Encode()
	good := blocksJPEG(t, 61, 64, 5)
	refuse := append(append([]byte{0xFF, 0xD8, 0xFF, 0xFE, 0, 22}, "litcache-emu: refuse"...), good[2:]...)
	cut := blocksJPEG(t, 64, 60, 6)
	cut = cut[:len(cut)/2]
	ms := []member{}
	add := func(key, ext string, data []byte) {
		ms = append(ms, member{key + "." + ext, data}, member{key + ".cls", []byte("3")})
	}
	add("a0", "jpg", blocksJPEG(t, 66, 64, 1))
	add("a1", "png", pngBuf.Bytes())
	add("a2", "jpg", cmyk)
	add("a3", "jpg", refuse)
	add("a4", "jpg", cut)
	ms = append(ms, member{"a5.cls", []byte("1")}) // no image
	add("a6", "jpg", blocksJPEG(t, 64, 70, 2))
	shards := []string{filepath.Join(dir, "train-000000.tar"), filepath.Join(dir, "train-000001.tar")}
	writeShard(t, shards[0], ms, 0)
	ms = nil
	for i := range 5 {
		add(fmt.Sprintf("b%d", i), "jpg", blocksJPEG(t, 60+i, 64, uint64(10+i)))
	}
	writeShard(t, shards[1], ms, 0)
	return shards
}

// TestGPUDecodeFallbacks: --decode gpu against --decode cpu on the same
// CUDA backend, over shards with the images nvJPEG does not take. Each is
// decoded on the CPU, counted by its reason, and its rows equal the --decode
// cpu run's bit for bit (both paths give the GPU the CPU's bytes); the JPEG
// rows equal too on the emulator (its nvJPEG is libjpeg-turbo) and are
// within the bf16 tolerance on a GPU (nvJPEG decodes a little otherwise).
// Both runs reject the same samples. The producers differ (nvjpeg,
// libjpeg-turbo), so a --decode gpu worker is refused by the cache the
// --decode cpu run made.
func TestGPUDecodeFallbacks(t *testing.T) {
	needTurbo(t)
	g := gpuBackend(t)
	dir := t.TempDir()
	shards := fallbackShards(t, dir)
	run := func(dec, cache string) Result {
		cfg := testConfig(shards, filepath.Join(dir, cache))
		cfg.Backend, cfg.Decode, cfg.DType = g, dec, store.Float32
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("--decode %s: %v", dec, err)
		}
		return res
	}
	gpuRes, cpuRes := run(DecodeGPU, "gpu"), run(DecodeCPU, "cpu")
	want := map[string]int{"PNG": 1, "CMYK/YCCK JPEG": 1, "JPEG without its end marker": 1}
	if !realGPU() {
		want["nvJPEG: NVJPEG_STATUS_JPEG_NOT_SUPPORTED"] = 1 // the emulator's refusal
	}
	if !maps.Equal(gpuRes.CPUDecodeReasons, want) || gpuRes.CPUDecoded != len(want) {
		t.Errorf("decoded on the CPU: %d %v, want %v", gpuRes.CPUDecoded, gpuRes.CPUDecodeReasons, want)
	}
	if cpuRes.CPUDecoded != 0 || gpuRes.Rejects != 2 || cpuRes.Rejects != 2 || gpuRes.Rows != cpuRes.Rows || gpuRes.Rows != 2*(12-2) {
		t.Fatalf("--decode gpu %+v\n--decode cpu %+v", gpuRes, cpuRes)
	}
	got, ref := rowsOf(t, filepath.Join(dir, "gpu")), rowsOf(t, filepath.Join(dir, "cpu"))
	fallback := map[string]bool{"a1": true, "a2": true, "a3": !realGPU()} // a3: the emulator's refusal
	worst, diff2, ref2 := 0.0, 0.0, 0.0
	for k, r := range ref {
		key, _, _ := strings.Cut(k, "#")
		d := maxAbsDiff(got[k], r)
		if fallback[key] || !realGPU() {
			if d != 0 {
				t.Errorf("row %s: --decode gpu differs from --decode cpu by %.3g, want the same bits", k, d)
			}
			continue
		}
		worst = max(worst, d)
		diff2 += l2(got[k], r) * l2(got[k], r)
		ref2 += l2(r, make([]float32, len(r))) * l2(r, make([]float32, len(r)))
		// bf16 tower on either side; only the decoder differs (nvJPEG vs libjpeg-turbo)
		if d > 2e-2 {
			t.Errorf("row %s: nvJPEG's row differs from libjpeg-turbo's by %.3g", k, d)
		}
	}
	rel := 0.0
	if ref2 > 0 {
		rel = math.Sqrt(diff2 / ref2)
	}
	t.Logf("--decode gpu vs --decode cpu JPEG rows: largest difference %.3g, relative error %.3g", worst, rel)
	cpuDecoder, gpuDecoder := "go", "nvjpeg+go"
	if _, ok := imageproc.TurboJPEG(); ok {
		cpuDecoder, gpuDecoder = "libjpeg-turbo", "nvjpeg"
	}
	for _, c := range []struct {
		cache, decoder string
	}{{"gpu", gpuDecoder}, {"cpu", cpuDecoder}} {
		m, err := store.ReadManifest(filepath.Join(dir, c.cache))
		if err != nil || m.Producer.Backend != "cuda" || m.Producer.Decoder != c.decoder {
			t.Errorf("%s cache producer %+v (%v), want cuda/bf16/%s", c.cache, m.Producer, err, c.decoder)
		}
	}
	// A --decode gpu worker into the libjpeg-turbo cache: another producer.
	extra := filepath.Join(dir, "extra-000000.tar")
	writeShard(t, extra, goodSample(t, "c0", 1, 1), 0)
	cfg := testConfig(append(shards, extra), filepath.Join(dir, "cpu"))
	cfg.Backend, cfg.Decode, cfg.DType = g, DecodeGPU, store.Float32
	if _, err := Run(context.Background(), cfg); !errors.Is(err, store.ErrMixedProducers) {
		t.Errorf("an nvjpeg worker into a libjpeg-turbo cache: %v, want refused as mixed producers", err)
	}
}

// TestDecodeChoice: --decode on each backend. gpu without a CUDA backend is
// an error that says what it needs, before the cache is touched; auto and
// cpu say what they chose and why; an unknown value is refused by Validate.
func TestDecodeChoice(t *testing.T) {
	cpu := backend.NewCPU()
	pre := imageproc.CLIPPreprocessor(32)
	dir := t.TempDir()
	cfg := testConfig(makeShards(t, dir, 1, 2), filepath.Join(dir, "cache"))
	cfg.Decode = DecodeGPU
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--decode gpu: the backend is cpu/float32") || !strings.Contains(err.Error(), "--device cuda") {
		t.Errorf("--decode gpu on the CPU: %v", err)
	}
	if _, serr := os.Stat(cfg.Cache); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the refused run made its cache (%v)", serr)
	}
	cfg.Decode = "nvjpeg"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `decode "nvjpeg": want cpu, gpu or auto`) {
		t.Errorf("--decode nvjpeg: %v", err)
	}
	for _, c := range []struct{ want, why string }{{DecodeAuto, "--decode auto: the backend is cpu/float32"}, {DecodeCPU, "--decode cpu"}} {
		dc, err := chooseDecode(c.want, cpu, pre)
		if err != nil || dc.mode != decodeHost || !strings.HasPrefix(dc.why, c.why) {
			t.Errorf("%s on the CPU: %+v %v", c.want, dc, err)
		}
	}
	exif := pre
	exif.ApplyEXIF = true
	t.Run("cuda", func(t *testing.T) {
		needTurbo(t)
		g := gpuBackend(t)
		for _, c := range []struct {
			want string
			pre  imageproc.Preprocessor
			mode decodeMode
		}{{DecodeAuto, pre, decodeNVJPEG}, {DecodeGPU, pre, decodeNVJPEG}, {DecodeCPU, pre, decodeUpload}, {DecodeAuto, exif, decodeUpload}} {
			dc, err := chooseDecode(c.want, g, c.pre)
			if err != nil || dc.mode != c.mode {
				t.Errorf("%s (EXIF %v) on CUDA: mode %d %v, want mode %d", c.want, c.pre.ApplyEXIF, dc.mode, err, c.mode)
			}
			if dc.jpeg != nil {
				dc.jpeg.Close()
			}
		}
		if _, err := chooseDecode(DecodeGPU, g, exif); err == nil || !strings.Contains(err.Error(), "EXIF") {
			t.Errorf("--decode gpu with EXIF orientation: %v", err)
		}
	})
}
