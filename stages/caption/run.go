package caption

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/wds"

	"github.com/litcache/litcache/internal/atomicfile"
)

// Result summarises a run.
type Result struct {
	Classes          int
	DistinctCaptions int
	Template         string
	Auto             *inat.AutoFields // set with Fields = ["auto"]
	Samples          int              // samples in all shards (kept ones included)
	Skipped          int              // images left out (skipped.jsonl)
	Shards           int
	ShardsKept       int   // complete shards from an earlier run, left as they were
	Written          int   // samples written by this run
	Bytes            int64 // shard bytes written by this run
	Elapsed          time.Duration
}

// Skip is one line of skipped.jsonl.
type Skip struct {
	Index   int    `json:"index"` // position in the plan
	Shard   string `json:"shard"`
	ImageID *int64 `json:"image_id,omitempty"`
	Source  string `json:"source"`
	Reason  string `json:"reason"`
}

// shardRecord is OUT/.caption/NAME.json, written after the shard's rename.
type shardRecord struct {
	Name    string `json:"name"`
	Count   int    `json:"count"`
	Bytes   int64  `json:"bytes"` // file size: a shard of another size is rewritten
	Skipped []Skip `json:"skipped"`
}

// runIdentity is OUT/.caption/run.json: what makes shards of two runs interchangeable.
type runIdentity struct {
	Hash     string `json:"hash"`
	Samples  int    `json:"samples"`
	PerShard int    `json:"per_shard"`
	Template string `json:"template"`
	Images   string `json:"images"` // image options: max size, quality, verify, compression
}

// diff says how two identities differ, for the refusal message.
func (id runIdentity) diff(old runIdentity) string {
	var d []string
	if old.Samples != id.Samples {
		d = append(d, fmt.Sprintf("samples %d → %d", old.Samples, id.Samples))
	}
	if old.PerShard != id.PerShard {
		d = append(d, fmt.Sprintf("per shard %d → %d", old.PerShard, id.PerShard))
	}
	if old.Template != id.Template {
		d = append(d, fmt.Sprintf("template %q → %q", old.Template, id.Template))
	}
	if old.Images != id.Images {
		d = append(d, fmt.Sprintf("images %s → %s", old.Images, id.Images))
	}
	if len(d) == 0 {
		d = append(d, "input files, order or omitted values")
	}
	return strings.Join(d, ", ")
}

const stateDir = ".caption"

// Run captions the input and writes shards, classes.json, sizes.json and
// skipped.jsonl under cfg.Out (with ClassesOnly, classes.json alone).
func Run(ctx context.Context, cfg Config) (Result, error) {
	start := time.Now()
	if err := cfg.validate(true); err != nil {
		return Result{}, err
	}
	md, err := loadMetadata(&cfg, !cfg.ClassesOnly)
	if err != nil {
		return Result{}, err
	}
	tmpl, auto, err := buildTemplate(&cfg, md.cats)
	if err != nil {
		return Result{}, err
	}
	captions, distinct := tmpl.Captions(md.cats)
	res := Result{Classes: len(md.cats), DistinctCaptions: distinct, Template: tmpl.String(), Auto: auto}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return res, fmt.Errorf("caption: %w", err)
	}
	classes := make([]inat.Class, len(md.cats))
	for i, c := range md.cats {
		classes[i] = inat.NewClass(c, captions[i])
	}
	writeClasses := func() error {
		path := filepath.Join(cfg.Out, "classes.json")
		if err := inat.WriteClasses(path, classes); err != nil {
			return fmt.Errorf("caption: %w", err)
		}
		r := inat.Recipe{Name: recipeName(&cfg), Template: tmpl.String(), Omit: cfg.Omit, Classes: len(classes),
			DistinctCaptions: distinct, Indistinct: inat.Indistinct(captions)}
		if auto != nil {
			r.Fields = auto.Fields
		} else if len(cfg.Fields) > 0 {
			r.Fields = cfg.Fields
		}
		if err := inat.WriteRecipe(path, r); err != nil {
			return fmt.Errorf("caption: %w", err)
		}
		return nil
	}
	if auto != nil {
		var steps []string
		for _, st := range auto.Steps {
			steps = append(steps, fmt.Sprintf("%s %d", strings.Join(st.Fields, "+"), st.Distinct))
		}
		fmt.Fprintf(cfg.Log, "caption: --fields auto chose %v: %d distinct captions for %d classes (%d subsets tried: %s)\n",
			auto.Fields, auto.Distinct, auto.Classes, auto.Tried, strings.Join(steps, ", "))
	}
	fmt.Fprintf(cfg.Log, "caption: %d classes, %d distinct captions, template %q\n", len(md.cats), distinct, tmpl.String())
	if distinct < len(md.cats) {
		fmt.Fprintf(cfg.Log, "caption: warning: only %d distinct captions for %d classes; zero-shot cannot tell classes with one caption apart (--stats lists them, --fields auto finds distinguishing fields)\n",
			distinct, len(md.cats))
	}
	if cfg.ClassesOnly {
		res.Elapsed = time.Since(start)
		return res, writeClasses()
	}
	capOf := make(map[int]string, len(md.cats))
	for i, c := range md.cats {
		capOf[c.ID] = captions[i]
	}
	p := newPlan(&cfg, md)
	if len(p.images) == 0 {
		return res, fmt.Errorf("caption: no images in the input")
	}
	labelled := 0
	for _, im := range p.images {
		if im.CategoryID >= 0 {
			labelled++
		}
	}
	if labelled == 0 {
		return res, fmt.Errorf("caption: %s: no image has an annotation (a test split?): there is no class to caption", cfg.JSON)
	}
	if err := p.checkRoot(&cfg); err != nil {
		return res, err
	}
	id := p.identity(&cfg, tmpl.String())
	if err := checkIdentity(&cfg, id, p); err != nil {
		return res, err
	}
	// After the identity check: a refused run leaves the folder as it was.
	if err := writeClasses(); err != nil {
		return res, err
	}
	todo, kept, err := p.resumeState(&cfg)
	if err != nil {
		return res, err
	}
	res.Shards = p.shards
	res.ShardsKept = len(kept)
	if len(kept) > 0 {
		fmt.Fprintf(cfg.Log, "caption: resuming: %d of %d shards complete, %d to write\n", len(kept), p.shards, len(todo))
	}
	w := &writer{cfg: &cfg, plan: p, md: md, capOf: capOf}
	if err := w.run(ctx, todo); err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("caption: interrupted with %d of %d shards complete (rerun the same command to resume): %w",
				len(kept)+w.shardsDone, p.shards, err)
		}
		return res, err
	}
	res.Written = w.written
	res.Bytes = w.bytes
	if err := p.finish(&cfg, &res); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	fmt.Fprintf(cfg.Log, "caption: %d samples in %d shards (%d kept), %d skipped (skipped.jsonl), %s\n",
		res.Samples, res.Shards, res.ShardsKept, res.Skipped, res.Elapsed.Round(time.Millisecond))
	return res, nil
}

// recipeName is the recipe a run's template came from, as --recipes spells
// it: "paper", "auto", or the template.
func recipeName(cfg *Config) string {
	switch {
	case len(cfg.Fields) == 1 && cfg.Fields[0] == "auto":
		return RecipeAuto
	case len(cfg.Fields) > 0:
		return inat.FieldsTemplate(cfg.Fields)
	case cfg.Template == "" || cfg.Template == inat.DefaultTemplate:
		return RecipePaper
	}
	return cfg.Template
}

// plan is the deterministic order of samples and their shards.
type plan struct {
	images   []inat.Image
	idKeys   bool
	perShard int
	shards   int
	ext      string
}

func newPlan(cfg *Config, md *metadata) *plan {
	imgs := md.images
	if cfg.Shuffle {
		imgs = append([]inat.Image(nil), imgs...)
		rng := rand.New(rand.NewSource(cfg.Seed))
		rng.Shuffle(len(imgs), func(i, j int) { imgs[i], imgs[j] = imgs[j], imgs[i] })
	}
	if cfg.Limit > 0 && cfg.Limit < len(imgs) {
		imgs = imgs[:cfg.Limit]
	}
	ext, _ := cfg.shardExt()
	return &plan{images: imgs, idKeys: md.idKeys, perShard: cfg.PerShard,
		shards: (len(imgs) + cfg.PerShard - 1) / cfg.PerShard, ext: ext}
}

func (p *plan) shardName(s int) string { return fmt.Sprintf("%06d%s", s, p.ext) }

func (p *plan) key(i int) string {
	if p.idKeys {
		return fmt.Sprintf("%09d", p.images[i].ID)
	}
	return fmt.Sprintf("%09d", i)
}

// checkRoot catches a wrong --images before it turns every sample into a
// "missing" skip: when none of the first images exists, it is an error.
func (p *plan) checkRoot(cfg *Config) error {
	n := min(len(p.images), 16)
	for _, im := range p.images[:n] {
		if _, err := os.Stat(filepath.Join(cfg.Images, filepath.FromSlash(im.FileName))); err == nil {
			return nil
		}
	}
	return fmt.Errorf("caption: none of the first %d images exists under --images %s (e.g. %s): --images must be the folder that the json's file names are relative to",
		n, cfg.Images, filepath.Join(cfg.Images, filepath.FromSlash(p.images[0].FileName)))
}

// identity hashes everything that decides the shards' bytes.
func (p *plan) identity(cfg *Config, template string) runIdentity {
	h := sha256.New()
	fmt.Fprintf(h, "template=%q omit=%q max=%d q=%d verify=%v per=%d ext=%s idkeys=%v shuffle=%v seed=%d\n",
		template, cfg.Omit, cfg.MaxSize, cfg.Quality, cfg.Verify, cfg.PerShard, p.ext, p.idKeys, cfg.Shuffle, cfg.Seed)
	root, _ := filepath.Abs(cfg.Images)
	fmt.Fprintf(h, "root=%s\n", root)
	var num [8]byte
	for _, im := range p.images {
		h.Write([]byte(im.FileName))
		for k := 0; k < 8; k++ {
			num[k] = byte(uint64(im.ID) >> (8 * k))
		}
		h.Write(num[:])
		h.Write([]byte(strconv.Itoa(im.CategoryID)))
		h.Write([]byte{0})
	}
	return runIdentity{Hash: hex.EncodeToString(h.Sum(nil)), Samples: len(p.images), PerShard: p.perShard, Template: template,
		Images: fmt.Sprintf("max-size=%d quality=%d verify=%v shards=%s", cfg.MaxSize, cfg.Quality, cfg.Verify, p.ext)}
}

// checkIdentity compares the run with the one that wrote Out before: a
// different one is an error, or with Overwrite its shards are removed.
func checkIdentity(cfg *Config, id runIdentity, p *plan) error {
	dir := filepath.Join(cfg.Out, stateDir)
	path := filepath.Join(dir, "run.json")
	b, err := os.ReadFile(path)
	if err == nil {
		var old runIdentity
		if json.Unmarshal(b, &old) == nil && old.Hash == id.Hash {
			return nil
		}
		if !cfg.Overwrite {
			return fmt.Errorf("caption: %s holds shards of another configuration (%s): pass --overwrite to replace them or choose another --out",
				cfg.Out, id.diff(old))
		}
		if err := removeOldRun(cfg.Out); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("caption: %w", err)
	} else if ents, _ := filepath.Glob(filepath.Join(cfg.Out, "*.tar*")); len(ents) > 0 && !cfg.Overwrite {
		return fmt.Errorf("caption: %s already holds shards (e.g. %s) not made by this stage: pass --overwrite or choose another --out", cfg.Out, filepath.Base(ents[0]))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	b, _ = json.MarshalIndent(id, "", " ")
	return atomicfile.WriteFile(path, b)
}

// removeOldRun deletes the shards, records and lists a previous run wrote.
func removeOldRun(out string) error {
	for _, pat := range []string{"*.tar", "*.tar.gz", "*.tar.zst", "*.tmp", "sizes.json", "skipped.jsonl", filepath.Join(stateDir, "*")} {
		files, _ := filepath.Glob(filepath.Join(out, pat))
		for _, f := range files {
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("caption: --overwrite: %w", err)
			}
		}
	}
	return nil
}

func recordPath(out, name string) string { return filepath.Join(out, stateDir, name+".json") }

func readRecord(out, name string) (*shardRecord, error) {
	b, err := os.ReadFile(recordPath(out, name))
	if err != nil {
		return nil, err
	}
	var r shardRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// resumeState splits the shards into those to write and those complete from
// an earlier run (file present with its record and the recorded size).
func (p *plan) resumeState(cfg *Config) (todo []int, kept []int, err error) {
	for s := 0; s < p.shards; s++ {
		name := p.shardName(s)
		rec, err := readRecord(cfg.Out, name)
		st, serr := os.Stat(filepath.Join(cfg.Out, name))
		if err == nil && serr == nil && st.Size() == rec.Bytes {
			kept = append(kept, s)
			continue
		}
		todo = append(todo, s)
	}
	return todo, kept, nil
}

// finish writes sizes.json and skipped.jsonl from every shard's record.
func (p *plan) finish(cfg *Config, res *Result) error {
	sizes := map[string]int{}
	var skips []Skip
	for s := 0; s < p.shards; s++ {
		name := p.shardName(s)
		rec, err := readRecord(cfg.Out, name)
		if err != nil {
			return fmt.Errorf("caption: shard %s has no record: %w", name, err)
		}
		sizes[name] = rec.Count
		res.Samples += rec.Count
		skips = append(skips, rec.Skipped...)
	}
	if err := wds.WriteSizes(cfg.Out, sizes); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	sort.Slice(skips, func(i, j int) bool { return skips[i].Index < skips[j].Index })
	var b strings.Builder
	for _, s := range skips {
		line, _ := json.Marshal(s)
		b.Write(line)
		b.WriteByte('\n')
	}
	res.Skipped = len(skips)
	if err := atomicfile.WriteFile(filepath.Join(cfg.Out, "skipped.jsonl"), []byte(b.String())); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	return nil
}

// sampleMeta is a sample's .json member.
type sampleMeta struct {
	Key             string `json:"key"`
	ImageID         *int64 `json:"image_id,omitempty"`
	CategoryID      int    `json:"category_id"`
	Caption         string `json:"caption"`
	Source          string `json:"source"` // path relative to the image root
	Width           int    `json:"width"`
	Height          int    `json:"height"`
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
}

// outcome is one worker result: a sample or the reason it was skipped.
type outcome struct {
	sample *wds.Sample
	skip   *Skip
	err    error // fatal
}

// writer runs the worker pool and writes shards in plan order.
type writer struct {
	cfg        *Config
	plan       *plan
	md         *metadata
	capOf      map[int]string
	written    int
	bytes      int64
	shardsDone int
}

type job struct {
	index int
	out   chan outcome
}

func (w *writer) run(ctx context.Context, shards []int) error {
	if len(shards) == 0 {
		return nil
	}
	total := 0
	for _, s := range shards {
		total += w.shardLen(s)
	}
	bar := progress.New("caption", int64(total), withUnit(w.cfg.Progress))
	defer bar.Finish()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job)
	order := make(chan job, 4*w.cfg.Threads) // bounds the samples in flight
	var wg sync.WaitGroup
	for k := 0; k < w.cfg.Threads; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			enc := &encoder{maxSize: w.cfg.MaxSize, quality: w.cfg.Quality, verify: w.cfg.Verify}
			for j := range jobs {
				j.out <- w.process(enc, j.index)
			}
		}()
	}
	go func() { // dispatcher: plan order into both queues
		defer close(order)
		defer close(jobs)
		for _, s := range shards {
			lo, hi := s*w.plan.perShard, s*w.plan.perShard+w.shardLen(s)
			for i := lo; i < hi; i++ {
				j := job{index: i, out: make(chan outcome, 1)}
				select {
				case order <- j:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- j:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	err := w.consume(ctx, order, bar)
	cancel()
	for range order { // let the dispatcher and workers end
	}
	wg.Wait()
	return err
}

func withUnit(o progress.Options) progress.Options {
	if o.Unit == "" {
		o.Unit = "img"
	}
	return o
}

func (w *writer) shardLen(s int) int {
	return min(w.plan.perShard, len(w.plan.images)-s*w.plan.perShard)
}

// consume receives outcomes in plan order and writes them shard by shard.
func (w *writer) consume(ctx context.Context, order <-chan job, bar *progress.Bar) error {
	var cur *wds.Writer
	var rec *shardRecord
	curShard := -1
	abort := func() {
		if cur != nil {
			cur.Abort()
		}
	}
	for j := range order {
		var o outcome
		select {
		case o = <-j.out:
		case <-ctx.Done():
			abort()
			return ctx.Err()
		}
		if o.err != nil {
			abort()
			return o.err
		}
		if s := j.index / w.plan.perShard; s != curShard {
			if cur != nil {
				if err := w.closeShard(cur, rec); err != nil {
					return err
				}
			}
			name := w.plan.shardName(s)
			var err error
			cur, err = wds.Create(filepath.Join(w.cfg.Out, name))
			if err != nil {
				return fmt.Errorf("caption: %w", err)
			}
			rec = &shardRecord{Name: name, Skipped: []Skip{}}
			curShard = s
		}
		if o.skip != nil {
			o.skip.Shard = rec.Name
			rec.Skipped = append(rec.Skipped, *o.skip)
		} else if err := cur.Write(o.sample); err != nil {
			abort()
			return fmt.Errorf("caption: %w", err)
		}
		bar.Add(1)
		if err := ctx.Err(); err != nil {
			abort()
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		abort()
		return err
	}
	if cur != nil {
		return w.closeShard(cur, rec)
	}
	return nil
}

// closeShard renames the finished shard into place, then writes its record.
func (w *writer) closeShard(cur *wds.Writer, rec *shardRecord) error {
	if err := cur.Close(); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	st, err := os.Stat(cur.Path())
	if err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	rec.Count = cur.Count()
	rec.Bytes = st.Size()
	w.written += rec.Count
	w.bytes += rec.Bytes
	w.shardsDone++
	b, _ := json.MarshalIndent(rec, "", " ")
	if err := atomicfile.WriteFile(recordPath(w.cfg.Out, rec.Name), b); err != nil {
		return fmt.Errorf("caption: %w", err)
	}
	if w.cfg.afterShard != nil {
		w.cfg.afterShard(rec.Name)
	}
	return nil
}

// process builds sample i: image bytes, caption, metadata, class id.
func (w *writer) process(enc *encoder, i int) outcome {
	im := w.plan.images[i]
	var idp *int64
	if w.plan.idKeys {
		id := im.ID
		idp = &id
	}
	skip := func(reason string) outcome {
		return outcome{skip: &Skip{Index: i, ImageID: idp, Source: im.FileName, Reason: reason}}
	}
	if im.CategoryID < 0 {
		return skip("no annotation (no class to caption)")
	}
	cat, ok := w.md.byID[im.CategoryID]
	if !ok {
		return skip(fmt.Sprintf("unknown category id %d", im.CategoryID))
	}
	if strings.HasPrefix(im.FileName, "/") || strings.Contains("/"+im.FileName+"/", "/../") {
		return skip("unsafe file name (absolute or with ..)")
	}
	ph, err := enc.load(filepath.Join(w.cfg.Images, filepath.FromSlash(im.FileName)))
	if err != nil {
		var se *skipError
		if errors.As(err, &se) {
			return skip(se.reason)
		}
		return outcome{err: err}
	}
	key := w.plan.key(i)
	caption := w.capOf[cat.ID]
	meta := sampleMeta{Key: key, ImageID: idp, CategoryID: cat.ID, Caption: caption, Source: im.FileName,
		Width: ph.w, Height: ph.h, Name: cat.Name, CommonName: cat.CommonName, Supercategory: cat.Supercategory,
		Kingdom: cat.Kingdom, Phylum: cat.Phylum, Class: cat.Class, Order: cat.Order, Family: cat.Family,
		Genus: cat.Genus, SpecificEpithet: cat.SpecificEpithet}
	mb, err := json.Marshal(meta)
	if err != nil {
		return outcome{err: fmt.Errorf("caption: %w", err)}
	}
	return outcome{sample: &wds.Sample{Key: key, Files: map[string][]byte{
		ph.ext: ph.data,
		"txt":  []byte(caption),
		"json": mb,
		"cls":  []byte(strconv.Itoa(cat.ID)),
	}}}
}
