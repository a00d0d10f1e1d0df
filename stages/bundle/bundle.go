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

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/stages/tune"
	"github.com/litcache/litcache/store"
)

// Config is one bundle to build.
type Config struct {
	// Run is a tune run folder: config.json and final/ (the tuned text tower).
	Run string
	// Model and Weights are the locked image tower: a config (built-in name or
	// JSON) and a safetensors file or random:SEED — the tower that made the
	// run's cache.
	Model, Weights string
	// Classes is classes.json; "" takes the run's.
	Classes string
	// Templates: "caption", "openai" or a file of templates (evaluate.ResolveTemplates).
	Templates string
	// Vocab is the BPE vocabulary; "" takes the run's (the one it was tuned
	// with), else $LITCACHE_VOCAB, else the default one (loadTokenizer).
	Vocab string
	// Cache, when set, is where the run's training cache is now (its
	// fingerprint is compared); "" takes the path the run recorded.
	Cache string
	// Out is the bundle file to write.
	Out string

	Backend backend.Backend // nil: the CPU backend
	Log     io.Writer       // progress lines; nil: stderr
	Quiet   bool
}

// DefaultConfig builds class embeddings from the run's own captions.
func DefaultConfig() Config { return Config{Templates: "caption"} }

// Result describes the bundle written.
type Result struct {
	Out         string
	Bytes       int64
	Classes     int
	Templates   int
	Fingerprint string
	Seconds     float64
}

// Run builds the bundle cfg describes.
func Run(ctx context.Context, cfg Config) (Result, error) {
	start := time.Now()
	res := Result{Out: cfg.Out}
	if cfg.Run == "" || cfg.Out == "" || cfg.Model == "" {
		return res, fmt.Errorf("bundle: need a tune run (--run), the image tower (--model, --weights) and an output file (--out)")
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
	run, err := readRun(cfg.Run)
	if err != nil {
		return res, err
	}
	runFP, cachePath, err := runFingerprint(run, cfg)
	if err != nil {
		return res, err
	}
	tower, fp, err := openTower(be, cfg.Model, cfg.Weights)
	if err != nil {
		return res, err
	}
	defer tower.Free()
	if fp != runFP {
		return res, fmt.Errorf("bundle: image tower %s with weights %s has fingerprint %s, but run %s was tuned on cache %s made by %s: give the --model and --weights that made the cache",
			cfg.Model, cfg.Weights, fp, cfg.Run, cachePath, runFP)
	}
	res.Fingerprint = fp
	if err := ctx.Err(); err != nil {
		return res, err
	}

	text, err := loadText(be, cfg, run, logw)
	if err != nil {
		return res, err
	}
	cls, err := classEmbeddings(ctx, text, logw, cfg.Quiet)
	if err != nil {
		return res, err
	}
	head, err := readHead(text.dir, tower.EmbedDim(), text.cfg.EmbedDim)
	if err != nil {
		return res, err
	}
	if head == nil && tower.EmbedDim() != text.cfg.EmbedDim {
		return res, fmt.Errorf("bundle: the image tower embeds to %d, the text tower of %s to %d", tower.EmbedDim(), cfg.Run, text.cfg.EmbedDim)
	}

	meta := Meta{Version: Version, Fingerprint: fp, Templates: text.templates,
		Source: Source{Run: cfg.Run, TextWeights: text.weights, TextModel: text.cfgName, Cache: cachePath,
			Weights: cfg.Weights, Model: cfg.Model, Vocab: text.vocab, Templates: cfg.Templates,
			Created: time.Now().UTC().Format(time.RFC3339)}}
	for _, c := range text.classes {
		meta.Classes = append(meta.Classes, ClassFrom(c))
	}
	if err := Write(cfg.Out, tower, cls, text.logit, meta, head...); err != nil {
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

// Write stores a bundle at path, atomically: the tower's tensors, the class
// embeddings (K,E) in meta.Classes' order, the logit scale and any extra
// tensors (the image head), with meta (its tower and preprocessing fields
// are taken from tower). Run uses it; tests build bundles with it directly.
func Write(path string, tower Tower, classEmb []float32, logitScale float32, meta Meta, extra ...safetensors.Tensor) error {
	K := len(meta.Classes)
	if K == 0 || len(classEmb) == 0 || len(classEmb)%K != 0 {
		return fmt.Errorf("bundle: %d class-embedding values for %d classes", len(classEmb), K)
	}
	ts, err := tower.Tensors()
	if err != nil {
		return fmt.Errorf("bundle: image tower: %w", err)
	}
	meta.Version, meta.Tower, meta.ModelConfig, meta.Preprocess = Version, tower.Family(), tower.Config(), describe(tower)
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

// describe is the metadata's account of the tower's preprocessing.
func describe(t Tower) Preprocess {
	p := t.Preprocessor()
	return Preprocess{Size: p.Size, Mean: p.Mean, Std: p.Std, Resize: "shortest side to size, Pillow's antialiased bicubic",
		Crop: "center", EXIF: p.ApplyEXIF, Describe: imageproc.Describe(p)}
}

// readRun reads a tune run folder's config.json (tune.Config, as tune writes it).
func readRun(dir string) (tune.Config, error) {
	var c tune.Config
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return c, fmt.Errorf("bundle: --run %s is not a tune run folder: %w", dir, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("bundle: --run %s: config.json: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "final")); err != nil {
		return c, fmt.Errorf("bundle: --run %s has no final/ text tower (is the run finished? `litcache tune --resume` completes it)", dir)
	}
	return c, nil
}

// runFingerprint is the fingerprint of the cache the run was tuned on: the
// one the run was told to expect, else the manifest's of its training cache.
func runFingerprint(run tune.Config, cfg Config) (fp, cache string, err error) {
	cache = cfg.Cache
	if cache == "" {
		cache = run.Cache // as tune was given it: relative to where tune ran
	}
	if run.ExpectFingerprint != "" && cfg.Cache == "" {
		return run.ExpectFingerprint, cache, nil
	}
	m, err := store.ReadManifest(cache)
	if err != nil {
		return "", cache, fmt.Errorf("bundle: the cache run %s was tuned on: %w (give its current place with --cache)", cfg.Run, err)
	}
	return m.Fingerprint, cache, nil
}

// textSide is what the class embeddings are made from.
type textSide struct {
	dir, weights, cfgName, vocab string
	cfg                          clip.Config
	tower                        *clip.TextTower
	tok                          *tokenizer.Tokenizer
	classes                      []inat.Class
	templates                    []string
	context                      int
	logit                        float32
}

func loadText(be backend.Backend, cfg Config, run tune.Config, logw io.Writer) (*textSide, error) {
	t := &textSide{}
	var err error
	if t.weights, t.cfg, t.cfgName, err = evaluate.ResolveTextTower(cfg.Run, ""); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	t.dir = filepath.Dir(t.weights)
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
	if t.tok, err = loadTokenizer(t.vocab); err != nil {
		return nil, err
	}
	if t.cfg.Text.VocabSize < tokenizer.VocabSize {
		return nil, fmt.Errorf("bundle: text model %s has a vocabulary of %d tokens, the CLIP tokenizer needs %d", t.cfgName, t.cfg.Text.VocabSize, tokenizer.VocabSize)
	}
	t.context = run.ContextLen
	if t.context <= 0 {
		t.context = t.cfg.Text.ContextLength
	}
	scale, ok, err := clip.ReadLogitScale(t.weights)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("bundle: %s has no logit_scale (tune saves one with the text tower)", t.weights)
	}
	t.logit = scale
	fmt.Fprintf(logw, "bundle: text tower %s, %d classes × %d template(s)\n", t.weights, len(t.classes), len(t.templates))
	if t.tower, err = clip.LoadTextTower(be, t.cfg, t.weights); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return t, nil
}

// loadTokenizer is the one place the bundle gets its BPE vocabulary: vocab
// when given, else $LITCACHE_VOCAB, else the default one — CLIP's, which the
// tokenizer embeds in builds that carry it.
func loadTokenizer(vocab string) (*tokenizer.Tokenizer, error) {
	if vocab == "" {
		vocab = os.Getenv("LITCACHE_VOCAB")
	}
	if vocab == "" {
		return nil, fmt.Errorf("bundle: no BPE vocabulary: the run records none; give --vocab (CLIP's bpe_simple_vocab_16e6.txt.gz) or set $LITCACHE_VOCAB")
	}
	tok, err := tokenizer.Load(vocab)
	if err != nil {
		return nil, fmt.Errorf("bundle: --vocab: %w", err)
	}
	return tok, nil
}

// classEmbeddings runs evaluate.ClassEmbeddings (the zero-shot classifier
// eval and tune score with) over the classes in chunks, for a progress bar.
func classEmbeddings(ctx context.Context, t *textSide, logw io.Writer, quiet bool) ([]float32, error) {
	defer t.tower.Free()
	chunk := max(1, 256/len(t.templates)) // classes per call: about one text-tower batch
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

// readHead reads the run's optional image head (tune --image-head), which
// must map the tower's D to the text tower's E.
func readHead(dir string, D, E int) ([]safetensors.Tensor, error) {
	path := filepath.Join(dir, evaluate.ImageHeadFile)
	if _, err := os.Stat(path); err != nil {
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
