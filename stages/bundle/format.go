package bundle

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/inat"
)

// The bundle file (DESIGN.md decision 10) is one safetensors file:
//
//	(the tower's names)  the image tower's weights under its family's canonical names
//	                     (tower.Saved: OpenCLIP's visual.* for CLIP, Meta's for DINOv2, torchvision's for Swin), float32
//	class_embeddings    (K,E) float32: each class's text embedding, L2-normalised (templates averaged)
//	logit_scale         () float32: the tuned log temperature; logits = exp(logit_scale)·cosine
//	image_head.weight   (E,D) and image_head.bias (E), only when the run trained one (tune --image-head)
//
// and its header metadata holds, each value a string (JSON where structured),
// the keys below. Letters: K classes, D the tower's embedding width, E the
// text tower's.
const (
	TensorClassEmbeddings = "class_embeddings"
	TensorLogitScale      = "logit_scale"
	TensorHeadWeight      = "image_head.weight"
	TensorHeadBias        = "image_head.bias"

	// FormatName is the "format" metadata value of every bundle.
	FormatName = "litcache-bundle"
	// Version is the layout version this build writes and reads.
	Version = 1
)

// Metadata keys.
const (
	keyFormat      = "format"
	keyVersion     = "bundle_version"
	keyTower       = "tower"        // family: "clip", "dinov2", "swin" (internal/tower)
	keyModel       = "model_config" // the tower's config JSON, the family's canonical form
	keyPool        = "tower_pool"   // the tower's pooling; absent: the family's default
	keyPreprocess  = "preprocess"   // Preprocess JSON
	keyFingerprint = "fingerprint"  // the cache fingerprint the text tower was tuned against
	keyClasses     = "classes"      // []Class JSON, in the rows' order
	keyTemplates   = "templates"    // []string JSON
	keySource      = "source"       // Source JSON
)

// Meta is what a bundle's header metadata says.
type Meta struct {
	Version int
	// Tower is the image tower's family; ModelConfig its config JSON; Pool
	// its pooling ("" = the family's default).
	Tower       string
	ModelConfig json.RawMessage
	Pool        string
	Preprocess  Preprocess
	// Fingerprint is the cache fingerprint (image tower + preprocessing +
	// pooling) the run was tuned against; the bundle's tower has it.
	Fingerprint string
	// Classes are the K classes, in class_embeddings' row order.
	Classes []Class
	// Templates are the prompts the class embeddings average.
	Templates []string
	Source    Source
}

// Preprocess describes the eval transform the tower's inputs get.
type Preprocess struct {
	Size   int        `json:"size"`
	Mean   [3]float32 `json:"mean"`
	Std    [3]float32 `json:"std"`
	Resize string     `json:"resize"`
	Crop   string     `json:"crop"`
	// EXIF: photos are turned upright by their EXIF orientation first.
	EXIF bool `json:"exif_transpose"`
	// Describe is imageproc.Describe of the transform (what fingerprints hash).
	Describe string `json:"describe"`
}

// Class is one class of the classifier.
type Class struct {
	ID         int      `json:"id"`
	Name       string   `json:"name"`
	CommonName string   `json:"common_name"`
	Taxonomy   Taxonomy `json:"taxonomy"`
}

// Taxonomy is a taxon's path from the kingdom down; ranks below the taxon's
// own are empty.
type Taxonomy struct {
	Kingdom string `json:"kingdom,omitempty"`
	Phylum  string `json:"phylum,omitempty"`
	Class   string `json:"class,omitempty"`
	Order   string `json:"order,omitempty"`
	Family  string `json:"family,omitempty"`
	Genus   string `json:"genus,omitempty"`
	Species string `json:"species,omitempty"`
}

// Ranks are the taxonomic ranks from the root down (inat.Ranks).
var Ranks = inat.Ranks

// At returns the taxon at rank ("" for an unknown rank or an empty field).
func (t Taxonomy) At(rank string) string {
	switch rank {
	case "kingdom":
		return t.Kingdom
	case "phylum":
		return t.Phylum
	case "class":
		return t.Class
	case "order":
		return t.Order
	case "family":
		return t.Family
	case "genus":
		return t.Genus
	case "species":
		return t.Species
	}
	return ""
}

// Upto returns the path cut below rank: the fields after it are emptied.
func (t Taxonomy) Upto(rank string) Taxonomy {
	var out Taxonomy
	fields := []*string{&out.Kingdom, &out.Phylum, &out.Class, &out.Order, &out.Family, &out.Genus, &out.Species}
	for i, r := range Ranks {
		*fields[i] = t.At(r)
		if r == rank {
			break
		}
	}
	return out
}

// Path is the taxonomy as "Animalia > Chordata > …", empty ranks left out.
func (t Taxonomy) Path() string {
	var parts []string
	for _, r := range Ranks {
		if v := t.At(r); v != "" {
			parts = append(parts, v)
		}
	}
	return strings.Join(parts, " > ")
}

// ClassFrom makes a bundle class from a classes.json record.
func ClassFrom(c inat.Class) Class {
	return Class{ID: c.ID, Name: c.Name, CommonName: c.CommonName, Taxonomy: Taxonomy{
		Kingdom: c.Kingdom, Phylum: c.Phylum, Class: c.Class, Order: c.Order,
		Family: c.Family, Genus: c.Genus, Species: c.Name}}
}

// Source records where a bundle came from (for people; nothing reads it back).
type Source struct {
	Run         string `json:"run"`
	TextWeights string `json:"text_weights"`
	TextModel   string `json:"text_model"`
	Cache       string `json:"cache,omitempty"`
	Weights     string `json:"image_weights"`
	Model       string `json:"image_model"`
	Vocab       string `json:"vocab,omitempty"`
	Templates   string `json:"templates"`
	Created     string `json:"created"`
}

// Encode turns m into header metadata.
func (m Meta) Encode() (map[string]string, error) {
	js := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	}
	md := map[string]string{keyFormat: FormatName, keyVersion: strconv.Itoa(Version),
		keyTower: m.Tower, keyModel: string(m.ModelConfig), keyFingerprint: m.Fingerprint}
	if m.Pool != "" {
		md[keyPool] = m.Pool
	}
	for k, v := range map[string]any{keyPreprocess: m.Preprocess, keyClasses: m.Classes, keyTemplates: m.Templates, keySource: m.Source} {
		s, err := js(v)
		if err != nil {
			return nil, fmt.Errorf("bundle: metadata %s: %w", k, err)
		}
		md[k] = s
	}
	return md, nil
}

// ParseMeta reads and checks a bundle's header metadata: every key present,
// the format and version this build reads, a usable preprocessing, distinct
// class ids and named classes. The bytes come from outside: nothing is
// trusted.
func ParseMeta(md map[string]string) (Meta, error) {
	var m Meta
	if md[keyFormat] != FormatName {
		return m, fmt.Errorf("not a litcache bundle (metadata format %q, want %q)", md[keyFormat], FormatName)
	}
	v, err := strconv.Atoi(md[keyVersion])
	if err != nil || v != Version {
		return m, fmt.Errorf("bundle version %q; this build reads version %d", md[keyVersion], Version)
	}
	m.Version = v
	for _, k := range []string{keyTower, keyModel, keyPreprocess, keyFingerprint, keyClasses, keyTemplates} {
		if md[k] == "" {
			return m, fmt.Errorf("metadata %q missing", k)
		}
	}
	m.Tower, m.Fingerprint, m.Pool = md[keyTower], md[keyFingerprint], md[keyPool]
	if !json.Valid([]byte(md[keyModel])) {
		return m, fmt.Errorf("metadata %s is not JSON", keyModel)
	}
	m.ModelConfig = json.RawMessage(md[keyModel])
	if err := json.Unmarshal([]byte(md[keyPreprocess]), &m.Preprocess); err != nil {
		return m, fmt.Errorf("metadata %s: %w", keyPreprocess, err)
	}
	if err := m.Preprocess.check(); err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(md[keyClasses]), &m.Classes); err != nil {
		return m, fmt.Errorf("metadata %s: %w", keyClasses, err)
	}
	if err := checkClasses(m.Classes); err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(md[keyTemplates]), &m.Templates); err != nil {
		return m, fmt.Errorf("metadata %s: %w", keyTemplates, err)
	}
	if len(m.Templates) == 0 {
		return m, fmt.Errorf("metadata %s: no template", keyTemplates)
	}
	if s := md[keySource]; s != "" {
		if err := json.Unmarshal([]byte(s), &m.Source); err != nil {
			return m, fmt.Errorf("metadata %s: %w", keySource, err)
		}
	}
	return m, nil
}

// maxInputSize bounds the tower's input side a bundle may ask for, so a
// forged header cannot make every request allocate gigabytes.
const maxInputSize = 4096

func (p Preprocess) check() error {
	if p.Size <= 0 || p.Size > maxInputSize {
		return fmt.Errorf("metadata %s: input size %d outside 1..%d", keyPreprocess, p.Size, maxInputSize)
	}
	for c := range 3 {
		if !(p.Std[c] > 0) || math.IsInf(float64(p.Std[c]), 0) || math.IsNaN(float64(p.Mean[c])) || math.IsInf(float64(p.Mean[c]), 0) {
			return fmt.Errorf("metadata %s: channel %d has mean %g, std %g", keyPreprocess, c, p.Mean[c], p.Std[c])
		}
	}
	return nil
}

func checkClasses(cls []Class) error {
	if len(cls) == 0 {
		return fmt.Errorf("metadata %s: no class", keyClasses)
	}
	seen := make(map[int]bool, len(cls))
	for i, c := range cls {
		if seen[c.ID] {
			return fmt.Errorf("metadata %s: record %d: duplicate id %d", keyClasses, i, c.ID)
		}
		seen[c.ID] = true
		if strings.TrimSpace(c.Name) == "" {
			return fmt.Errorf("metadata %s: record %d (id %d): empty name", keyClasses, i, c.ID)
		}
	}
	return nil
}
