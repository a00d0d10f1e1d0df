package caption

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/jpeg"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/inat/synth"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/testutil"
	"github.com/litcache/litcache/internal/wds"
)

// synthData generates a small mini-iNat once per test binary.
var synthDir string

func dataset(t *testing.T) string {
	t.Helper()
	if synthDir == "" {
		dir, err := os.MkdirTemp("", "caption-synth-")
		if err != nil {
			t.Fatal(err)
		}
		if err := synth.Generate(dir, synth.Options{Species: 7, TrainPerSpecies: 4, ValPerSpecies: 1, ImageSize: 48, Seed: 3, Threads: 2}); err != nil {
			t.Fatal(err)
		}
		synthDir = dir
	}
	return synthDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if synthDir != "" {
		os.RemoveAll(synthDir)
	}
	os.Exit(code)
}

// copyDataset gives a test its own copy to damage.
func copyDataset(t *testing.T) string {
	t.Helper()
	src := dataset(t)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func testConfig(data, out string) Config {
	cfg := DefaultConfig()
	cfg.JSON = filepath.Join(data, "train.json")
	cfg.Images = data
	cfg.Out = out
	cfg.PerShard = 5
	cfg.Threads = 3
	cfg.Progress = progress.Options{Quiet: true}
	cfg.Log = &bytes.Buffer{}
	return cfg
}

// readShards returns every sample of the run's shards, in shard order.
func readShards(t *testing.T, out string) ([]*wds.Sample, map[string]int) {
	t.Helper()
	sizes, err := wds.ReadSizes(out)
	if err != nil {
		t.Fatal(err)
	}
	var all []*wds.Sample
	for s := 0; ; s++ {
		names, _ := filepath.Glob(filepath.Join(out, strconv.Itoa(1000000 + s)[1:]+".tar*"))
		if len(names) == 0 {
			break
		}
		got, err := wds.ReadAll(names[0])
		if err != nil {
			t.Fatal(err)
		}
		if sizes[filepath.Base(names[0])] != len(got) {
			t.Fatalf("%s: %d samples, sizes.json says %d", names[0], len(got), sizes[filepath.Base(names[0])])
		}
		all = append(all, got...)
	}
	return all, sizes
}

func TestRunRoundTrip(t *testing.T) {
	for _, comp := range []string{"none", "zst"} {
		t.Run(comp, func(t *testing.T) {
			data := dataset(t)
			cfg := testConfig(data, t.TempDir())
			cfg.Compression = comp
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Samples != 28 || res.Shards != 6 || res.Skipped != 0 || res.Classes != 7 || res.DistinctCaptions != 7 {
				t.Fatalf("result %+v", res)
			}
			classes, err := inat.LoadClasses(filepath.Join(cfg.Out, "classes.json"))
			if err != nil {
				t.Fatal(err)
			}
			capOf := map[int]inat.Class{}
			for _, c := range classes {
				capOf[c.ID] = c
			}
			ds, err := inat.LoadCOCO(cfg.JSON, inat.COCOOptions{})
			if err != nil {
				t.Fatal(err)
			}
			byID := map[int64]inat.Image{}
			for _, im := range ds.Images {
				byID[im.ID] = im
			}
			samples, _ := readShards(t, cfg.Out)
			if len(samples) != 28 {
				t.Fatalf("%d samples in shards", len(samples))
			}
			seen := map[int64]bool{}
			for _, s := range samples {
				var meta sampleMeta
				if err := json.Unmarshal(s.Files["json"], &meta); err != nil {
					t.Fatal(err)
				}
				im, ok := byID[*meta.ImageID]
				if !ok || seen[im.ID] || s.Key != padded(im.ID) {
					t.Fatalf("sample %q: image id %d unknown, repeated or not the key", s.Key, *meta.ImageID)
				}
				seen[im.ID] = true
				src, err := os.ReadFile(filepath.Join(data, im.FileName))
				if err != nil {
					t.Fatal(err)
				}
				cls := capOf[im.CategoryID]
				switch {
				case !bytes.Equal(s.Files["jpg"], src):
					t.Fatalf("sample %s: jpg differs from %s", s.Key, im.FileName)
				case string(s.Files["txt"]) != cls.Caption:
					t.Fatalf("sample %s: caption %q, class says %q", s.Key, s.Files["txt"], cls.Caption)
				case string(s.Files["cls"]) != strconv.Itoa(im.CategoryID):
					t.Fatalf("sample %s: cls %q, want %d", s.Key, s.Files["cls"], im.CategoryID)
				case meta.Source != im.FileName || meta.Genus != cls.Genus || meta.CategoryID != im.CategoryID || meta.Width != 48:
					t.Fatalf("sample %s: metadata %+v", s.Key, meta)
				case len(s.Files) != 4:
					t.Fatalf("sample %s: members %v", s.Key, len(s.Files))
				}
			}
			// A second run keeps every shard.
			res2, err := Run(context.Background(), cfg)
			if err != nil || res2.ShardsKept != 6 || res2.Written != 0 || res2.Samples != 28 {
				t.Fatalf("rerun: %+v, %v", res2, err)
			}
		})
	}
}

func padded(id int64) string { return strconv.FormatInt(1000000000+id, 10)[1:] }

func shardBytes(t *testing.T, out string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	names, _ := filepath.Glob(filepath.Join(out, "*"))
	for _, n := range names {
		if st, _ := os.Stat(n); st.IsDir() {
			continue
		}
		b, _ := os.ReadFile(n)
		m[filepath.Base(n)] = b
	}
	return m
}

func TestInterruptedRunResumes(t *testing.T) {
	data := dataset(t)
	ref := testConfig(data, t.TempDir())
	ref.Threads = 1 // the bytes must not depend on the number of workers either
	if _, err := Run(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	want := shardBytes(t, ref.Out)

	cfg := testConfig(data, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cfg.afterShard = func(name string) {
		if name == "000001.tar" {
			cancel()
		}
	}
	_, err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: err = %v", err)
	}
	tmps, _ := filepath.Glob(filepath.Join(cfg.Out, "*.tmp"))
	shards, _ := filepath.Glob(filepath.Join(cfg.Out, "*.tar"))
	if len(tmps) != 0 || len(shards) != 2 {
		t.Fatalf("after interruption: shards %v, temporary files %v", shards, tmps)
	}
	for _, s := range shards {
		if _, err := wds.ReadAll(s); err != nil {
			t.Fatalf("half-written shard: %v", err)
		}
	}
	// A crash mid-shard leaves a .tmp; a damaged shard has the wrong size.
	os.WriteFile(filepath.Join(cfg.Out, "000002.tar.tmp"), []byte("partial"), 0o644)
	b, _ := os.ReadFile(filepath.Join(cfg.Out, "000001.tar"))
	os.WriteFile(filepath.Join(cfg.Out, "000001.tar"), b[:len(b)/2], 0o644)

	cfg.afterShard = nil
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.ShardsKept != 1 || res.Samples != 28 {
		t.Fatalf("resume: %+v", res)
	}
	got := shardBytes(t, cfg.Out)
	delete(got, "000002.tar.tmp") // overwritten by Create, then renamed: must be gone
	if !reflect.DeepEqual(keys(got), keys(want)) {
		t.Fatalf("files %v, want %v", keys(got), keys(want))
	}
	for name, w := range want {
		if !bytes.Equal(got[name], w) {
			t.Errorf("%s differs from the uninterrupted run", name)
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestMissingAndCorruptImagesAreSkipped(t *testing.T) {
	data := copyDataset(t)
	ds, err := inat.LoadCOCO(filepath.Join(data, "train.json"), inat.COCOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	missing, truncated := ds.Images[3], ds.Images[10]
	os.Remove(filepath.Join(data, missing.FileName))
	b, _ := os.ReadFile(filepath.Join(data, truncated.FileName))
	os.WriteFile(filepath.Join(data, truncated.FileName), b[:len(b)/2], 0o644)
	cfg := testConfig(data, t.TempDir())
	cfg.Verify = true
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 26 || res.Skipped != 2 {
		t.Fatalf("result %+v", res)
	}
	lines, _ := os.ReadFile(filepath.Join(cfg.Out, "skipped.jsonl"))
	var skips []Skip
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		var s Skip
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatal(err)
		}
		skips = append(skips, s)
	}
	reasons := map[int64]string{}
	for _, s := range skips {
		reasons[*s.ImageID] = s.Reason
	}
	if !strings.HasPrefix(reasons[missing.ID], "missing") || !strings.HasPrefix(reasons[truncated.ID], "corrupt image") {
		t.Fatalf("skips %+v", skips)
	}
	samples, _ := readShards(t, cfg.Out)
	for _, s := range samples {
		if s.Key == padded(missing.ID) || s.Key == padded(truncated.ID) {
			t.Fatalf("skipped image %s in a shard", s.Key)
		}
	}
}

func TestMaxSizeReencodes(t *testing.T) {
	cfg := testConfig(dataset(t), t.TempDir())
	cfg.MaxSize = 20
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	samples, _ := readShards(t, cfg.Out)
	for _, s := range samples {
		img, err := jpeg.Decode(bytes.NewReader(s.Files["jpg"]))
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		var meta sampleMeta
		json.Unmarshal(s.Files["json"], &meta)
		if max(b.Dx(), b.Dy()) != 20 || meta.Width != b.Dx() || meta.Height != b.Dy() {
			t.Fatalf("sample %s: %v, metadata %dx%d", s.Key, b, meta.Width, meta.Height)
		}
	}
}

func TestFolderTree(t *testing.T) {
	data := dataset(t)
	cfg := testConfig(data, t.TempDir())
	cfg.JSON = ""
	cfg.Images = filepath.Join(data, "val")
	cfg.Categories = filepath.Join(data, "categories.csv")
	cfg.Shuffle = false
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	samples, _ := readShards(t, cfg.Out)
	if res.Samples != 7 || len(samples) != 7 || samples[0].Key != "000000000" || string(samples[6].Files["cls"]) != "6" {
		t.Fatalf("result %+v, first key %q", res, samples[0].Key)
	}
}

func writeJSON(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(p, []byte(body), 0o644)
	return p
}

func TestBadInput(t *testing.T) {
	data := dataset(t)
	cats := `"categories":[{"id":0,"name":"A b","image_dir_name":"x"}]`
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"corrupt json", func(c *Config) { c.JSON = writeJSON(t, `{"images":[{"id":1,"file_name":"a.jpg"},]}`) }, "corrupt JSON at byte"},
		{"unknown category", func(c *Config) {
			c.JSON = writeJSON(t, `{`+cats+`,"images":[{"id":1,"file_name":"a.jpg"}],"annotations":[{"image_id":1,"category_id":5}]}`)
		}, "unknown category id 5"},
		{"duplicate image id", func(c *Config) {
			c.JSON = writeJSON(t, `{`+cats+`,"images":[{"id":1,"file_name":"a.jpg"},{"id":1,"file_name":"b.jpg"}]}`)
		}, "duplicate image id 1"},
		{"missing json", func(c *Config) { c.JSON = filepath.Join(data, "nope.json") }, "--json"},
		{"no output", func(c *Config) { c.Out = "" }, "--out"},
		{"bad template", func(c *Config) { c.Template = "A photo of {colour}" }, "unknown field {colour}"},
		{"bad compression", func(c *Config) { c.Compression = "lz4" }, "compression"},
		{"folder tree without csv", func(c *Config) { c.JSON = "" }, "--categories"},
		{"test split", func(c *Config) {
			c.JSON = writeJSON(t, `{`+cats+`,"images":[{"id":1,"file_name":"a.jpg"}]}`)
		}, "no image has an annotation"},
		{"wrong image root", func(c *Config) { c.Images = filepath.Join(data, "train") }, "none of the first 16 images exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(data, t.TempDir())
			tc.edit(&cfg)
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	// Another configuration into the same folder is refused unless --overwrite.
	cfg := testConfig(data, t.TempDir())
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Template = "A photo of the {name}"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("changed template: err = %v", err)
	}
	cfg.Overwrite = true
	if res, err := Run(context.Background(), cfg); err != nil || res.ShardsKept != 0 || res.Samples != 28 {
		t.Fatalf("overwrite: %+v, %v", res, err)
	}
}

func TestClassesOnlyAndPreview(t *testing.T) {
	csv := testutil.SharedData(t, "inat2021/categories.csv")
	cfg := DefaultConfig()
	cfg.Categories = csv
	cfg.Out = t.TempDir()
	cfg.ClassesOnly = true
	cfg.Log = &bytes.Buffer{}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	classes, err := inat.LoadClasses(filepath.Join(cfg.Out, "classes.json"))
	if err != nil || len(classes) != 10000 || res.DistinctCaptions != 10000 {
		t.Fatalf("%d classes, %+v, %v", len(classes), res, err)
	}
	t.Logf("classes-only: %d classes, %d distinct captions", res.Classes, res.DistinctCaptions)
	lines, err := Preview(cfg, []int{3308, 2738, 2159, 5407, 5213, 2087})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"3308\tA photo of the Buff-tailed Coronet Birds Boissonneaua flavescens",
		"2738\tA photo of the Common Blue Crab Callinectes sapidus",
		"2159\tA photo of the Imperial Moth Insects Eacles imperialis",
		"5407\tA photo of the Oakmoss Fungi Evernia prunastri",
		"5213\tA photo of the Pacific Purple Sea Urchin Strongylocentrotus purpuratus",
		"2087\tA photo of the Pine White Insects Neophasia menapia",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("preview:\n%s", strings.Join(lines, "\n"))
	}
	if _, err := Preview(cfg, []int{10000}); err == nil || !strings.Contains(err.Error(), "no category with id 10000") {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestAutoFields(t *testing.T) {
	cfg := testConfig(dataset(t), t.TempDir())
	cfg.Fields = []string{"auto"}
	cfg.ClassesOnly = true
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Auto == nil || res.DistinctCaptions != 7 || !strings.Contains(cfg.Log.(*bytes.Buffer).String(), "--fields auto chose") {
		t.Fatalf("result %+v, log %s", res, cfg.Log)
	}
	t.Log(strings.TrimSpace(cfg.Log.(*bytes.Buffer).String()))
}

func TestStats(t *testing.T) {
	csv := testutil.SharedData(t, "inat2021/categories.csv")
	cfg := DefaultConfig()
	cfg.Categories = csv
	st, err := ComputeStats(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	st.Print(&buf)
	t.Log("\n" + buf.String())
	if st.Classes != 10000 || st.MaxTokens > 77 || st.MaxTokens < 10 || st.PerSupercategory["Plants"] != 4271 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStatsSynthetic(t *testing.T) {
	data := dataset(t)
	cfg := testConfig(data, "")
	st, err := ComputeStats(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Images != 28 || st.MinPerClass != 4 || st.MaxPerClass != 4 || st.MaxTokens < 8 || len(st.TokenHist) == 0 {
		t.Fatalf("stats %+v", st)
	}
}
