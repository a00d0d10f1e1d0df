// Package bundletest builds small classifier bundles for the tests of
// bundle, predict and serve: a random clip-tiny image tower and six classes
// whose class embeddings are the tower's own embeddings of six distinct
// photos, so that each photo is classified as its class with a high score
// and a wrong pipeline (decoding, preprocessing, scoring) shows.
package bundletest

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/stages/bundle"
)

// Fixture is a bundle on disk with one photo per class.
type Fixture struct {
	Path    string
	Classes []bundle.Class
	// Photos[i] is a JPEG of class i (non-square, so resizing and cropping matter).
	Photos [][]byte
	// LogitScale is the bundle's stored log temperature.
	LogitScale float32
}

// Classes are the fixture's classes: three genera in two families, two
// orders, one class, phylum and kingdom.
func Classes() []bundle.Class {
	tx := func(order, family, genus, species string) bundle.Taxonomy {
		return bundle.Taxonomy{Kingdom: "Animalia", Phylum: "Chordata", Class: "Aves", Order: order,
			Family: family, Genus: genus, Species: species}
	}
	return []bundle.Class{
		{ID: 10, Name: "Junco hyemalis", CommonName: "Dark-eyed Junco", Taxonomy: tx("Passeriformes", "Passerellidae", "Junco", "Junco hyemalis")},
		{ID: 11, Name: "Junco phaeonotus", CommonName: "Yellow-eyed Junco", Taxonomy: tx("Passeriformes", "Passerellidae", "Junco", "Junco phaeonotus")},
		{ID: 12, Name: "Melozone crissalis", CommonName: "California Towhee", Taxonomy: tx("Passeriformes", "Passerellidae", "Melozone", "Melozone crissalis")},
		{ID: 13, Name: "Melozone fusca", CommonName: "Canyon Towhee", Taxonomy: tx("Passeriformes", "Passerellidae", "Melozone", "Melozone fusca")},
		{ID: 14, Name: "Picoides pubescens", CommonName: "Downy Woodpecker", Taxonomy: tx("Piciformes", "Picidae", "Picoides", "Picoides pubescens")},
		{ID: 15, Name: "Picoides villosus", CommonName: "Hairy Woodpecker", Taxonomy: tx("Piciformes", "Picidae", "Picoides", "Picoides villosus")},
	}
}

// Photo draws class i's photo: a w×h image whose colours and stripes depend on i.
func Photo(i, w, h int) *imageproc.RGB {
	m := imageproc.NewRGB(w, h)
	hue := float64(i) / 6
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := (y*w + x) * 3
			stripe := (x*(i+1)/9+y/(i+3))%2 == 0
			for c := range 3 {
				v := 0.5 + 0.45*math.Sin(2*math.Pi*(hue+float64(c)/3))
				if stripe {
					v = 1 - v
				}
				m.Pix[p+c] = uint8(255 * v)
			}
		}
	}
	return m
}

// Tiny writes a bundle into dir and returns it with its photos.
func Tiny(tb testing.TB, dir string) Fixture {
	tb.Helper()
	cfg, _ := clip.Builtin("clip-tiny")
	be := backend.NewCPU()
	m := clip.NewRandomModel(be, cfg, 3)
	defer m.Text.Free()
	tower := bundle.CLIPTower(m.Vision)
	defer tower.Free()
	f := Fixture{Path: filepath.Join(dir, "tiny.bundle.safetensors"), Classes: Classes(), LogitScale: float32(math.Log(100))}
	pre := tower.Preprocessor()
	var emb []float32
	for i := range f.Classes {
		jpg, err := imageproc.EncodeJPEG(Photo(i, 56, 40), 95)
		if err != nil {
			tb.Fatal(err)
		}
		f.Photos = append(f.Photos, jpg)
		img, err := bundle.DecodePhoto(jpg, bundle.FieldLimits())
		if err != nil {
			tb.Fatal(err)
		}
		e := tower.Encode(pre.Transform(img, nil), 1)
		var ss float64
		for _, v := range e {
			ss += float64(v) * float64(v)
		}
		for j := range e {
			e[j] /= float32(math.Sqrt(ss))
		}
		emb = append(emb, e...)
	}
	meta := bundle.Meta{Fingerprint: "sha256:test", Classes: f.Classes, Templates: []string{"{caption}"}}
	if err := bundle.Write(f.Path, tower, emb, f.LogitScale, meta); err != nil {
		tb.Fatal(err)
	}
	return f
}
