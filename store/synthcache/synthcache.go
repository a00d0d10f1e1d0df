// Package synthcache builds synthetic embedding caches of any size through
// the store API: what an image tower would have written for a long-tailed,
// many-class dataset such as iNat2021 (2.69M train and 100k val images,
// 10,000 classes), without any image. It feeds scale tests and measurements
// (`litcache bench scale`): index, verify, tune and eval at full size.
//
// The embeddings are learnable: each class has a centre on the unit sphere,
// built from a component shared by its genus and one of its own, and each
// row is its class's centre plus Gaussian noise, L2-normalised. A text
// tower can therefore learn to map each caption near its class's centre,
// and confusions fall mostly within a genus, as with real photos.
//
// Rows are shuffled over the parts (a shuffled webdataset: each part holds
// most classes, so each part's caption dictionary is large), and everything
// is deterministic for a seed, whatever the number of workers.
package synthcache

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/inat/synth"
	"github.com/litcache/litcache/store"
)

// Options size a synthetic cache.
type Options struct {
	// TrainRows and ValRows are the images of the "train" and "val" splits
	// (one view each).
	TrainRows, ValRows int
	// Classes is the number of classes (K).
	Classes int
	// Dim is the embedding width D, DType store.Float16 or store.Float32.
	Dim   int
	DType string
	// PartRows is the number of rows per part (one input shard's worth).
	PartRows int
	// Tail makes train's class sizes long-tailed: class k (in a random order
	// of the classes) gets a share ∝ (k+1)^-Tail, at least MinPerClass rows;
	// 0 is uniform. Val holds ValRows/Classes images of every class, as
	// iNat2021's val does.
	Tail        float64
	MinPerClass int
	// Noise is the norm of the Gaussian noise added to a class centre (unit
	// norm) before normalising: 1 gives rows at cosine ≈ 0.7 to their centre.
	Noise float64
	// Genus is the weight of the component a class shares with its genus
	// (0: independent centres).
	Genus float64
	Seed  uint64
	// Workers write parts in parallel (GOMAXPROCS when 0).
	Workers int
	// Progress, when not nil, is called with the rows written so far.
	Progress func(rows int)
}

// INat2021 is iNat2021's size: 2.69M train rows and 100k val rows, float16,
// 768-d (ViT-L/14), 10,000 classes, parts of 10,000 rows (img2dataset's
// default shard size).
func INat2021() Options {
	return Options{TrainRows: 2_690_000, ValRows: 100_000, Classes: 10_000, Dim: 768, DType: store.Float16,
		PartRows: 10_000, Tail: 0.5, MinPerClass: 20, Noise: 1, Genus: 0.6, Seed: 1}
}

// Result describes a built cache.
type Result struct {
	Cache   string // the cache folder (splits "train" and "val")
	Classes string // classes.json beside it
	// TrainRows and ValRows are the rows written; Parts the parts.
	TrainRows, ValRows, Parts int
	// Bytes is the size of the parts on disk; EmbBytes the raw embedding
	// bytes in them (rows × D × element size).
	Bytes, EmbBytes int64
}

func (o Options) validate() error {
	switch {
	case o.TrainRows < 0 || o.ValRows < 0 || o.TrainRows+o.ValRows == 0:
		return fmt.Errorf("synthcache: %d train and %d val rows: want some rows", o.TrainRows, o.ValRows)
	case o.Classes < 1 || o.Dim < 1 || o.PartRows < 1:
		return fmt.Errorf("synthcache: %d classes, dim %d, %d rows per part: each must be at least 1", o.Classes, o.Dim, o.PartRows)
	case o.DType != store.Float16 && o.DType != store.Float32:
		return fmt.Errorf("synthcache: dtype %q: want %s or %s", o.DType, store.Float16, store.Float32)
	case o.Tail < 0 || o.Noise < 0 || o.Genus < 0 || o.MinPerClass < 0:
		return fmt.Errorf("synthcache: tail %g, noise %g, genus %g, min per class %d: none may be negative", o.Tail, o.Noise, o.Genus, o.MinPerClass)
	case o.MinPerClass*o.Classes > o.TrainRows:
		return fmt.Errorf("synthcache: %d classes × at least %d rows exceed %d train rows", o.Classes, o.MinPerClass, o.TrainRows)
	}
	return nil
}

// Build writes the cache into DIR/cache and the classes into
// DIR/classes.json (captions by inat.DefaultTemplate). DIR/cache must not
// hold a cache yet.
func Build(ctx context.Context, dir string, opt Options) (Result, error) {
	if err := opt.validate(); err != nil {
		return Result{}, err
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	res := Result{Cache: filepath.Join(dir, "cache"), Classes: filepath.Join(dir, "classes.json")}
	if _, err := os.Stat(filepath.Join(res.Cache, "manifest.json")); err == nil {
		return res, fmt.Errorf("synthcache: %s already holds a cache", res.Cache)
	}
	classes, err := writeClasses(res.Classes, opt)
	if err != nil {
		return res, err
	}
	c, err := store.Create(res.Cache, store.Manifest{Fingerprint: fmt.Sprintf("synthetic-%d", opt.Seed),
		Model: fmt.Sprintf("synthetic class-centre embeddings (synthcache: %d classes, noise %g, genus %g, seed %d)", opt.Classes, opt.Noise, opt.Genus, opt.Seed),
		Dim:   opt.Dim, DType: opt.DType, Views: 1, Normalized: true})
	if err != nil {
		return res, err
	}
	centres := classCentres(classes, opt)
	jobs := append(splitJobs("train", trainLabels(opt), opt), splitJobs("val", valLabels(opt), opt)...)

	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.Workers)
	for i := range jobs {
		j := &jobs[i]
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if err := j.write(c, classes, centres, opt); err != nil {
				return err
			}
			if n := done.Add(int64(len(j.labels))); opt.Progress != nil {
				opt.Progress(int(n))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return res, err
	}
	m, err := store.Finalize(res.Cache)
	if err != nil {
		return res, err
	}
	res.TrainRows, res.ValRows, res.Parts = m.Splits["train"].Rows, m.Splits["val"].Rows, len(jobs)
	res.Bytes, res.EmbBytes = partBytes(jobs), int64(m.Rows)*int64(opt.Dim)*elemSize(opt.DType)
	return res, nil
}

func elemSize(dtype string) int64 {
	if dtype == store.Float16 {
		return 2
	}
	return 4
}

// writeClasses writes classes.json for a generated taxonomy of opt.Classes
// species, captioned by the paper's template.
func writeClasses(path string, opt Options) ([]inat.Class, error) {
	cats := synth.Taxonomy(opt.Classes, int64(opt.Seed))
	t, err := inat.ParseTemplate(inat.DefaultTemplate, inat.DefaultOmit)
	if err != nil {
		return nil, fmt.Errorf("synthcache: %w", err)
	}
	caps, _ := t.Captions(cats)
	classes := make([]inat.Class, len(cats))
	for i, c := range cats {
		classes[i] = inat.NewClass(c, caps[i])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("synthcache: %w", err)
	}
	if err := inat.WriteClasses(path, classes); err != nil {
		return nil, fmt.Errorf("synthcache: %w", err)
	}
	return classes, nil
}

// classCentres (K,D): class k's centre is normalize(Genus·g + s) with g the
// random direction of its genus and s its own, each of unit norm.
func classCentres(classes []inat.Class, opt Options) []float32 {
	D := opt.Dim
	rng := rand.New(rand.NewPCG(opt.Seed, 0x63656e74726573)) // "centres"
	unit := func() []float64 {
		v := make([]float64, D)
		var n float64
		for i := range v {
			v[i] = rng.NormFloat64()
			n += v[i] * v[i]
		}
		for i := range v {
			v[i] /= math.Sqrt(n)
		}
		return v
	}
	genus := map[string][]float64{}
	out := make([]float32, len(classes)*D)
	for k, c := range classes {
		key := c.Family + "/" + c.Genus
		g, ok := genus[key]
		if !ok {
			g = unit()
			genus[key] = g
		}
		s := unit()
		var n float64
		for i := range s {
			s[i] += opt.Genus * g[i]
			n += s[i] * s[i]
		}
		n = math.Sqrt(n)
		for i, x := range s {
			out[k*D+i] = float32(x / n)
		}
	}
	return out
}

// trainLabels is the class index of each train row, shuffled: class sizes
// by the long tail (largest remainders to reach TrainRows exactly), the
// classes' order in the tail a seeded permutation.
func trainLabels(opt Options) []int32 {
	K, N := opt.Classes, opt.TrainRows
	rng := rand.New(rand.NewPCG(opt.Seed, 0x747261696e)) // "train"
	order := rng.Perm(K)
	w := make([]float64, K)
	var sum float64
	for r := range w {
		w[r] = math.Pow(float64(r+1), -opt.Tail)
		sum += w[r]
	}
	free := N - opt.MinPerClass*K
	count := make([]int, K)
	type rem struct {
		r int
		f float64
	}
	rems := make([]rem, K)
	left := N
	for r := range w {
		x := float64(free) * w[r] / sum
		count[r] = opt.MinPerClass + int(x)
		rems[r] = rem{r, x - math.Floor(x)}
		left -= count[r]
	}
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].f > rems[j].f })
	for i := 0; i < left; i++ {
		count[rems[i%K].r]++
	}
	labels := make([]int32, 0, N)
	for r, n := range count {
		for range n {
			labels = append(labels, int32(order[r]))
		}
	}
	rng.Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	return labels
}

// valLabels gives every class ValRows/Classes rows (the first ValRows mod
// Classes classes one more), shuffled.
func valLabels(opt Options) []int32 {
	labels := make([]int32, opt.ValRows)
	for i := range labels {
		labels[i] = int32(i % opt.Classes)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x76616c)) // "val"
	rng.Shuffle(len(labels), func(i, j int) { labels[i], labels[j] = labels[j], labels[i] })
	return labels
}

// partJob is one part to write: a split's rows [first, first+len(labels)).
type partJob struct {
	split  string
	index  int // part number within the split
	first  int // the split's first row in this part
	labels []int32
	bytes  int64 // size written
}

func splitJobs(split string, labels []int32, opt Options) []partJob {
	var jobs []partJob
	for lo := 0; lo < len(labels); lo += opt.PartRows {
		hi := min(lo+opt.PartRows, len(labels))
		jobs = append(jobs, partJob{split: split, index: len(jobs), first: lo, labels: labels[lo:hi]})
	}
	return jobs
}

// write generates and commits the part: row i is its class's centre plus
// noise of norm ≈ Noise, normalised, from a generator seeded by (split,
// part) so that parts do not depend on each other.
func (j *partJob) write(c *store.Cache, classes []inat.Class, centres []float32, opt Options) error {
	shard := fmt.Sprintf("%s-%06d.tar", j.split, j.index)
	name := store.PartName(j.split, shard)
	w, err := c.NewPart(name, j.split, shard)
	if err != nil {
		return err
	}
	D := opt.Dim
	seed := uint64(j.index)
	if j.split == "val" {
		seed |= 1 << 40
	}
	rng := rand.New(rand.NewPCG(opt.Seed, seed))
	sigma := opt.Noise / math.Sqrt(float64(D))
	emb := make([]float32, D)
	for i, k := range j.labels {
		ctr := centres[int(k)*D : int(k+1)*D]
		var n float32
		for d := range emb {
			v := ctr[d] + float32(sigma*rng.NormFloat64())
			emb[d] = v
			n += v * v
		}
		inv := 1 / float32(math.Sqrt(float64(n)))
		for d := range emb {
			emb[d] *= inv
		}
		cl := &classes[k]
		key := fmt.Sprintf("%s/%09d", j.split, j.first+i)
		if err := w.Add(key, int32(cl.ID), 0, cl.Caption, emb); err != nil {
			w.Abort()
			return err
		}
	}
	mk, err := w.Commit(0, 1, nil)
	if err != nil {
		return err
	}
	j.bytes = mk.Size
	return nil
}

func partBytes(jobs []partJob) int64 {
	var n int64
	for _, j := range jobs {
		n += j.bytes
	}
	return n
}
