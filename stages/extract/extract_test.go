package extract

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"

	"github.com/litcache/litcache/internal/imageproc/jpegtest"
)

// member is one tar entry of a test shard.
type member struct {
	name string
	data []byte
}

// writeShard writes members as a plain tar; cut > 0 truncates the file to
// that many bytes (a shard cut mid-member).
func writeShard(t testing.TB, path string, ms []member, cut int) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.data)
	}
	tw.Close()
	b := buf.Bytes()
	if cut > 0 {
		b = b[:cut]
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// jpegOf is a small test-pattern JPEG.
func jpegOf(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	b, err := imageproc.EncodeJPEG(imageproc.TestPattern(w, h, seed), 90)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goodSample is the members (.jpg, .txt, .cls) of a sample that embeds.
func goodSample(t testing.TB, key string, label int, seed uint64) []member {
	return []member{
		{key + ".jpg", jpegOf(t, 40+int(seed%7)*3, 36, seed)},
		{key + ".txt", []byte(fmt.Sprintf("a photo of species %d", label))},
		{key + ".cls", []byte(fmt.Sprint(label))},
	}
}

// makeShards writes n shards of per samples each; sample 3 of shard 1 has a
// 0-byte image (a reject).
func makeShards(t testing.TB, dir string, n, per int) []string {
	t.Helper()
	var paths []string
	for s := 0; s < n; s++ {
		var ms []member
		for i := 0; i < per; i++ {
			key := fmt.Sprintf("s%02d_%04d", s, i)
			sm := goodSample(t, key, (s*per+i)%5, uint64(s*1000+i+1))
			if s == 1 && i == 3 {
				sm[0].data = nil
			}
			ms = append(ms, sm...)
		}
		p := filepath.Join(dir, fmt.Sprintf("train-%06d.tar", s))
		writeShard(t, p, ms, 0)
		paths = append(paths, p)
	}
	return paths
}

func testConfig(shards []string, cache string) Config {
	c := DefaultConfig()
	c.Shards = shards
	c.Cache = cache
	c.ModelConfig = "clip-tiny"
	c.Seed = 7
	c.BatchSize = 4
	c.Threads = 2
	c.Views = 2
	c.MaxRejectFraction = 0.5
	c.Progress = progress.Options{Quiet: true}
	c.Log = io.Discard
	return c
}

// rowDump is one cached row, embedding as exact bits.
type rowDump struct {
	label   int32
	caption string
	emb     string
}

// dump reads a cache into key/view → row, failing on a (key, view) seen twice.
func dump(t testing.TB, dir string) map[string]rowDump {
	t.Helper()
	r, err := store.Open(dir, store.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string]rowDump{}
	for _, p := range r.Parts() {
		for i := 0; i < p.N; i++ {
			k := fmt.Sprintf("%s#%d", p.Key(i), p.Views()[i])
			if _, dup := out[k]; dup {
				t.Fatalf("%s appears twice", k)
			}
			var emb string
			if p.DType == store.Float16 {
				emb = fmt.Sprint(p.EmbF16()[i*p.Dim : (i+1)*p.Dim])
			} else {
				emb = fmt.Sprint(p.EmbF32()[i*p.Dim : (i+1)*p.Dim])
			}
			out[k] = rowDump{p.Labels()[i], p.Caption(i), emb}
		}
	}
	return out
}

func sameDump(t *testing.T, what string, got, want map[string]rowDump) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("%s: row %s missing", what, k)
		}
		if g != w {
			t.Fatalf("%s: row %s differs:\n got %+v\nwant %+v", what, k, g, w)
		}
	}
}

func TestExtract(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 3, 6)
	cache := filepath.Join(dir, "cache")
	cfg := testConfig(shards, cache)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 18 || res.Rejects != 1 || res.Rows != 17*2 || res.Shards != 3 || res.Skipped != 0 {
		t.Fatalf("result %+v", res)
	}
	// The CLIP fingerprint extract wrote before the tower registry (the
	// golden value of internal/tower's TestCLIPFingerprintUnchanged):
	// caches made then stay valid.
	const fp = "sha256:e3a73f675f80d8460c27765f7c5befde7fae8ba5da5ab459733e15dd6c24f3b8"
	if res.Fingerprint != fp {
		t.Fatalf("fingerprint %s, the pre-registry extract wrote %s", res.Fingerprint, fp)
	}
	r, err := store.Open(cache, store.ReadOptions{ExpectFingerprint: fp})
	if err != nil {
		t.Fatal(err)
	}
	m := r.Manifest()
	if m.Dim != 32 || m.Views != 2 || m.DType != store.Float16 || m.Rows != 34 || m.Rejects != 1 || m.Samples != 18 || m.Splits["train"].Shards != 3 {
		t.Fatalf("manifest %+v", m)
	}
	// Embeddings are L2-normalised; view 1 (a random crop) differs from view 0.
	p := r.Parts()[0]
	row0, row1 := p.Row(0, nil), p.Row(1, nil)
	var n0 float64
	for _, v := range row0 {
		n0 += float64(v) * float64(v)
	}
	if math.Abs(n0-1) > 2e-3 {
		t.Errorf("row norm² %v, want 1", n0)
	}
	if fmt.Sprint(row0) == fmt.Sprint(row1) {
		t.Errorf("view 1 equals view 0")
	}
	if p.Caption(0) != "a photo of species 0" || p.Labels()[2] != 1 || p.Key(2) != "s00_0001" {
		t.Errorf("row metadata: %q %d %q", p.Caption(0), p.Labels()[2], p.Key(2))
	}
	r.Close()
	rej, err := os.ReadFile(filepath.Join(cache, "rejects.jsonl"))
	if err != nil || !strings.Contains(string(rej), `"key":"s01_0003"`) || !strings.Contains(string(rej), "0 bytes") {
		t.Fatalf("rejects.jsonl: %q %v", rej, err)
	}
	// A second run finds every shard done and changes nothing.
	before := dump(t, cache)
	res, err = Run(context.Background(), cfg)
	if err != nil || res.Skipped != 3 || res.Samples != 0 {
		t.Fatalf("rerun: %+v %v", res, err)
	}
	sameDump(t, "rerun", dump(t, cache), before)

	t.Run("another model is refused", func(t *testing.T) {
		c2 := cfg
		c2.Seed = 8
		_, err := Run(context.Background(), c2)
		fp8, _ := tower.Fingerprint(tower.Spec{Model: "clip-tiny", Weights: "random:8"})
		if !errors.Is(err, store.ErrFingerprint) || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), fp8) {
			t.Fatalf("err %v, want a fingerprint refusal naming %s and %s", err, fp, fp8)
		}
		_, err = store.Open(cache, store.ReadOptions{ExpectFingerprint: fp8})
		if !errors.Is(err, store.ErrFingerprint) || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), fp8) {
			t.Fatalf("Open: %v", err)
		}
	})
}

// TestTwoWorkersEqualOne: --workers 2 (two processes' shares, here run in
// turn) plus `cache index` gives the same cache as one worker, key by key.
func TestTwoWorkersEqualOne(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 3, 5)
	one := filepath.Join(dir, "one")
	if _, err := Run(context.Background(), testConfig(shards, one)); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two")
	for w := 0; w < 2; w++ {
		c := testConfig(shards, two)
		c.Worker, c.NumWorkers = w, 2
		res, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{2, 1}[w]; res.Shards != want {
			t.Fatalf("worker %d took %d shards, want %d", w, res.Shards, want)
		}
	}
	st, err := store.BuildIndex(two, store.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Keys != 14 {
		t.Fatalf("index stats %+v", st)
	}
	want := dump(t, one)
	sameDump(t, "two workers", dump(t, two), want)
	m1, _ := store.ReadManifest(one)
	m2, _ := store.ReadManifest(two)
	if m1.Rows != m2.Rows || m1.Samples != m2.Samples || m1.Rejects != m2.Rejects || m1.Fingerprint != m2.Fingerprint {
		t.Fatalf("manifests differ: %+v vs %+v", m1, m2)
	}
	r, err := store.Open(two, store.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for k := range want {
		key := strings.Split(k, "#")[0]
		loc, err := r.Lookup(key)
		if err != nil {
			t.Fatal(err)
		}
		if loc.Part.Key(loc.Row) != key || loc.Views != 2 {
			t.Fatalf("lookup %s → %s row %d views %d", key, loc.Part.Name, loc.Row, loc.Views)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, imageproc.TestPattern(30, 30, 5))
	gray := image.NewGray(image.Rect(0, 0, 33, 29))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 7)
	}
	var grayBuf bytes.Buffer
	jpeg.Encode(&grayBuf, gray, nil)
	ink := func(c int) []uint8 {
		p := make([]uint8, 32*24)
		for i := range p {
			p[i] = uint8(i*(c+3) + 40*c)
		}
		return p
	}
	cmyk := jpegtest.Image{W: 32, H: 24, Adobe: 0, Comps: []jpegtest.Comp{{H: 1, V: 1, Plane: ink(0)}, {H: 1, V: 1, Plane: ink(1)}, {H: 1, V: 1, Plane: ink(2)}, {H: 1, V: 1, Plane: ink(3)}}}.Encode()
	if img, err := imageproc.DecodeRGB(cmyk); err != nil || img.W != 32 {
		t.Fatalf("test CMYK JPEG does not decode: %v", err)
	}
	_ = color.Gray{}

	good := goodSample(t, "good_0", 1, 1)
	pngAsJPG := goodSample(t, "png_named_jpg", 2, 2)
	pngAsJPG[0].data = pngBuf.Bytes()
	grey := goodSample(t, "greyscale", 3, 3)
	grey[0].data = grayBuf.Bytes()
	cm := goodSample(t, "cmyk", 4, 4)
	cm[0].data = cmyk
	empty := goodSample(t, "zero_bytes", 0, 5)
	empty[0].data = []byte{}
	garbage := goodSample(t, "not_an_image", 0, 6)
	garbage[0].data = []byte("this is text, not a JPEG")
	var ms []member
	for _, s := range [][]member{good, pngAsJPG, grey, cm, empty, garbage} {
		ms = append(ms, s...)
	}
	shardA := filepath.Join(dir, "bad-000000.tar")
	writeShard(t, shardA, ms, 0)
	// A shard cut in the middle of its third sample's image.
	var cutMs []member
	for i := 0; i < 4; i++ {
		cutMs = append(cutMs, goodSample(t, fmt.Sprintf("cut_%d", i), i, uint64(10+i))...)
	}
	full := filepath.Join(dir, "full.tar")
	writeShard(t, full, cutMs, 0)
	st, _ := os.Stat(full)
	shardB := filepath.Join(dir, "bad-000001.tar")
	writeShard(t, shardB, cutMs, int(st.Size())*5/8)
	os.Remove(full)

	cache := filepath.Join(dir, "cache")
	cfg := testConfig([]string{shardA, shardB}, cache)
	cfg.Views = 1
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := dump(t, cache)
	for _, k := range []string{"good_0", "png_named_jpg", "greyscale", "cmyk", "cut_0", "cut_1"} {
		if _, ok := rows[k+"#0"]; !ok {
			t.Errorf("good sample %s not cached", k)
		}
	}
	for _, k := range []string{"zero_bytes", "not_an_image"} {
		if _, ok := rows[k+"#0"]; ok {
			t.Errorf("bad sample %s cached", k)
		}
	}
	rej, _ := os.ReadFile(filepath.Join(cache, "rejects.jsonl"))
	for _, want := range []string{`"key":"zero_bytes"`, `"key":"not_an_image"`, "shard unreadable"} {
		if !strings.Contains(string(rej), want) {
			t.Errorf("rejects.jsonl lacks %s:\n%s", want, rej)
		}
	}
	if res.Rejects < 3 {
		t.Errorf("result %+v", res)
	}
	m, _ := store.ReadManifest(cache)
	if m.Rejects != res.Rejects {
		t.Errorf("manifest rejects %d, run %d", m.Rejects, res.Rejects)
	}

	t.Run("reject fraction exceeded", func(t *testing.T) {
		c := cfg
		c.Cache = filepath.Join(dir, "strict")
		c.MaxRejectFraction = 0.05
		res, err := Run(context.Background(), c)
		if !errors.Is(err, ErrTooManyRejects) || !strings.Contains(err.Error(), fmt.Sprintf("%.4f", res.RejectFraction)) {
			t.Fatalf("err %v", err)
		}
		// The work is still done and kept.
		sameDump(t, "strict", dump(t, c.Cache), rows)
	})

	t.Run("truncated photo from shared data", func(t *testing.T) {
		b, err := os.ReadFile(testutil.SharedData(t, "photos/camera_traps/african_elephants_truncated_file.jpg"))
		if err != nil {
			t.Fatal(err)
		}
		tr := goodSample(t, "truncated_photo", 1, 1)
		tr[0].data = b
		p := filepath.Join(dir, "photo-000000.tar")
		writeShard(t, p, append(goodSample(t, "ok", 1, 9), tr...), 0)
		c := cfg
		c.Shards = []string{p}
		c.Cache = filepath.Join(dir, "photo")
		if _, err := Run(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		rows := dump(t, c.Cache)
		if _, ok := rows["ok#0"]; !ok || len(rows) != 1 {
			t.Fatalf("rows %v", len(rows))
		}
		rej, _ := os.ReadFile(filepath.Join(c.Cache, "rejects.jsonl"))
		if !strings.Contains(string(rej), `"key":"truncated_photo"`) {
			t.Fatalf("rejects: %s", rej)
		}
	})
}

// killPoints are where the helper process SIGKILLs itself: inside a shard
// (after a batch, before its part is written), between the part's temp file
// and its rename, after the rename, after the rejects file, after the marker,
// and after the last marker, before the manifest's counts are refreshed.
var killPoints = []string{
	"batch:0:0",     // shard 0, after its first batch
	"batch:1:2",     // shard 1 (the one with a reject), after its third batch
	"part-tmp:0",    // shard 0's part written to .tmp, not renamed
	"part-rename:1", // shard 1's part renamed, no rejects file, no marker
	"rejects:1",     // shard 1's rejects in place, no marker
	"marker:2",      // every shard complete, before Finalize
}

// TestHelperProcess is the child of TestSIGKILLResume: it runs an
// extraction and SIGKILLs itself at $LITCACHE_EXTRACT_KILL.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv("LITCACHE_EXTRACT_HELPER")
	if spec == "" {
		t.Skip("helper process for TestSIGKILLResume")
	}
	var args struct {
		Shards []string
		Cache  string
	}
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(args.Shards, args.Cache)
	point := os.Getenv("LITCACHE_EXTRACT_KILL")
	die := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL); select {} }
	shardNo := func(path string) int {
		for i, s := range args.Shards {
			if s == path {
				return i
			}
		}
		return -1
	}
	current := -1 // shard of the part being committed
	cfg.Hooks.AfterBatch = func(shard string, b int) {
		current = shardNo(shard)
		if point == fmt.Sprintf("batch:%d:%d", current, b) {
			die()
		}
	}
	at := func(kind string) func() {
		return func() {
			if point == fmt.Sprintf("%s:%d", kind, current) {
				die()
			}
		}
	}
	cfg.Hooks.Part = store.Hooks{AfterPartTmp: at("part-tmp"), AfterPartRename: at("part-rename"), AfterRejects: at("rejects"), AfterMarker: at("marker")}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("kill point %q never reached", point)
}

// TestSIGKILLResume kills an extraction with SIGKILL at each kill point,
// resumes it, and compares the cache key by key (embeddings bit for bit,
// labels, captions, views) with an uninterrupted run's.
func TestSIGKILLResume(t *testing.T) {
	dir := t.TempDir()
	shards := makeShards(t, dir, 3, 6)
	ref := filepath.Join(dir, "ref")
	if _, err := Run(context.Background(), testConfig(shards, ref)); err != nil {
		t.Fatal(err)
	}
	want := dump(t, ref)
	wantM, _ := store.ReadManifest(ref)
	for i, point := range killPoints {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			cache := filepath.Join(dir, fmt.Sprintf("killed-%d", i))
			spec, _ := json.Marshal(map[string]any{"Shards": shards, "Cache": cache})
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "LITCACHE_EXTRACT_HELPER="+string(spec), "LITCACHE_EXTRACT_KILL="+point)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed by SIGKILL: %v\n%s", err, out)
			}
			res, err := Run(context.Background(), testConfig(shards, cache))
			if err != nil {
				t.Fatal(err)
			}
			if res.Shards != 3 {
				t.Fatalf("resume %+v", res)
			}
			sameDump(t, "resumed", dump(t, cache), want)
			m, _ := store.ReadManifest(cache)
			if m.Rows != wantM.Rows || m.Samples != wantM.Samples || m.Rejects != wantM.Rejects {
				t.Fatalf("manifest counts %d/%d/%d, want %d/%d/%d", m.Rows, m.Samples, m.Rejects, wantM.Rows, wantM.Samples, wantM.Rejects)
			}
			rej, _ := os.ReadFile(filepath.Join(cache, "rejects.jsonl"))
			if strings.Count(string(rej), "\n") != 1 {
				t.Fatalf("rejects.jsonl:\n%s", rej)
			}
			left, _ := filepath.Glob(filepath.Join(cache, "*", "*.tmp"))
			if len(left) != 0 {
				t.Fatalf("temp files left: %v", left)
			}
		})
	}
}
