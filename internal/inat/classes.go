package inat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/litcache/litcache/internal/atomicfile"
)

// Ranks are the taxonomic ranks of iNat2021 from the root down; "species" is
// the category's binomial name.
var Ranks = []string{"kingdom", "phylum", "class", "order", "family", "genus", "species"}

// Taxon returns the category's taxon at rank (one of Ranks) as the dataset
// spells it, "" for an unknown rank.
func (c *Category) Taxon(rank string) string {
	if rank == "species" {
		return c.Name
	}
	for _, r := range Ranks[:len(Ranks)-1] {
		if r == rank {
			v, _ := c.Field(rank)
			return v
		}
	}
	return ""
}

// Class is one record of classes.json: a category and its caption. Tune and
// eval read these to build the zero-shot classifier.
type Class struct {
	ID              int    `json:"id"`
	Caption         string `json:"caption"`
	Name            string `json:"name"`
	CommonName      string `json:"common_name"`
	Supercategory   string `json:"supercategory"`
	Kingdom         string `json:"kingdom"`
	Phylum          string `json:"phylum"`
	Class           string `json:"class"`
	Order           string `json:"order"`
	Family          string `json:"family"`
	Genus           string `json:"genus"`
	SpecificEpithet string `json:"specific_epithet"`
	ImageDirName    string `json:"image_dir_name,omitempty"`
}

// NewClass pairs a category with its caption.
func NewClass(c Category, caption string) Class {
	return Class{ID: c.ID, Caption: caption, Name: c.Name, CommonName: c.CommonName,
		Supercategory: c.Supercategory, Kingdom: c.Kingdom, Phylum: c.Phylum, Class: c.Class,
		Order: c.Order, Family: c.Family, Genus: c.Genus, SpecificEpithet: c.SpecificEpithet,
		ImageDirName: c.ImageDirName}
}

// Category returns the class's metadata as a Category.
func (c *Class) Category() Category {
	return Category{ID: c.ID, Name: c.Name, CommonName: c.CommonName, Supercategory: c.Supercategory,
		Kingdom: c.Kingdom, Phylum: c.Phylum, Class: c.Class, Order: c.Order, Family: c.Family,
		Genus: c.Genus, SpecificEpithet: c.SpecificEpithet, ImageDirName: c.ImageDirName}
}

// Taxon returns the class's taxon at rank (one of Ranks), "" for an unknown rank.
func (c *Class) Taxon(rank string) string {
	cat := c.Category()
	return cat.Taxon(rank)
}

// LoadClasses reads classes.json (a JSON array of Class). Ids must be distinct
// and captions non-empty.
func LoadClasses(path string) ([]Class, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("inat: classes: %w", err)
	}
	var cls []Class
	if err := json.Unmarshal(b, &cls); err != nil {
		return nil, fmt.Errorf("inat: classes %s: %w", path, err)
	}
	if len(cls) == 0 {
		return nil, fmt.Errorf("inat: classes %s: no classes", path)
	}
	seen := make(map[int]bool, len(cls))
	for i, c := range cls {
		if seen[c.ID] {
			return nil, fmt.Errorf("inat: classes %s: record %d: duplicate id %d", path, i, c.ID)
		}
		seen[c.ID] = true
		if c.Caption == "" {
			return nil, fmt.Errorf("inat: classes %s: record %d (id %d): empty caption", path, i, c.ID)
		}
	}
	return cls, nil
}

// WriteClasses writes classes sorted by id to path as an indented JSON array,
// atomically (temporary file, fsync, rename).
func WriteClasses(path string, classes []Class) error {
	cls := append([]Class(nil), classes...)
	sort.SliceStable(cls, func(i, j int) bool { return cls[i].ID < cls[j].ID })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(cls); err != nil {
		return fmt.Errorf("inat: classes: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("inat: classes: %w", err)
	}
	return nil
}
