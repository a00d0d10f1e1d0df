package tune

import "fmt"

// Source is the cached image side of LiT tuning: Len images, each with
// Views() embeddings (view 0 the eval transform, the others random crops) of
// width Dim and a label (the iNat category id). The trainer only reads it.
// StoreSource adapts the cache; MemSource holds rows in memory (tests, bench).
type Source interface {
	// Len is the number of images.
	Len() int
	// Views is the number of embeddings kept per image (≥ 1).
	Views() int
	// Dim is the embedding width D.
	Dim() int
	// Label is image i's label without reading its embedding.
	Label(i int) int32
	// Row writes view v of image i into dst (len D) and returns its label. An
	// image with fewer stored views than Views() returns its view v mod its count.
	Row(i, v int, dst []float32) (label int32)
	// Caption is the caption stored with image i in the cache ("" when none);
	// used when captions come from the cache rather than classes.json.
	Caption(i int) string
}

// MemSource is a Source over rows in memory: Emb (N·V, D) with image i's view
// v at row i·V+v.
type MemSource struct {
	Emb      []float32
	Labels   []int32 // (N)
	Captions []string
	D, V     int
}

var _ Source = (*MemSource)(nil)

// NewMemSource checks the shapes of a MemSource; captions may be nil.
func NewMemSource(emb []float32, labels []int32, captions []string, dim, views int) (*MemSource, error) {
	if dim < 1 || views < 1 {
		return nil, fmt.Errorf("tune: memory source: dim %d, views %d", dim, views)
	}
	if len(emb) != len(labels)*views*dim {
		return nil, fmt.Errorf("tune: memory source: %d values for %d images × %d views × %d dims", len(emb), len(labels), views, dim)
	}
	if captions != nil && len(captions) != len(labels) {
		return nil, fmt.Errorf("tune: memory source: %d captions for %d images", len(captions), len(labels))
	}
	return &MemSource{Emb: emb, Labels: labels, Captions: captions, D: dim, V: views}, nil
}

// Len is the number of images.
func (s *MemSource) Len() int { return len(s.Labels) }

// Views is the number of views per image.
func (s *MemSource) Views() int { return s.V }

// Dim is the embedding width.
func (s *MemSource) Dim() int { return s.D }

// Label is image i's label.
func (s *MemSource) Label(i int) int32 { return s.Labels[i] }

// Row copies image i's view v.
func (s *MemSource) Row(i, v int, dst []float32) int32 {
	r := i*s.V + v%s.V
	copy(dst, s.Emb[r*s.D:(r+1)*s.D])
	return s.Labels[i]
}

// Caption is image i's stored caption.
func (s *MemSource) Caption(i int) string {
	if s.Captions == nil {
		return ""
	}
	return s.Captions[i]
}
