package synth

import (
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/inat"
)

// features pools a decoded photo to 6×6 RGB means: a crude stand-in for an
// image tower, enough to show that the photos carry their class.
func features(t *testing.T, path string) []float64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	const g = 6
	b := img.Bounds()
	out := make([]float64, g*g*3)
	cnt := make([]float64, g*g)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, gg, bb, _ := img.At(x, y).RGBA()
			c := (y-b.Min.Y)*g/b.Dy()*g + (x-b.Min.X)*g/b.Dx()
			out[3*c] += float64(r >> 8)
			out[3*c+1] += float64(gg >> 8)
			out[3*c+2] += float64(bb >> 8)
			cnt[c]++
		}
	}
	for i := range out {
		out[i] /= cnt[i/3]
	}
	return out
}

// TestPhotosCarryTheirClass: a nearest-centroid classifier on pooled pixels,
// fit on train and scored on val, must beat chance (1/10) by far.
func TestPhotosCarryTheirClass(t *testing.T) {
	dir := t.TempDir()
	if err := Generate(dir, Options{Species: 10, TrainPerSpecies: 8, ValPerSpecies: 4, ImageSize: 32, Seed: 5, Threads: 2}); err != nil {
		t.Fatal(err)
	}
	load := func(split string) *inat.Dataset {
		ds, err := inat.LoadCOCO(filepath.Join(dir, split+".json"), inat.COCOOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	centroid := map[int][]float64{}
	count := map[int]float64{}
	for _, im := range load("train").Images {
		f := features(t, filepath.Join(dir, im.FileName))
		if centroid[im.CategoryID] == nil {
			centroid[im.CategoryID] = make([]float64, len(f))
		}
		for i, v := range f {
			centroid[im.CategoryID][i] += v
		}
		count[im.CategoryID]++
	}
	for c := range centroid {
		for i := range centroid[c] {
			centroid[c][i] /= count[c]
		}
	}
	right, total := 0, 0
	for _, im := range load("val").Images {
		f := features(t, filepath.Join(dir, im.FileName))
		best, bestD := -1, 0.0
		for c, m := range centroid {
			d := 0.0
			for i := range f {
				d += (f[i] - m[i]) * (f[i] - m[i])
			}
			if best < 0 || d < bestD {
				best, bestD = c, d
			}
		}
		if best == im.CategoryID {
			right++
		}
		total++
	}
	acc := float64(right) / float64(total)
	t.Logf("nearest centroid on 6×6 pooled pixels: %d/%d = %.2f (chance 0.10)", right, total, acc)
	if acc < 0.5 {
		t.Errorf("val accuracy %.2f: the photos barely depend on the species", acc)
	}
}
