package caption

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/litcache/litcache/internal/inat"
)

// metadata is what the run reads before touching images.
type metadata struct {
	cats   []inat.Category // sorted by id
	byID   map[int]*inat.Category
	images []inat.Image // nil when only categories were needed
	idKeys bool         // images carry ids (keys are ids, not plan indices)
}

// loadCategories reads the classes: the CSV when given, else the json's.
func loadMetadata(cfg *Config, withImages bool) (*metadata, error) {
	md := &metadata{}
	var csvCats []inat.Category
	if cfg.Categories != "" {
		var err error
		csvCats, err = inat.LoadCategoriesCSV(cfg.Categories)
		if err != nil {
			return nil, fmt.Errorf("caption: --categories: %w", err)
		}
	}
	switch {
	case cfg.JSON != "" && (withImages || csvCats == nil):
		t0 := time.Now()
		if st, err := os.Stat(cfg.JSON); err == nil && st.Size() > 64<<20 {
			fmt.Fprintf(cfg.Log, "caption: streaming %s (%d MB)…\n", cfg.JSON, st.Size()>>20)
		}
		ds, err := inat.LoadCOCO(cfg.JSON, inat.COCOOptions{Categories: csvCats})
		if err != nil {
			return nil, fmt.Errorf("caption: --json: %w", err)
		}
		fmt.Fprintf(cfg.Log, "caption: %s: %d images, %d categories (read in %s)\n",
			filepath.Base(cfg.JSON), len(ds.Images), len(ds.Categories), time.Since(t0).Round(time.Millisecond))
		md.cats = ds.Categories
		if csvCats != nil {
			md.cats = csvCats
		}
		md.images = ds.Images
		md.idKeys = true
		if len(md.cats) == 0 {
			return nil, fmt.Errorf("caption: --json %s has no categories; give the categories CSV (--categories)", cfg.JSON)
		}
	default:
		md.cats = csvCats
	}
	md.cats = append([]inat.Category(nil), md.cats...)
	sort.SliceStable(md.cats, func(i, j int) bool { return md.cats[i].ID < md.cats[j].ID })
	md.byID = make(map[int]*inat.Category, len(md.cats))
	for i := range md.cats {
		md.byID[md.cats[i].ID] = &md.cats[i]
	}
	if withImages && cfg.JSON == "" {
		imgs, err := scanTree(cfg.Images, md.cats)
		if err != nil {
			return nil, err
		}
		md.images = imgs
	}
	return md, nil
}

// imageExts are the files a folder tree contributes.
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true}

// scanTree lists ROOT/{image_dir_name}/*.{jpg,jpeg,png} for every category,
// in category order, then by file name.
func scanTree(root string, cats []inat.Category) ([]inat.Image, error) {
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("caption: --images %s: not a folder", root)
	}
	var imgs []inat.Image
	found := 0
	for _, c := range cats {
		if c.ImageDirName == "" {
			return nil, fmt.Errorf("caption: category %d has no image_dir_name: the folder-tree input needs it", c.ID)
		}
		ents, err := os.ReadDir(filepath.Join(root, c.ImageDirName))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("caption: %w", err)
		}
		found++
		for _, e := range ents {
			if e.IsDir() || !imageExts[strings.ToLower(path.Ext(e.Name()))] {
				continue
			}
			imgs = append(imgs, inat.Image{ID: -1, FileName: c.ImageDirName + "/" + e.Name(), CategoryID: c.ID})
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("caption: --images %s holds no folder named after a category's image_dir_name (e.g. %s)", root, cats[0].ImageDirName)
	}
	return imgs, nil
}

// buildTemplate resolves Template / Fields (auto included) into a template.
func buildTemplate(cfg *Config, cats []inat.Category) (*inat.Template, *inat.AutoFields, error) {
	text := cfg.Template
	var auto *inat.AutoFields
	if len(cfg.Fields) == 1 && cfg.Fields[0] == "auto" {
		sel, err := inat.SelectFields(cats, nil, cfg.Omit)
		if err != nil {
			return nil, nil, fmt.Errorf("caption: --fields auto: %w", err)
		}
		auto = &sel
		text = inat.FieldsTemplate(sel.Fields)
	} else if len(cfg.Fields) > 0 {
		text = inat.FieldsTemplate(cfg.Fields)
	}
	if text == "" {
		text = inat.DefaultTemplate
	}
	t, err := inat.ParseTemplate(text, cfg.Omit)
	if err != nil {
		return nil, nil, fmt.Errorf("caption: %w", err)
	}
	return t, auto, nil
}
