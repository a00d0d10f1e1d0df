package synth

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/litcache/litcache/internal/inat"

	"github.com/litcache/litcache/internal/atomicfile"
)

// Options size a synthetic dataset.
type Options struct {
	Species         int   // number of classes
	TrainPerSpecies int   // images per class in train.json
	ValPerSpecies   int   // images per class in val.json (0: no val split)
	ImageSize       int   // longest side in pixels; about half the images are 4:3 landscape
	Seed            int64 // same seed, same bytes
	Quality         int   // JPEG quality, 90 when 0
	Threads         int   // parallel drawers, GOMAXPROCS when 0
}

// DefaultOptions is a demo-sized dataset: 20 species × (30 train + 10 val)
// images of 96 px.
func DefaultOptions() Options {
	return Options{Species: 20, TrainPerSpecies: 30, ValPerSpecies: 10, ImageSize: 96, Seed: 1, Quality: 90}
}

// cocoImage is an image record as iNat2021's json writes it.
type cocoImage struct {
	ID                  int64   `json:"id"`
	Width               int     `json:"width"`
	Height              int     `json:"height"`
	FileName            string  `json:"file_name"`
	License             int     `json:"license"`
	RightsHolder        string  `json:"rights_holder"`
	Date                string  `json:"date"`
	Latitude            float64 `json:"latitude"`
	Longitude           float64 `json:"longitude"`
	LocationUncertainty int     `json:"location_uncertainty"`
}

type cocoAnnotation struct {
	ID         int64 `json:"id"`
	ImageID    int64 `json:"image_id"`
	CategoryID int   `json:"category_id"`
}

type cocoFile struct {
	Info        map[string]any   `json:"info"`
	Images      []cocoImage      `json:"images"`
	Categories  []inat.Category  `json:"categories"`
	Annotations []cocoAnnotation `json:"annotations"`
	Licenses    []map[string]any `json:"licenses"`
}

// job is one image to draw.
type job struct {
	cat   *inat.Category
	split string
	index int
	rec   *cocoImage
}

// Generate writes a synthetic mini-iNat under dir: categories.csv,
// train.json, val.json and the JPEGs under train/ and val/.
func Generate(dir string, opt Options) error {
	if opt.Species <= 0 || opt.TrainPerSpecies < 0 || opt.ValPerSpecies < 0 || opt.ImageSize < 8 {
		return fmt.Errorf("synth: options %+v: want species > 0, counts ≥ 0, image size ≥ 8", opt)
	}
	if opt.Quality == 0 {
		opt.Quality = 90
	}
	if opt.Threads <= 0 {
		opt.Threads = runtime.GOMAXPROCS(0)
	}
	cats := Taxonomy(opt.Species, opt.Seed)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := writeCSV(filepath.Join(dir, "categories.csv"), cats); err != nil {
		return err
	}
	var jobs []job
	files := map[string]*cocoFile{}
	nextID := int64(1)
	for _, split := range []string{"train", "val"} {
		per := opt.TrainPerSpecies
		if split == "val" {
			per = opt.ValPerSpecies
		}
		cf := &cocoFile{Info: map[string]any{"description": "litcache synthetic mini-iNat", "seed": opt.Seed, "year": 2021},
			Categories: cats, Images: []cocoImage{}, Annotations: []cocoAnnotation{},
			Licenses: []map[string]any{{"id": 1, "name": "CC0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}}}
		files[split] = cf
		// Image records in iNat's order: by category, then by image.
		rng := rand.New(rand.NewSource(opt.Seed*7919 + int64(len(split))))
		for c := range cats {
			for j := 0; j < per; j++ {
				w, h := opt.ImageSize, opt.ImageSize
				if rng.Intn(2) == 0 {
					h = opt.ImageSize * 3 / 4
				}
				id := nextID
				nextID++
				date := time.Date(2015+rng.Intn(6), time.Month(1+rng.Intn(12)), 1+rng.Intn(28), rng.Intn(24), 0, 0, 0, time.UTC)
				cf.Images = append(cf.Images, cocoImage{ID: id, Width: w, Height: h,
					FileName: split + "/" + cats[c].ImageDirName + "/" + uuid(rng) + ".jpg", License: 1,
					RightsHolder: "synth", Date: date.Format("2006-01-02 15:04:05+00:00"),
					Latitude: rng.Float64()*140 - 70, Longitude: rng.Float64()*360 - 180, LocationUncertainty: rng.Intn(1000)})
				cf.Annotations = append(cf.Annotations, cocoAnnotation{ID: id, ImageID: id, CategoryID: cats[c].ID})
			}
		}
		for i := range cf.Images {
			jobs = append(jobs, job{cat: &cats[cf.Annotations[i].CategoryID], split: split, index: i, rec: &cf.Images[i]})
		}
	}
	if err := drawAll(dir, jobs, opt); err != nil {
		return err
	}
	for _, split := range []string{"train", "val"} {
		b, err := json.MarshalIndent(files[split], "", " ")
		if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, split+".json"), b); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}

// uuid formats 16 random bytes as a version-4 UUID, as iNat's file names are.
func uuid(rng *rand.Rand) string {
	var b [16]byte
	rng.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func drawAll(dir string, jobs []job, opt Options) error {
	ch := make(chan *job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < opt.Threads; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for j := range ch {
				// Each image has its own random stream: the bytes do not
				// depend on the number of workers.
				rng := rand.New(rand.NewSource(int64(hash(strconv.FormatInt(opt.Seed, 10), j.split, strconv.Itoa(j.index)))))
				l := lookOf(j.cat)
				img := draw(&l, j.rec.Width, j.rec.Height, rng)
				buf.Reset()
				err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: opt.Quality})
				path := filepath.Join(dir, filepath.FromSlash(j.rec.FileName))
				if err == nil {
					err = os.MkdirAll(filepath.Dir(path), 0o755)
				}
				if err == nil {
					err = os.WriteFile(path, buf.Bytes(), 0o644)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("synth: %s: %w", j.rec.FileName, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range jobs {
		ch <- &jobs[i]
	}
	close(ch)
	wg.Wait()
	return firstErr
}

// writeCSV writes categories in the layout of iNat2021's categories CSV as
// ../shared/data/inat2021/categories.csv has it (minus VLHub's label column).
func writeCSV(path string, cats []inat.Category) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(append([]string{""}, inat.Fields...))
	for i, c := range cats {
		row := []string{strconv.Itoa(i)}
		for _, f := range inat.Fields {
			v, _ := c.Field(f)
			row = append(row, v)
		}
		w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}
