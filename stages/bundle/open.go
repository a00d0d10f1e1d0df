package bundle

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tower"
)

// Bundle is an opened classifier bundle: the image tower, the class
// embeddings and the temperature, ready to classify photos. Its methods are
// safe for concurrent use.
type Bundle struct {
	// Path is the file it was read from.
	Path string
	// Meta is the header metadata.
	Meta Meta

	be     backend.Backend
	tower  *Tower
	pre    imageproc.Preprocessor
	cls    backend.Tensor // (K,E) class embeddings, L2-normalised
	headW  backend.Tensor // (E,D) or nil
	headB  backend.Tensor // (E)
	scale  float32        // exp(logit_scale)
	logit  float32        // logit_scale as stored
	K, E   int
	groups map[string]*grouping // per rank, built at Open
}

// Open reads a bundle file onto be (nil: the CPU backend). The file is
// mapped, checked and copied onto the backend, then closed.
func Open(path string, be backend.Backend) (*Bundle, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	b, err := load(f, path, be)
	if err != nil {
		return nil, err
	}
	b.Path = path
	return b, nil
}

// FromBytes reads a bundle from its bytes (see Open).
func FromBytes(data []byte, be backend.Backend) (*Bundle, error) {
	f, err := safetensors.FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	return load(f, "(bytes)", be)
}

// reserved are the bundle's own tensors; all others belong to the tower.
var reserved = []string{TensorClassEmbeddings, TensorLogitScale, TensorHeadWeight, TensorHeadBias}

func load(f *safetensors.File, label string, be backend.Backend) (_ *Bundle, err error) {
	defer cuda.Recover(&err) // a device failing while the weights go onto it
	if be == nil {
		be = backend.NewCPU()
	}
	meta, err := ParseMeta(f.Metadata())
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", label, err)
	}
	b := &Bundle{Meta: meta, be: be, K: len(meta.Classes)}
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	if b.logit, err = readScalar(f, TensorLogitScale); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", label, err)
	}
	if b.logit < 0 || b.logit > float32(math.Log(1000)) {
		return nil, fmt.Errorf("bundle %s: logit_scale %g outside [0, ln 1000]", label, b.logit)
	}
	b.scale = float32(math.Exp(float64(b.logit)))

	// The class embeddings' shape is known from the header before any tower
	// weight is read.
	info, found := f.Info(TensorClassEmbeddings)
	if !found || len(info.Shape) != 2 || info.Shape[0] != b.K || info.Shape[1] == 0 {
		return nil, fmt.Errorf("bundle %s: %s has shape %v, want (%d classes, E)", label, TensorClassEmbeddings, info.Shape, b.K)
	}
	b.E = info.Shape[1]

	if _, err := tower.ParseConfig(meta.Tower, meta.ModelConfig); err != nil {
		return nil, fmt.Errorf("bundle %s: metadata %s: %w", label, keyModel, err)
	}
	saved := tower.Saved{Family: meta.Tower, Config: meta.ModelConfig, Pool: meta.Pool, Fingerprint: meta.Fingerprint}
	t, err := tower.RebuildFrom(be, saved, towerSource{f})
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", label, err)
	}
	b.tower = TowerOf(t)
	b.pre = b.tower.Preprocessor()
	if meta.Preprocess.Size != b.pre.Size {
		return nil, fmt.Errorf("bundle %s: preprocess size %d, but the tower takes %d px", label, meta.Preprocess.Size, b.pre.Size)
	}
	D := b.tower.Dim()
	if err := b.loadHead(f, D); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", label, err)
	}
	if b.headW == nil && D != b.E {
		return nil, fmt.Errorf("bundle %s: the tower embeds to %d, the class embeddings have %d (and there is no image head)", label, D, b.E)
	}
	cls, _, err := f.Float32(TensorClassEmbeddings)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", label, err)
	}
	for i, v := range cls {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("bundle %s: %s: value %d is %g", label, TensorClassEmbeddings, i, v)
		}
	}
	b.cls = be.FromFloat32(cls, b.K, b.E)
	b.groups = buildGroupings(meta.Classes)
	ok = true
	return b, nil
}

// loadHead reads the optional image head, which must map D to E.
func (b *Bundle) loadHead(f *safetensors.File, D int) error {
	_, hasW := f.Info(TensorHeadWeight)
	_, hasB := f.Info(TensorHeadBias)
	if !hasW && !hasB {
		return nil
	}
	w, ws, err := f.Float32(TensorHeadWeight)
	if err != nil {
		return err
	}
	bias, bs, err := f.Float32(TensorHeadBias)
	if err != nil {
		return err
	}
	if len(ws) != 2 || ws[0] != b.E || ws[1] != D || len(bs) != 1 || bs[0] != b.E {
		return fmt.Errorf("image head weight %v and bias %v do not map the tower's %d-d embeddings to %d", ws, bs, D, b.E)
	}
	b.headW, b.headB = b.be.FromFloat32(w, b.E, D), b.be.FromFloat32(bias, b.E)
	return nil
}

func readScalar(f *safetensors.File, name string) (float32, error) {
	d, _, err := f.Float32(name)
	if err != nil {
		return 0, err
	}
	if len(d) != 1 || math.IsNaN(float64(d[0])) {
		return 0, fmt.Errorf("%s holds %d values, want one number", name, len(d))
	}
	return d[0], nil
}

// Close releases the tower and the class embeddings.
func (b *Bundle) Close() {
	if b.tower != nil {
		b.tower.Free()
		b.tower = nil
	}
	for _, t := range []*backend.Tensor{&b.cls, &b.headW, &b.headB} {
		if *t != nil {
			b.be.Free(*t)
			*t = nil
		}
	}
}

// Classes are the bundle's classes in row order.
func (b *Bundle) Classes() []Class { return b.Meta.Classes }

// InputSize is the tower's square input side S.
func (b *Bundle) InputSize() int { return b.pre.Size }

// LogitScale is the stored log temperature.
func (b *Bundle) LogitScale() float32 { return b.logit }

// Tower is the bundle's image tower.
func (b *Bundle) Tower() *Tower { return b.tower }

// towerSource shows the tower only its own tensors.
type towerSource struct{ f *safetensors.File }

func (s towerSource) Names() []string {
	return slices.DeleteFunc(s.f.Names(), func(n string) bool { return slices.Contains(reserved, n) })
}

func (s towerSource) Shape(name string) ([]int, bool) {
	if slices.Contains(reserved, name) {
		return nil, false
	}
	info, ok := s.f.Info(name)
	return info.Shape, ok
}

func (s towerSource) Float32(name string) ([]float32, error) {
	d, _, err := s.f.Float32(name)
	return d, err
}

// RankNames lists the ranks --rank accepts.
func RankNames() string { return strings.Join(Ranks, ", ") }
