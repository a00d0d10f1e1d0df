// Package bundle makes and reads classifier bundles (DESIGN.md decision 10):
// one safetensors file holding the locked image tower, the class text
// embeddings precomputed with a tuned text tower, the logit scale, and in its
// metadata the model config, preprocessing, the cache fingerprint the text
// tower was tuned against and every class's names and taxonomy. predict and
// serve need nothing else: no text tower, no tokenizer, no cache.
//
// Run builds a bundle from a tune run folder; Open reads one back and
// classifies photos (Prepare, Probabilities, Top).
package bundle

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/tune"
)

// Config is one bundle to build.
type Config struct {
	// Run is a tune run folder: config.json and final/, in either of tune's
	// forms (a full model, or the text tower alone with --text-only).
	Run string
	// Model and Weights are the locked image tower: a config (built-in name
	// or file, of any family internal/tower knows) and a weights file or
	// random:SEED, with Pool its pooling ("" = the family's default). They
	// must be the tower that made the run's cache. Both "" take the run's
	// own: final/'s when it is a full model, else the one the cache records.
	Model, Weights, Pool string
	// Classes is classes.json; "" takes the run's.
	Classes string
	// Templates: "caption", "openai" or a file of templates (evaluate.ResolveTemplates).
	Templates string
	// Vocab is the BPE vocabulary; "" takes the run's (the one it was tuned
	// with), else $LITCACHE_VOCAB, else CLIP's, built in (loadTokenizer).
	Vocab string
	// Cache, when set, is where the run's training cache is now (its
	// manifest gives the fingerprint and the recorded tower); "" takes the
	// path the run recorded.
	Cache string
	// BatchSize is the most prompts per text-tower call.
	BatchSize int
	// Out is the bundle file to write.
	Out string

	Backend backend.Backend // nil: the CPU backend
	Log     io.Writer       // progress lines; nil: stderr
	Quiet   bool
}

// DefaultConfig builds class embeddings from the run's own captions.
func DefaultConfig() Config { return Config{Templates: "caption", BatchSize: 256} }

// Result describes the bundle written.
type Result struct {
	Out         string
	Bytes       int64
	Classes     int
	Templates   int
	Family      string // the image tower's
	Fingerprint string
	Seconds     float64
}

// Run builds the bundle cfg describes. A device error (a GPU op failing)
// is returned as an error.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	defer cuda.Recover(&err)
	start := time.Now()
	res.Out = cfg.Out
	if cfg.Run == "" || cfg.Out == "" {
		return res, fmt.Errorf("bundle: need a tune run (--run) and an output file (--out)")
	}
	if cfg.BatchSize <= 0 {
		return res, fmt.Errorf("bundle: --batch-size %d: want a positive number", cfg.BatchSize)
	}
	logw := cfg.Log
	if logw == nil {
		logw = os.Stderr
	}
	if cfg.Quiet {
		logw = io.Discard
	}
	be := cfg.Backend
	if be == nil {
		be = backend.NewCPU()
	}
	run, fin, err := readRun(cfg.Run)
	if err != nil {
		return res, err
	}
	cache := openRunCache(run, cfg)
	runFP, from, err := tunedFingerprint(run, fin, cfg, cache)
	if err != nil {
		return res, err
	}
	it, err := openTower(be, cfg, fin, cache)
	if err != nil {
		return res, err
	}
	defer it.t.Free()
	if it.fingerprint != runFP {
		return res, fmt.Errorf("bundle: image tower %s with weights %s has fingerprint %s, but run %s was tuned against %s (%s): give the --model and --weights that made the cache",
			it.model, it.weights, it.fingerprint, cfg.Run, runFP, from)
	}
	res.Fingerprint, res.Family = it.fingerprint, it.t.Family()
	fmt.Fprintf(logw, "bundle: image tower %s %s (%s), fingerprint %s\n", it.t.Family(), it.model, it.weights, it.fingerprint)
	if err := ctx.Err(); err != nil {
		return res, err
	}

	text, err := loadText(be, cfg, run, fin, logw)
	if err != nil {
		return res, err
	}
	cls, err := classEmbeddings(ctx, text, cfg.BatchSize, logw, cfg.Quiet)
	if err != nil {
		return res, err
	}
	D := it.t.Dim()
	head, err := readHead(fin.ImageHead, D, text.cfg.EmbedDim)
	if err != nil {
		return res, err
	}
	if head == nil && D != text.cfg.EmbedDim {
		return res, fmt.Errorf("bundle: the image tower embeds to %d, the text tower of %s to %d", D, cfg.Run, text.cfg.EmbedDim)
	}

	meta := Meta{Templates: text.templates,
		Source: Source{Run: cfg.Run, TextWeights: fin.Weights, TextModel: text.cfgName, Cache: cache.path,
			Weights: it.weights, Model: it.model, Vocab: tokenizer.Source(text.vocab), Templates: cfg.Templates,
			Created: time.Now().UTC().Format(time.RFC3339)}}
	for _, c := range text.classes {
		meta.Classes = append(meta.Classes, ClassFrom(c))
	}
	saved := it.t.Save()
	saved.Fingerprint = it.fingerprint
	if err := Write(cfg.Out, saved, cls, text.logit, meta, head...); err != nil {
		return res, err
	}
	if fi, err := os.Stat(cfg.Out); err == nil {
		res.Bytes = fi.Size()
	}
	res.Classes, res.Templates = len(text.classes), len(text.templates)
	res.Seconds = time.Since(start).Seconds()
	fmt.Fprintf(logw, "bundle: %s: %d classes, %d template(s), %.1f MB\n", cfg.Out, res.Classes, res.Templates, float64(res.Bytes)/1e6)
	return res, nil
}

// Write stores a bundle at path, atomically: the saved tower's tensors, the
// class embeddings (K,E) in meta.Classes' order, the logit scale and any
// extra tensors (the image head), with meta; its tower, preprocessing and
// fingerprint fields are taken from the saved tower (whose fingerprint must
// be the cache's the text tower was tuned on). Run uses it; tests build
// bundles with it directly.
func Write(path string, tw tower.Saved, classEmb []float32, logitScale float32, meta Meta, extra ...safetensors.Tensor) error {
	K := len(meta.Classes)
	if K == 0 || len(classEmb) == 0 || len(classEmb)%K != 0 {
		return fmt.Errorf("bundle: %d class-embedding values for %d classes", len(classEmb), K)
	}
	tc, err := tower.ParseConfig(tw.Family, tw.Config)
	if err != nil {
		return fmt.Errorf("bundle: image tower: %w", err)
	}
	if tw.Fingerprint == "" {
		return fmt.Errorf("bundle: image tower has no fingerprint")
	}
	meta.Version, meta.Tower, meta.ModelConfig, meta.Pool = Version, tw.Family, tw.Config, tw.Pool
	meta.Fingerprint, meta.Preprocess = tw.Fingerprint, describe(fieldPreprocessor(tc.Preprocessor()))
	ts := make([]safetensors.Tensor, 0, len(tw.Tensors)+2+len(extra))
	for _, t := range tw.Tensors {
		ts = append(ts, safetensors.F32(t.Name, t.Shape, t.Data))
	}
	ts = append(ts, safetensors.F32(TensorClassEmbeddings, []int{K, len(classEmb) / K}, classEmb),
		safetensors.F32(TensorLogitScale, []int{}, []float32{logitScale}))
	ts = append(ts, extra...)
	md, err := meta.Encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := safetensors.Write(path, ts, md); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

// describe is the metadata's account of the preprocessing.
func describe(p imageproc.Preprocessor) Preprocess {
	resize := p.Resize
	if resize == 0 {
		resize = p.Size
	}
	return Preprocess{Size: p.Size, Mean: p.Mean, Std: p.Std,
		Resize: fmt.Sprintf("shortest side to %d, Pillow's antialiased bicubic", resize),
		Crop:   "center", EXIF: p.ApplyEXIF, Describe: imageproc.Describe(p)}
}

// readRun reads a tune run folder's config.json (tune.Config, as tune
// writes it) and opens its final/ in either form.
func readRun(dir string) (tune.Config, tune.Final, error) {
	var c tune.Config
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return c, tune.Final{}, fmt.Errorf("bundle: --run %s is not a tune run folder: %w", dir, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, tune.Final{}, fmt.Errorf("bundle: --run %s: config.json: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "final")); err != nil {
		return c, tune.Final{}, fmt.Errorf("bundle: --run %s has no final/ text tower (is the run finished? `litcache tune --resume` completes it)", dir)
	}
	fin, err := tune.OpenFinal(dir)
	if err != nil {
		return c, fin, fmt.Errorf("bundle: --run %s: %w", dir, err)
	}
	return c, fin, nil
}

// textSide is what the class embeddings are made from.
type textSide struct {
	cfgName, vocab string
	cfg            clip.Config
	tower          *clip.TextTower
	tok            *tokenizer.Tokenizer
	classes        []inat.Class
	templates      []string
	context        int
	logit          float32
}

// loadText loads final/'s text tower (either form holds it) and what its
// prompts need: the classes, the templates and the run's tokenizer.
func loadText(be backend.Backend, cfg Config, run tune.Config, fin tune.Final, logw io.Writer) (*textSide, error) {
	t := &textSide{cfg: fin.Config, cfgName: filepath.Join(fin.Dir, clip.ConfigFileName)}
	var err error
	classesPath := cfg.Classes
	if classesPath == "" {
		classesPath = run.Classes
	}
	if t.classes, err = inat.LoadClasses(classesPath); err != nil {
		return nil, fmt.Errorf("bundle: --classes: %w", err)
	}
	if t.templates, err = evaluate.ResolveTemplates(cfg.Templates); err != nil {
		return nil, fmt.Errorf("bundle: --templates: %w", err)
	}
	t.vocab = cfg.Vocab
	if t.vocab == "" {
		t.vocab = run.Vocab
	}
	if t.tok, t.vocab, err = loadTokenizer(t.vocab); err != nil {
		return nil, err
	}
	if t.cfg.Text.VocabSize < tokenizer.VocabSize {
		return nil, fmt.Errorf("bundle: text model %s has a vocabulary of %d tokens, the CLIP tokenizer needs %d", t.cfgName, t.cfg.Text.VocabSize, tokenizer.VocabSize)
	}
	t.context = run.ContextLen
	if t.context <= 0 {
		t.context = t.cfg.Text.ContextLength
	}
	scale, ok, err := clip.ReadLogitScale(fin.Weights)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("bundle: %s has no logit_scale (tune saves one with the text tower)", fin.Weights)
	}
	t.logit = scale
	form := "full model"
	if !fin.Full {
		form = "text tower alone"
	}
	fmt.Fprintf(logw, "bundle: text tower %s (%s), %d classes × %d template(s), vocabulary %s\n",
		fin.Weights, form, len(t.classes), len(t.templates), tokenizer.Source(t.vocab))
	if t.tower, err = clip.LoadTextTower(be, t.cfg, fin.Weights); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return t, nil
}

// loadTokenizer is the one place the bundle gets its BPE vocabulary: vocab
// when given (--vocab, else the run's own), else $LITCACHE_VOCAB, else
// CLIP's, built in. It returns the file read ("" for the built-in one).
func loadTokenizer(vocab string) (*tokenizer.Tokenizer, string, error) {
	if vocab == "" {
		vocab = os.Getenv(tokenizer.EnvVocab)
	}
	tok, err := tokenizer.Open(vocab)
	if err != nil {
		return nil, "", fmt.Errorf("bundle: --vocab: %w", err)
	}
	return tok, vocab, nil
}

// classEmbeddings runs evaluate.ClassEmbeddings (the zero-shot classifier
// eval and tune score with) over the classes in chunks of about batch
// prompts, for a progress bar and a bounded text-tower batch.
func classEmbeddings(ctx context.Context, t *textSide, batch int, logw io.Writer, quiet bool) ([]float32, error) {
	defer t.tower.Free()
	chunk := max(1, batch/len(t.templates)) // classes per call
	bar := progress.New("class embeddings", int64(len(t.classes)), progress.Options{W: progressWriter(logw), Unit: "class", Quiet: quiet})
	defer bar.Finish()
	out := make([]float32, 0, len(t.classes)*t.cfg.EmbedDim)
	for i := 0; i < len(t.classes); i += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		j := min(i+chunk, len(t.classes))
		e, err := evaluate.ClassEmbeddings(t.tower, t.tok, t.classes[i:j], t.templates, t.context)
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		out = append(out, e...)
		bar.Add(int64(j - i))
	}
	return out, nil
}

// progressWriter lets progress detect a terminal when w is stderr.
func progressWriter(w io.Writer) io.Writer {
	if w == os.Stderr {
		return nil
	}
	return w
}

// readHead reads the run's optional image head (tune --image-head; path ""
// when it trained none), which must map the tower's D to the text tower's E.
func readHead(path string, D, E int) ([]safetensors.Tensor, error) {
	if path == "" {
		return nil, nil
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: image head: %w", err)
	}
	defer f.Close()
	w, ws, err := f.Float32(TensorHeadWeight)
	if err != nil {
		return nil, fmt.Errorf("bundle: image head %s: %w", path, err)
	}
	b, bs, err := f.Float32(TensorHeadBias)
	if err != nil {
		return nil, fmt.Errorf("bundle: image head %s: %w", path, err)
	}
	if len(ws) != 2 || ws[0] != E || ws[1] != D || len(bs) != 1 || bs[0] != E {
		return nil, fmt.Errorf("bundle: image head %s: weight %v and bias %v do not map %d-d image embeddings to %d", path, ws, bs, D, E)
	}
	return []safetensors.Tensor{safetensors.F32(TensorHeadWeight, ws, w), safetensors.F32(TensorHeadBias, bs, b)}, nil
}
