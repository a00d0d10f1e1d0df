package tune

import (
	"fmt"

	"github.com/litcache/litcache/store"
)

// StoreSource is a Source over an embedding cache: the rows of an image's
// views lie consecutively in one part, view 0 first (store.PartWriter.Add
// enforces it), so an image is a (part, first row, view count) triple.
type StoreSource struct {
	r      *store.Reader
	parts  []*store.Part
	imgs   []imageRef
	starts []int // first image of each part
	dim    int
	views  int
}

type imageRef struct {
	part  int32
	row   int32
	views uint8
}

var (
	_ Source     = (*StoreSource)(nil)
	_ Blocked    = (*StoreSource)(nil)
	_ Prefetcher = (*StoreSource)(nil)
)

// OpenStoreSource opens the cache in dir (refusing another image tower's when
// expectFingerprint is set) and indexes the images of one split, picked by
// the rule of every reader: store.SelectSplit(split, role), role being
// store.SplitTrain or store.SplitVal.
func OpenStoreSource(dir, split, role, expectFingerprint string) (*StoreSource, error) {
	r, err := store.Open(dir, store.ReadOptions{ExpectFingerprint: expectFingerprint})
	if err != nil {
		return nil, fmt.Errorf("tune: cache %s: %w", dir, err)
	}
	m := r.Manifest()
	s := &StoreSource{r: r, dim: m.Dim, views: m.Views}
	split, err = r.SelectSplit(split, role)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("tune: %w", err)
	}
	for _, p := range r.Split(split) {
		views := p.Views()
		pi := int32(len(s.parts))
		s.parts = append(s.parts, p)
		s.starts = append(s.starts, len(s.imgs))
		for row := 0; row < p.N; {
			if views[row] != 0 {
				r.Close()
				return nil, fmt.Errorf("tune: cache %s: part %s row %d: view %d does not follow its image's view 0", dir, p.Name, row, views[row])
			}
			n := 1
			for row+n < p.N && views[row+n] == uint8(n) {
				n++
			}
			s.imgs = append(s.imgs, imageRef{part: pi, row: int32(row), views: uint8(n)})
			row += n
		}
	}
	if len(s.imgs) == 0 {
		r.Close()
		return nil, fmt.Errorf("tune: cache %s holds no finished rows of split %q", dir, split)
	}
	return s, nil
}

// Manifest is the cache's manifest.
func (s *StoreSource) Manifest() store.Manifest { return s.r.Manifest() }

// Len is the number of images.
func (s *StoreSource) Len() int { return len(s.imgs) }

// Views is the cache's views per image.
func (s *StoreSource) Views() int { return s.views }

// Dim is the embedding width.
func (s *StoreSource) Dim() int { return s.dim }

// Label is image i's label.
func (s *StoreSource) Label(i int) int32 {
	ref := s.imgs[i]
	return s.parts[ref.part].Labels()[ref.row]
}

// Row converts view v of image i (v mod the image's stored views) into dst.
func (s *StoreSource) Row(i, v int, dst []float32) int32 {
	ref := s.imgs[i]
	p := s.parts[ref.part]
	row := int(ref.row) + v%int(ref.views)
	p.Row(row, dst)
	return p.Labels()[row]
}

// Caption is the caption extract stored with image i.
func (s *StoreSource) Caption(i int) string {
	ref := s.imgs[i]
	return s.parts[ref.part].Caption(int(ref.row))
}

// Blocks are the first image of each part: block shuffling reads a window
// of parts at a time.
func (s *StoreSource) Blocks() []int { return s.starts }

// Prefetch starts reading the embeddings of parts (block indices) in the
// background: their rows are about to be read in random order.
func (s *StoreSource) Prefetch(blocks []int) {
	for _, b := range blocks {
		_ = s.parts[b].Advise(store.AdviseWillNeed)
	}
}

// Advise tells the kernel how every part's embeddings will be read: training
// reads rows in random order (store.AdviseRandom), a val pass scans them.
func (s *StoreSource) Advise(a store.Advice) error {
	for _, p := range s.parts {
		if err := p.Advise(a); err != nil {
			return err
		}
	}
	return nil
}

// CheckCaptions checks every part's caption column (store.Part.CheckCaptions)
// before Caption is used.
func (s *StoreSource) CheckCaptions() error {
	for _, p := range s.parts {
		if err := p.CheckCaptions(); err != nil {
			return err
		}
	}
	return nil
}

// Close unmaps the cache.
func (s *StoreSource) Close() error { return s.r.Close() }
