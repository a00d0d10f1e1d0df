package inat

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// Image is one image record of train.json / val.json joined with its annotation.
type Image struct {
	ID         int64
	FileName   string // relative to the image root, e.g. "train/05407_Fungi_…/uuid.jpg"
	CategoryID int    // -1 when the image has no annotation (test.json)
}

// Dataset is what LoadCOCO keeps of a COCO-style iNat json: the categories and
// the images in file order. Other keys (info, licenses, per-image location and
// rights) are skipped while streaming.
type Dataset struct {
	Categories []Category
	Images     []Image
}

// LoadCOCO streams an iNat2021 train.json / val.json, also gzipped
// (.json.gz) or as the dataset ships it (train.json.tar.gz). Memory is
// proportional to the number of images (id, file name and category of each),
// never to the file's bytes. Errors name the file and, for malformed JSON, the
// byte offset. Duplicate image ids, duplicate annotations, annotations of
// unknown images and unknown category ids are errors.
func LoadCOCO(path string, opt COCOOptions) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inat: %w", err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	if strings.HasSuffix(path, ".gz") || strings.HasSuffix(path, ".tgz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("inat: %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	if strings.HasSuffix(path, ".tar.gz") || strings.HasSuffix(path, ".tgz") {
		// The dataset ships its annotations as train.json.tar.gz: a tar
		// holding the json. Read its first .json member.
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err != nil {
				return nil, fmt.Errorf("inat: %s: no .json member in the archive: %w", path, err)
			}
			if h.Typeflag == tar.TypeReg && strings.HasSuffix(h.Name, ".json") {
				r = tr
				break
			}
		}
	}
	ds, err := ReadCOCO(r, opt)
	if err != nil {
		return nil, fmt.Errorf("inat: %s: %w", path, err)
	}
	return ds, nil
}

// COCOOptions tune LoadCOCO.
type COCOOptions struct {
	// Categories, when not nil, are the classes annotations are checked
	// against (e.g. from a categories CSV) instead of the json's own
	// "categories" list.
	Categories []Category
}

// ReadCOCO streams a COCO-style iNat json from r (see LoadCOCO).
func ReadCOCO(r io.Reader, opt COCOOptions) (*Dataset, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	s := cocoStream{dec: dec, index: map[int64]int32{}, opt: opt}
	if err := s.read(); err != nil {
		return nil, err
	}
	return s.finish()
}

type annotation struct {
	imageID    int64
	categoryID int
}

type cocoStream struct {
	dec         *json.Decoder
	opt         COCOOptions
	ds          Dataset
	index       map[int64]int32 // image id → position in ds.Images
	anns        []annotation
	sawImages   bool
	sawCategory bool
}

// decodeElem decodes one array element into v. On a syntax error the
// decoder's own offset is not the file position (its scanner counts only the
// bytes of values it decoded), so the element is re-scanned from the
// decoder's buffer to report the byte where it breaks.
func (s *cocoStream) decodeElem(v any) error {
	err := s.dec.Decode(v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return s.corrupt(err)
	}
	start := s.dec.InputOffset() // a failed Decode leaves the decoder at the element's start
	var raw json.RawMessage
	if err2 := json.NewDecoder(s.dec.Buffered()).Decode(&raw); errors.As(err2, &se) {
		return fmt.Errorf("corrupt JSON at byte %d: %w", start+se.Offset, err2)
	}
	return fmt.Errorf("corrupt JSON after byte %d: %w", start, err)
}

// corrupt wraps a decoding error with the byte offset where it happened.
func (s *cocoStream) corrupt(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("corrupt JSON: truncated at byte %d: %w", s.dec.InputOffset(), io.ErrUnexpectedEOF)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("corrupt JSON near byte %d: %w", s.dec.InputOffset(), err)
	}
	return fmt.Errorf("corrupt JSON near byte %d: %w", s.dec.InputOffset(), err)
}

func (s *cocoStream) expectDelim(want json.Delim, what string) error {
	tok, err := s.dec.Token()
	if err != nil {
		return s.corrupt(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("corrupt JSON near byte %d: %s: want %q, got %v", s.dec.InputOffset(), what, want, tok)
	}
	return nil
}

func (s *cocoStream) read() error {
	if err := s.expectDelim('{', "top level"); err != nil {
		return err
	}
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return s.corrupt(err)
		}
		key, _ := tok.(string)
		switch key {
		case "images":
			s.sawImages = true
			err = s.array(key, s.image)
		case "annotations":
			err = s.array(key, s.annotation)
		case "categories":
			s.sawCategory = true
			err = s.array(key, s.category)
		default:
			err = s.skip()
		}
		if err != nil {
			return err
		}
	}
	if err := s.expectDelim('}', "end of top level"); err != nil {
		return err
	}
	if _, err := s.dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("corrupt JSON at byte %d: data after the top-level object", s.dec.InputOffset())
	}
	return nil
}

// array calls elem for each element of a JSON array (null counts as empty).
func (s *cocoStream) array(key string, elem func(i int) error) error {
	tok, err := s.dec.Token()
	if err != nil {
		return s.corrupt(err)
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("corrupt JSON near byte %d: %q: want an array, got %v", s.dec.InputOffset(), key, tok)
	}
	for i := 0; s.dec.More(); i++ {
		if err := elem(i); err != nil {
			return fmt.Errorf("%s[%d]: %w", key, i, err)
		}
	}
	return s.expectDelim(']', key)
}

// skip consumes one JSON value of any kind, token by token.
func (s *cocoStream) skip() error {
	depth := 0
	for {
		tok, err := s.dec.Token()
		if err != nil {
			return s.corrupt(err)
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

type imageRecord struct {
	ID       *json.Number `json:"id"`
	FileName string       `json:"file_name"`
}

func (s *cocoStream) image(int) error {
	var rec imageRecord
	if err := s.decodeElem(&rec); err != nil {
		return err
	}
	if rec.ID == nil {
		return errors.New("image record without an id")
	}
	id, err := rec.ID.Int64()
	if err != nil {
		return fmt.Errorf("image id %q: not an integer", rec.ID.String())
	}
	if rec.FileName == "" {
		return fmt.Errorf("image %d: empty file_name", id)
	}
	if prev, dup := s.index[id]; dup {
		return fmt.Errorf("duplicate image id %d (also images[%d], %s)", id, prev, s.ds.Images[prev].FileName)
	}
	if len(s.ds.Images) >= 1<<31-1 {
		return errors.New("too many images")
	}
	s.index[id] = int32(len(s.ds.Images))
	s.ds.Images = append(s.ds.Images, Image{ID: id, FileName: rec.FileName, CategoryID: -1})
	return nil
}

type annotationRecord struct {
	ImageID    *json.Number `json:"image_id"`
	CategoryID *json.Number `json:"category_id"`
}

func (s *cocoStream) annotation(int) error {
	var rec annotationRecord
	if err := s.decodeElem(&rec); err != nil {
		return err
	}
	if rec.ImageID == nil || rec.CategoryID == nil {
		return errors.New("annotation without image_id or category_id")
	}
	img, err1 := rec.ImageID.Int64()
	cat, err2 := rec.CategoryID.Int64()
	if err1 != nil || err2 != nil || cat < 0 || cat > 1<<31-1 {
		return fmt.Errorf("annotation image_id %q category_id %q: not valid integers", rec.ImageID, rec.CategoryID)
	}
	s.anns = append(s.anns, annotation{imageID: img, categoryID: int(cat)})
	return nil
}

func (s *cocoStream) category(int) error {
	var c Category
	if err := s.decodeElem(&c); err != nil {
		return err
	}
	s.ds.Categories = append(s.ds.Categories, c)
	return nil
}

// finish joins annotations to images and checks the references.
func (s *cocoStream) finish() (*Dataset, error) {
	if !s.sawImages {
		return nil, errors.New(`no "images" array: not a COCO-style iNat json`)
	}
	known := make(map[int]bool, len(s.ds.Categories))
	for i, c := range s.ds.Categories {
		if known[c.ID] {
			return nil, fmt.Errorf("categories[%d]: duplicate category id %d", i, c.ID)
		}
		known[c.ID] = true
	}
	check := s.sawCategory
	if s.opt.Categories != nil {
		check = true
		known = make(map[int]bool, len(s.opt.Categories))
		for _, c := range s.opt.Categories {
			known[c.ID] = true
		}
	}
	for i, a := range s.anns {
		pos, ok := s.index[a.imageID]
		if !ok {
			return nil, fmt.Errorf("annotations[%d]: unknown image id %d", i, a.imageID)
		}
		if check && !known[a.categoryID] {
			return nil, fmt.Errorf("annotations[%d]: image %d: unknown category id %d", i, a.imageID, a.categoryID)
		}
		im := &s.ds.Images[pos]
		if im.CategoryID >= 0 {
			return nil, fmt.Errorf("annotations[%d]: image %d annotated twice (categories %d and %d)", i, a.imageID, im.CategoryID, a.categoryID)
		}
		im.CategoryID = a.categoryID
	}
	s.anns = nil
	s.index = nil
	return &s.ds, nil
}
