package predict_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle/bundletest"
	"github.com/litcache/litcache/stages/predict"
)

// photoTree writes the fixture's photos into a folder tree in every format
// predict reads, with things a walk must skip and one broken photo. It
// returns the root and the class index of each photo predict should list,
// in its order (-1: an unreadable photo).
func photoTree(t *testing.T, f bundletest.Fixture) (string, []string, []int) {
	t.Helper()
	root := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/junco.jpg", f.Photos[0])
	write("a/towhee.JPEG", f.Photos[2])
	// The woodpecker's decoded JPEG stored sideways, lossless, with EXIF
	// orientation 6: upright it is the very photo of its class embedding.
	wood, err := imageproc.DecodeRGB(f.Photos[4])
	if err != nil {
		t.Fatal(err)
	}
	write("a/sub/woodpecker.png", bundletest.RotatedPNG(t, wood, true))
	write("b/broken.jpg", f.Photos[1][:len(f.Photos[1])/2])
	write("b/solid.webp", bundletest.SolidWebP(40, 30, [3]uint8{30, 200, 90}, 0))
	write("b/notes.txt", []byte("not a photo"))
	write("b/.hidden.jpg", f.Photos[3])
	write(".cache/x.jpg", f.Photos[3])
	files := []string{"a/junco.jpg", "a/sub/woodpecker.png", "a/towhee.JPEG", "b/broken.jpg", "b/solid.webp"}
	for i := range files {
		files[i] = filepath.Join(root, files[i])
	}
	return root, files, []int{0, 4, 2, -1, -2} // -2: readable, class unknown
}

func run(t *testing.T, cfg predict.Config) (string, predict.Result) {
	t.Helper()
	var out bytes.Buffer
	cfg.Out = &out
	cfg.Progress.Quiet = true
	res, err := predict.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), res
}

// The CSV has exactly the columns, one row per photo and
// prediction in the walk's order, the taxonomy columns filled, and a photo
// that cannot be read is one row with its error — never a stop.
func TestPredictCSV(t *testing.T) {
	f := bundletest.Tiny(t, t.TempDir())
	root, files, class := photoTree(t, f)
	missing := filepath.Join(root, "nope.jpg")
	cfg := predict.DefaultConfig()
	cfg.Bundle, cfg.Paths, cfg.Format, cfg.Top, cfg.BatchSize = f.Path, []string{root, missing}, predict.FormatCSV, 3, 2
	out, res := run(t, cfg)
	if res.Photos != 6 || res.Failed != 2 {
		t.Errorf("result %+v, want 6 photos, 2 failed", res)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := []string{"file", "rank", "k", "name", "common_name", "score", "kingdom", "phylum", "class", "order", "family", "genus", "species", "error"}
	if !slices.Equal(recs[0], wantHeader) {
		t.Fatalf("header %v, want %v", recs[0], wantHeader)
	}
	recs = recs[1:]
	var got []string
	for _, r := range recs {
		if len(got) == 0 || got[len(got)-1] != r[0] {
			got = append(got, r[0])
		}
	}
	if want := append(files, missing); !slices.Equal(got, want) {
		t.Fatalf("photos in order %v, want %v", got, want)
	}
	byFile := map[string][][]string{}
	for _, r := range recs {
		byFile[r[0]] = append(byFile[r[0]], r)
	}
	for i, file := range files {
		rows := byFile[file]
		switch class[i] {
		case -1:
			if len(rows) != 1 || rows[0][13] == "" || rows[0][2] != "" {
				t.Errorf("%s: rows %v, want one error row", file, rows)
			}
			continue
		case -2:
		default:
			c := f.Classes[class[i]]
			top := rows[0]
			if top[3] != c.Name || top[4] != c.CommonName || top[11] != c.Taxonomy.Genus || top[12] != c.Name || top[6] != "Animalia" {
				t.Errorf("%s: top row %v, want %s with its taxonomy", file, top, c.Name)
			}
		}
		if len(rows) != 3 {
			t.Fatalf("%s: %d rows, want 3", file, len(rows))
		}
		for k, r := range rows {
			if r[1] != "species" || r[2] != string(rune('1'+k)) || r[13] != "" {
				t.Errorf("%s row %d: %v", file, k, r)
			}
		}
	}
	if rows := byFile[missing]; len(rows) != 1 || !strings.Contains(rows[0][13], "no such file") {
		t.Errorf("missing path: rows %v", rows)
	}
}

// With --rank genus each row is a genus with its species' probabilities
// summed; the JSON output carries the same answers.
func TestPredictJSONAtRank(t *testing.T) {
	f := bundletest.Tiny(t, t.TempDir())
	root, files, class := photoTree(t, f)
	cfg := predict.DefaultConfig()
	cfg.Bundle, cfg.Paths, cfg.Format, cfg.Rank = f.Path, []string{root}, predict.FormatJSON, "genus"
	out, _ := run(t, cfg)
	var rows []predict.JSONRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	if len(rows) != len(files) {
		t.Fatalf("%d rows, want %d", len(rows), len(files))
	}
	for i, r := range rows {
		if r.File != files[i] || r.Rank != "genus" {
			t.Errorf("row %d: %s at %s", i, r.File, r.Rank)
		}
		if class[i] == -1 {
			if r.Error == "" || len(r.Predictions) != 0 {
				t.Errorf("%s: %+v, want an error", r.File, r)
			}
			continue
		}
		// Three genera: top 5 gives all three, summing to 1.
		var sum float64
		for _, p := range r.Predictions {
			sum += p.Score
			if p.Taxonomy.Species != "" || p.Taxonomy.Genus != p.Name || p.CommonName != "" {
				t.Errorf("%s: genus prediction %+v", r.File, p)
			}
		}
		if len(r.Predictions) != 3 || sum < 0.9999 || sum > 1.0001 {
			t.Errorf("%s: %d genera summing to %g", r.File, len(r.Predictions), sum)
		}
		if class[i] >= 0 && r.Predictions[0].Name != f.Classes[class[i]].Taxonomy.Genus {
			t.Errorf("%s: top genus %s, want %s", r.File, r.Predictions[0].Name, f.Classes[class[i]].Taxonomy.Genus)
		}
	}
}

func TestPredictTable(t *testing.T) {
	f := bundletest.Tiny(t, t.TempDir())
	root, _, _ := photoTree(t, f)
	cfg := predict.DefaultConfig()
	cfg.Bundle, cfg.Paths = f.Path, []string{filepath.Join(root, "a", "junco.jpg"), filepath.Join(root, "b", "broken.jpg")}
	out, _ := run(t, cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+5+1+1 {
		t.Fatalf("%d lines, want a name and 5 predictions, a name and an error:\n%s", len(lines), out)
	}
	if !strings.Contains(lines[1], "Junco hyemalis") || !strings.Contains(lines[1], "Dark-eyed Junco") || !strings.Contains(lines[1], "%") {
		t.Errorf("first prediction line %q", lines[1])
	}
	if !strings.Contains(lines[7], "error:") {
		t.Errorf("broken photo line %q", lines[7])
	}
}

func TestPredictRejectsBadConfig(t *testing.T) {
	f := bundletest.Tiny(t, t.TempDir())
	cases := []struct {
		name string
		edit func(*predict.Config)
		want string
	}{
		{"no paths", func(c *predict.Config) { c.Paths = nil }, "no photo"},
		{"top 0", func(c *predict.Config) { c.Top = 0 }, "--top"},
		{"format", func(c *predict.Config) { c.Format = "xml" }, "--format"},
		{"rank", func(c *predict.Config) { c.Rank = "tribe" }, "--rank"},
		{"bundle", func(c *predict.Config) { c.Bundle = filepath.Join(t.TempDir(), "none") }, "bundle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := predict.DefaultConfig()
			cfg.Bundle, cfg.Paths = f.Path, []string{t.TempDir()}
			c.edit(&cfg)
			if _, err := predict.Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}
