package synth

import (
	"bytes"
	"crypto/sha256"
	"image/jpeg"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/inat"
)

func treeHash(t *testing.T, dir string) (string, int) {
	t.Helper()
	h := sha256.New()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(rel))
		h.Write(b)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(h.Sum(nil)), n
}

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Species: 12, TrainPerSpecies: 3, ValPerSpecies: 1, ImageSize: 40, Seed: 7, Threads: 2}
	if err := Generate(dir, opt); err != nil {
		t.Fatal(err)
	}
	cats, err := inat.LoadCategoriesCSV(filepath.Join(dir, "categories.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cats) != 12 {
		t.Fatalf("%d categories", len(cats))
	}
	supers := map[string]bool{}
	for _, c := range cats {
		supers[c.Supercategory] = true
		for _, r := range inat.Ranks {
			if c.Taxon(r) == "" {
				t.Fatalf("category %d: empty %s", c.ID, r)
			}
		}
		if !strings.HasPrefix(c.Name, c.Genus+" ") || c.SpecificEpithet != strings.TrimPrefix(c.Name, c.Genus+" ") {
			t.Fatalf("binomial %q does not match genus %q / epithet %q", c.Name, c.Genus, c.SpecificEpithet)
		}
	}
	if len(supers) != 11 {
		t.Errorf("%d supercategories in 12 species, want all 11", len(supers))
	}
	tmpl, _ := inat.ParseTemplate(inat.DefaultTemplate, inat.DefaultOmit)
	if _, distinct := tmpl.Captions(cats); distinct != len(cats) {
		t.Errorf("%d distinct captions for %d species", distinct, len(cats))
	}
	for split, per := range map[string]int{"train": 3, "val": 1} {
		ds, err := inat.LoadCOCO(filepath.Join(dir, split+".json"), inat.COCOOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds.Images) != 12*per {
			t.Fatalf("%s: %d images", split, len(ds.Images))
		}
		for _, im := range ds.Images {
			c := cats[im.CategoryID]
			if !strings.HasPrefix(im.FileName, split+"/"+c.ImageDirName+"/") {
				t.Fatalf("%s: %s not under its class folder", split, im.FileName)
			}
			b, err := os.ReadFile(filepath.Join(dir, im.FileName))
			if err != nil {
				t.Fatal(err)
			}
			img, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", im.FileName, err)
			}
			if b := img.Bounds(); b.Dx() != 40 || (b.Dy() != 40 && b.Dy() != 30) {
				t.Fatalf("%s: size %v", im.FileName, b)
			}
		}
	}
	// Same seed, same bytes, whatever the number of workers.
	dir2 := t.TempDir()
	opt.Threads = 1
	if err := Generate(dir2, opt); err != nil {
		t.Fatal(err)
	}
	h1, n1 := treeHash(t, dir)
	h2, n2 := treeHash(t, dir2)
	if h1 != h2 || n1 != n2 || n1 != 12*4+3 {
		t.Fatalf("not deterministic: %d vs %d files", n1, n2)
	}
}

func TestTaxonomyShares(t *testing.T) {
	cats := Taxonomy(300, 1)
	genera, families, orders, names := map[string]int{}, map[string]int{}, map[string]int{}, map[string]bool{}
	for _, c := range cats {
		genera[c.Genus]++
		families[c.Family]++
		orders[c.Order]++
		if names[c.Name] {
			t.Fatalf("binomial %q twice", c.Name)
		}
		names[c.Name] = true
	}
	if len(genera) >= 300 || len(families) >= len(genera) || len(orders) >= len(families) {
		t.Fatalf("no sharing: %d genera, %d families, %d orders", len(genera), len(families), len(orders))
	}
	t.Logf("300 species: %d genera, %d families, %d orders", len(genera), len(families), len(orders))
}

func TestOptionsRejected(t *testing.T) {
	if err := Generate(t.TempDir(), Options{Species: 0, ImageSize: 32}); err == nil {
		t.Fatal("0 species accepted")
	}
}
