// Package evaluate is the zero-shot evaluation stage: class embeddings from
// prompt templates through a text tower, cosine similarity against the cached
// image embeddings, top-1/top-5 overall, at every taxonomic rank and per
// supercategory, the hardest classes and the most confused pairs, written as
// JSON, Markdown and PNG charts. It serves an untuned pretrained text tower
// (the baseline) and tune's output alike.
package evaluate

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/store"
)

// Config is one evaluation.
type Config struct {
	// Cache is the image-embedding cache; Split picks its rows by the rule
	// of every reader, store.SelectSplit in the role store.SplitVal ("" = the
	// cache's only split, else "val").
	Cache string
	Split string
	// ExpectFingerprint, when set, refuses a cache made by another image tower.
	ExpectFingerprint string
	// Classes is classes.json: the K classes of the classifier (all of them,
	// whether or not the cache holds images of each).
	Classes string
	// Weights is the text tower: a tune run folder (its final/), a checkpoint
	// folder (open_clip_model.safetensors + open_clip_config.json), a
	// weights file (OpenCLIP or HF names, e.g. a pretrained CLIP), or
	// random:SEED (a random-init tower of Model, the untuned baseline).
	Weights string
	// Model is the model config (built-in name or JSON); "" reads
	// open_clip_config.json beside the weights.
	Model string
	// Vocab is the BPE vocabulary file; "" = CLIP's
	// bpe_simple_vocab_16e6.txt.gz, built in.
	Vocab string
	// ContextLen is the token context; 0 = the text config's context_length.
	ContextLen int
	// Templates: "caption", "openai" or a file of templates (ResolveTemplates).
	Templates string
	// Subject is the class field "{}" stands for ("" = the common name,
	// falling back to the scientific name; e.g. "name" or "caption").
	Subject string
	// TopK predictions kept per image (≥ 5 for top-5).
	TopK int
	// Hardest and Pairs bound the hardest-classes and confused-pairs lists.
	Hardest, Pairs int
	// Out is the report folder (eval.json, eval.md, PNGs); "" writes nothing.
	Out string
	// Title heads the report.
	Title string

	Backend backend.Backend // nil: the CPU backend
	Log     io.Writer       // progress lines; nil: stderr
	Quiet   bool            // no progress bar or log lines
}

// DefaultConfig is the paper's evaluation: the caption template, top-5 kept,
// 20 hardest classes and 20 confused pairs.
func DefaultConfig() Config {
	return Config{Templates: "caption", TopK: 5, Hardest: 20, Pairs: 20, Title: "Zero-shot evaluation"}
}

// Result is what Run measured; it is also eval.json.
type Result struct {
	Title     string `json:"title"`
	Text      string `json:"text_tower"`
	TextModel string `json:"text_model"`
	Cache     string `json:"cache"`
	Split     string `json:"split"`
	// ImageTower describes the tower that made the cache (manifest "model").
	ImageTower   string `json:"image_tower"`
	Templates    string `json:"templates"`
	NumTemplates int    `json:"num_templates"`

	Images  int `json:"images"`
	Classes int `json:"classes"`
	// Unknown counts images whose label is not in classes.json (counted wrong).
	Unknown int `json:"unknown_labels"`

	Top1    float64 `json:"top1"`
	Top5    float64 `json:"top5"`
	Chance1 float64 `json:"chance_top1"`
	Chance5 float64 `json:"chance_top5"`

	Breakdown

	EncodeSeconds float64 `json:"encode_seconds"`
	ScoreSeconds  float64 `json:"score_seconds"`
	// Files are the report files written (empty without Out).
	Files []string `json:"files,omitempty"`
}

// ZeroShot builds the classifier (ClassEmbeddings) and scores img (N,E,
// L2-normalised) with labels (N) against it on be: the per-epoch evaluation
// of tune and the core of Run.
func ZeroShot(be backend.Backend, text *clip.TextTower, tok *tokenizer.Tokenizer, classes []inat.Class, templates []string, contextLen int, img []float32, labels []int32, topk int) (Scores, error) {
	cls, err := ClassEmbeddings(text, tok, classes, templates, contextLen)
	if err != nil {
		return Scores{}, err
	}
	dim := len(cls) / len(classes)
	n := len(labels)
	if len(img) != n*dim {
		return Scores{}, fmt.Errorf("evaluate: %d image values for %d labels of dim %d", len(img), n, dim)
	}
	return ScoreWith(be, img, cls, n, len(classes), dim, labels, ClassIDs(classes), topk), nil
}

// ClassIDs lists the category id of each class, in order.
func ClassIDs(classes []inat.Class) []int {
	ids := make([]int, len(classes))
	for i, c := range classes {
		ids[i] = c.ID
	}
	return ids
}

// Run evaluates a text tower on a cache and writes the report when cfg.Out is set.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	// A device failure inside an op arrives as a panic carrying the op's
	// error (the backend interface has no error returns): an error here.
	defer cuda.Recover(&err)
	return run(ctx, cfg)
}

func run(ctx context.Context, cfg Config) (Result, error) {
	res := Result{Title: cfg.Title, Text: cfg.Weights, Cache: cfg.Cache, Templates: cfg.Templates}
	if cfg.Cache == "" {
		return res, fmt.Errorf("evaluate: no cache (--cache)")
	}
	if cfg.Classes == "" {
		return res, fmt.Errorf("evaluate: no classes file (--classes)")
	}
	if cfg.Weights == "" {
		return res, fmt.Errorf("evaluate: no text tower (--weights)")
	}
	if cfg.TopK <= 0 {
		cfg.TopK = 5
	}
	if res.Title == "" {
		res.Title = "Zero-shot evaluation"
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

	templates, err := ResolveTemplates(cfg.Templates)
	if err != nil {
		return res, err
	}
	if templates, err = WithSubject(templates, cfg.Subject); err != nil {
		return res, err
	}
	res.NumTemplates = len(templates)
	classes, err := inat.LoadClasses(cfg.Classes)
	if err != nil {
		return res, fmt.Errorf("evaluate: %w", err)
	}
	tok, err := tokenizer.Open(cfg.Vocab)
	if err != nil {
		return res, fmt.Errorf("evaluate: %w", err)
	}
	weights, mcfg, cfgName, err := ResolveTextTower(cfg.Weights, cfg.Model)
	if err != nil {
		return res, err
	}
	res.Text, res.TextModel = weights, cfgName
	if mcfg.Text.VocabSize < tokenizer.VocabSize {
		return res, fmt.Errorf("evaluate: text model %s has a vocabulary of %d tokens, the CLIP tokenizer needs %d", cfgName, mcfg.Text.VocabSize, tokenizer.VocabSize)
	}
	text, err := loadTextTower(be, mcfg, weights)
	if err != nil {
		return res, err
	}
	defer text.Free()
	contextLen := cfg.ContextLen
	if contextLen <= 0 {
		contextLen = mcfg.Text.ContextLength
	}

	img, labels, rd, err := loadImages(cfg.Cache, cfg.Split, cfg.ExpectFingerprint)
	if err != nil {
		return res, err
	}
	if err := checkTunedAgainst(weights, cfg.Cache, rd.fingerprint); err != nil {
		return res, err
	}
	res.Split, res.ImageTower = rd.split, rd.model
	if img, rd.dim, err = applyImageHead(be, filepath.Join(filepath.Dir(weights), ImageHeadFile), img, len(labels), rd.dim); err != nil {
		return res, err
	}
	if rd.dim != mcfg.EmbedDim {
		return res, fmt.Errorf("evaluate: cache %s holds %d-d embeddings, text tower %s gives %d-d", cfg.Cache, rd.dim, cfgName, mcfg.EmbedDim)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}

	fmt.Fprintf(logw, "evaluate: %d images (%s split), %d classes, %d template(s), text tower %s\n",
		len(labels), res.Split, len(classes), len(templates), weights)
	t0 := time.Now()
	bar := progress.New("class embeddings", int64(len(classes)*len(templates)), progress.Options{Unit: "prompt", W: logw, Quiet: cfg.Quiet})
	cls, err := classEmbeddings(text, tok, classes, templates, contextLen, bar)
	bar.Finish()
	if err != nil {
		return res, err
	}
	res.EncodeSeconds = time.Since(t0).Seconds()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	t1 := time.Now()
	s := ScoreWith(be, img, cls, len(labels), len(classes), rd.dim, labels, ClassIDs(classes), cfg.TopK)
	res.ScoreSeconds = time.Since(t1).Seconds()

	res.Images, res.Classes, res.Unknown = s.N, s.K, s.Unknown
	res.Top1, res.Top5 = s.Top1Acc(), s.Top5Acc()
	res.Chance1 = 1 / float64(len(classes))
	res.Chance5 = float64(min(5, len(classes))) / float64(len(classes))
	res.Breakdown = Analyse(s, classes, cfg.Hardest, cfg.Pairs)
	fmt.Fprintf(logw, "evaluate: top-1 %.4f  top-5 %.4f  (chance %.4f / %.4f)\n", res.Top1, res.Top5, res.Chance1, res.Chance5)

	if cfg.Out != "" {
		files, err := WriteReport(cfg.Out, res)
		if err != nil {
			return res, err
		}
		res.Files = files
	}
	return res, nil
}

// ResolveTextTower finds the weights file and model config of a --weights
// value: a run folder (uses final/), a checkpoint folder, a weights file, or
// random:SEED (clip.ParseRandomWeights; weights is then text itself); the
// config is textModel when given, else open_clip_config.json (or an HF
// config.json) beside the weights.
func ResolveTextTower(text, textModel string) (weights string, cfg clip.Config, cfgName string, err error) {
	weights = text
	if _, ok, err := clip.ParseRandomWeights(text); ok {
		if err != nil {
			return "", cfg, "", fmt.Errorf("evaluate: --weights: %w", err)
		}
		if textModel == "" {
			return "", cfg, "", fmt.Errorf("evaluate: --weights %s: a random tower needs its config (--model)", text)
		}
		if cfg, err = clip.LoadConfig(textModel); err != nil {
			return "", cfg, "", fmt.Errorf("evaluate: text model %s: %w", textModel, err)
		}
		return text, cfg, textModel, nil
	}
	fi, err := os.Stat(text)
	if err != nil {
		return "", cfg, "", fmt.Errorf("evaluate: text tower: %w", err)
	}
	if fi.IsDir() {
		dir := text
		if _, err := os.Stat(filepath.Join(dir, "final")); err == nil {
			dir = filepath.Join(dir, "final") // a tune run folder
		}
		weights = ""
		for _, name := range []string{"open_clip_model.safetensors", "model.safetensors"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				weights = filepath.Join(dir, name)
				break
			}
		}
		if weights == "" {
			m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
			sort.Strings(m)
			if len(m) != 1 {
				return "", cfg, "", fmt.Errorf("evaluate: text tower folder %s: want open_clip_model.safetensors (found %d .safetensors files)", dir, len(m))
			}
			weights = m[0]
		}
	}
	cfgName = textModel
	if cfgName == "" {
		dir := filepath.Dir(weights)
		for _, name := range []string{"open_clip_config.json", "config.json"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				cfgName = filepath.Join(dir, name)
				break
			}
		}
		if cfgName == "" {
			return "", cfg, "", fmt.Errorf("evaluate: text tower %s: no open_clip_config.json beside it; name the model config with --model (one of %s, or a JSON file)",
				weights, strings.Join(clip.BuiltinNames(), ", "))
		}
	}
	cfg, err = clip.LoadConfig(cfgName)
	if err != nil {
		return "", cfg, "", fmt.Errorf("evaluate: text model %s: %w", cfgName, err)
	}
	return weights, cfg, cfgName, nil
}

// loadTextTower reads the tower's weights, or draws a random one for random:SEED.
func loadTextTower(be backend.Backend, mcfg clip.Config, weights string) (*clip.TextTower, error) {
	if seed, ok, _ := clip.ParseRandomWeights(weights); ok {
		return clip.NewRandomTextTower(be, mcfg, seed), nil
	}
	text, err := clip.LoadTextTower(be, mcfg, weights)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return text, nil
}

// checkTunedAgainst refuses a full model that tune assembled (its metadata
// names the cache fingerprint of its image tower) on a cache made by another
// tower: its text tower learned that tower's embeddings, and scores on any
// other's mean nothing. A text tower alone, a pretrained file and random:SEED
// carry no such record and are not checked.
func checkTunedAgainst(weights, cache, cacheFingerprint string) error {
	if _, random, _ := clip.ParseRandomWeights(weights); random {
		return nil
	}
	c, err := clip.ReadContents(weights)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	if fp := c.Metadata[clip.MetaImageFingerprint]; fp != "" && fp != cacheFingerprint {
		return fmt.Errorf("evaluate: %s was tuned against image tower %s (the one it holds), but cache %s was made by %s: evaluate it on a cache of its own tower",
			weights, fp, cache, cacheFingerprint)
	}
	return nil
}

// cacheInfo describes the rows loadImages read.
type cacheInfo struct {
	split, model, fingerprint string
	dim                       int
}

// loadImages reads view 0 of every row of the chosen split into img (N,E),
// as stored (applyImageHead normalises them), with the labels (N).
func loadImages(dir, split, fingerprint string) ([]float32, []int32, cacheInfo, error) {
	var info cacheInfo
	r, err := store.Open(dir, store.ReadOptions{ExpectFingerprint: fingerprint})
	if err != nil {
		return nil, nil, info, fmt.Errorf("evaluate: %w", err)
	}
	defer r.Close()
	m := r.Manifest()
	info.model, info.dim, info.fingerprint = m.Model, m.Dim, m.Fingerprint
	if info.split, err = r.SelectSplit(split, store.SplitVal); err != nil {
		return nil, nil, info, fmt.Errorf("evaluate: %w", err)
	}
	parts := r.Split(info.split)
	n := 0
	for _, p := range parts {
		for _, v := range p.Views() {
			if v == 0 {
				n++
			}
		}
	}
	if n == 0 {
		return nil, nil, info, fmt.Errorf("evaluate: cache %s: split %s has no image", dir, info.split)
	}
	D := m.Dim
	img := make([]float32, n*D)
	labels := make([]int32, n)
	i := 0
	for _, p := range parts {
		views, lab := p.Views(), p.Labels()
		for j := 0; j < p.N; j++ {
			if views[j] != 0 {
				continue
			}
			p.Row(j, img[i*D:(i+1)*D])
			labels[i] = lab[j]
			i++
		}
	}
	return img, labels, info, nil
}

// ImageHeadFile is the optional image-side head that `litcache tune
// --image-head` saves beside the tuned text tower.
const ImageHeadFile = "image_head.safetensors"

// applyImageHead maps the n×dim cached embeddings, as stored, through the
// linear head in path (image_head.weight (E,dim), image_head.bias (E)) and
// L2-normalises the result, as tune does before its loss and in its per-epoch
// zero-shot (the head sees the raw rows: on a cache extracted with
// --no-normalize, normalising first would score other features than those
// trained on). Without the file the embeddings are only L2-normalised, in place.
func applyImageHead(be backend.Backend, path string, img []float32, n, dim int) ([]float32, int, error) {
	if _, err := os.Stat(path); err != nil {
		NormalizeRows(img, n, dim)
		return img, dim, nil
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("evaluate: image head: %w", err)
	}
	defer f.Close()
	w, ws, err := f.Float32("image_head.weight")
	if err != nil {
		return nil, 0, fmt.Errorf("evaluate: image head %s: %w", path, err)
	}
	b, bs, err := f.Float32("image_head.bias")
	if err != nil {
		return nil, 0, fmt.Errorf("evaluate: image head %s: %w", path, err)
	}
	if len(ws) != 2 || ws[1] != dim || len(bs) != 1 || bs[0] != ws[0] {
		return nil, 0, fmt.Errorf("evaluate: image head %s: weight %v and bias %v do not map %d-d embeddings", path, ws, bs, dim)
	}
	E := ws[0]
	x, wt, bt, out := be.FromFloat32(img, n, dim), be.FromFloat32(w, E, dim), be.FromFloat32(b, E), be.Zeros(n, E)
	be.Linear(out, x, wt, bt, backend.ActNone)
	be.L2Normalize(out, out)
	res := be.ToFloat32(out, nil)
	for _, t := range []backend.Tensor{x, wt, bt, out} {
		be.Free(t)
	}
	return res, E, nil
}
