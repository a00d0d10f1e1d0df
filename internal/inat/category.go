// Package inat reads the iNaturalist 2021 metadata: the categories (CSV or the
// COCO-style json's "categories"), the image records of train.json / val.json
// (streamed: train.json holds 2.7M records), the taxonomy kingdom → species and
// the per-class records (classes.json) that the caption, tune and eval stages
// share. It also renders captions from class metadata (template.go).
package inat

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Category is one iNat2021 class as the dataset describes it. The json tags are
// the field names of train.json's "categories" records.
type Category struct {
	ID              int    `json:"id"`
	Name            string `json:"name"` // binomial, e.g. "Evernia prunastri"
	CommonName      string `json:"common_name"`
	Supercategory   string `json:"supercategory"` // Plants, Insects, Birds, …, Animalia (catch-all)
	Kingdom         string `json:"kingdom"`
	Phylum          string `json:"phylum"`
	Class           string `json:"class"`
	Order           string `json:"order"`
	Family          string `json:"family"`
	Genus           string `json:"genus"`
	SpecificEpithet string `json:"specific_epithet"`
	ImageDirName    string `json:"image_dir_name"` // e.g. "05407_Fungi_Ascomycota_…_Evernia_prunastri"
}

// Fields lists the names of the category fields a caption template may use,
// in the order of the iNat2021 json.
var Fields = []string{"id", "name", "common_name", "supercategory", "kingdom", "phylum",
	"class", "order", "family", "genus", "specific_epithet", "image_dir_name"}

// Field returns the value of a category field by its iNat json name, and false
// for an unknown name.
func (c *Category) Field(name string) (string, bool) {
	switch name {
	case "id":
		return strconv.Itoa(c.ID), true
	case "name", "species":
		return c.Name, true
	case "common_name":
		return c.CommonName, true
	case "supercategory":
		return c.Supercategory, true
	case "kingdom":
		return c.Kingdom, true
	case "phylum":
		return c.Phylum, true
	case "class":
		return c.Class, true
	case "order":
		return c.Order, true
	case "family":
		return c.Family, true
	case "genus":
		return c.Genus, true
	case "specific_epithet":
		return c.SpecificEpithet, true
	case "image_dir_name":
		return c.ImageDirName, true
	}
	return "", false
}

// setField is Field's inverse for the string fields (the CSV reader's mapping).
func (c *Category) setField(name, v string) {
	switch name {
	case "name":
		c.Name = v
	case "common_name":
		c.CommonName = v
	case "supercategory":
		c.Supercategory = v
	case "kingdom":
		c.Kingdom = v
	case "phylum":
		c.Phylum = v
	case "class":
		c.Class = v
	case "order":
		c.Order = v
	case "family":
		c.Family = v
	case "genus":
		c.Genus = v
	case "specific_epithet":
		c.SpecificEpithet = v
	case "image_dir_name":
		c.ImageDirName = v
	}
}

// LoadCategoriesCSV reads a categories CSV such as ../shared/data/inat2021/categories.csv
// (a header naming the columns; "id" and "name" are required, the other
// category fields are read when present; unknown columns such as a pandas
// index or VLHub's "label" are ignored). Ids must be distinct.
func LoadCategoriesCSV(path string) ([]Category, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inat: categories: %w", err)
	}
	defer f.Close()
	cats, err := ReadCategoriesCSV(f)
	if err != nil {
		return nil, fmt.Errorf("inat: categories %s: %w", path, err)
	}
	return cats, nil
}

// ReadCategoriesCSV parses a categories CSV from r (see LoadCategoriesCSV).
func ReadCategoriesCSV(r io.Reader) ([]Category, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file, want a header line")
		}
		return nil, err
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	for _, need := range []string{"id", "name"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("header %q lacks the %q column", strings.Join(header, ","), need)
		}
	}
	var cats []Category
	seen := map[int]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < len(header) {
			return nil, fmt.Errorf("line %d: %d fields, header has %d", line, len(rec), len(header))
		}
		idText := strings.TrimSpace(rec[col["id"]])
		id, err := strconv.Atoi(idText)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("line %d: id %q is not a non-negative integer", line, idText)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("line %d: duplicate category id %d (first on line %d)", line, id, prev)
		}
		seen[id] = line
		c := Category{ID: id}
		for _, name := range Fields[1:] {
			if i, ok := col[name]; ok {
				c.setField(name, rec[i])
			}
		}
		cats = append(cats, c)
	}
	if len(cats) == 0 {
		return nil, errors.New("no categories")
	}
	return cats, nil
}
