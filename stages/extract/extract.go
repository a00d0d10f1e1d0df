package extract

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/wds"
	"github.com/litcache/litcache/store"
)

// ErrTooManyRejects: more samples were rejected than Config.MaxRejectFraction allows.
var ErrTooManyRejects = errors.New("too many rejected samples")

// Result sums up a run.
type Result struct {
	Fingerprint string
	Shards      int // this worker's shards
	Skipped     int // of those, already complete
	Samples     int // samples read this run (kept + rejected)
	Rows        int // rows written this run (kept × views)
	Rejects     int // samples rejected this run
	// RejectFraction is rejects/samples over all of this worker's shards
	// (including those finished by an earlier run).
	RejectFraction float64
	// Seconds per phase. Decode is summed over the decode goroutines (busy
	// time, decode + preprocess); Tower is the wall time inside the image
	// tower; Write the wall time committing parts; Wall the whole run.
	DecodeSeconds, TowerSeconds, WriteSeconds, WallSeconds float64
	// ImagesPerSecond is samples / wall time.
	ImagesPerSecond float64
}

// Fingerprint identifies what makes a cache's embeddings: the image tower
// (clip.VisionFingerprint: config + weights bytes, or the random seed) and
// the preprocessing (imageproc.Describe). Readers compare it.
func Fingerprint(cfg clip.Config, weights string, seed int64) (string, error) {
	if weights == "" {
		weights = clip.RandomWeights(seed)
	}
	tower, err := clip.VisionFingerprint(cfg, weights)
	if err != nil {
		return "", fmt.Errorf("extract: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(tower))
	h.Write([]byte{0})
	h.Write([]byte(imageproc.Describe(imageproc.CLIPPreprocessor(cfg.Vision.ImageSize))))
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// FingerprintFor is Fingerprint from a model config name or path.
func FingerprintFor(modelConfig, weights string, seed int64) (string, error) {
	cfg, err := clip.LoadConfig(modelConfig)
	if err != nil {
		return "", fmt.Errorf("extract: %w", err)
	}
	return Fingerprint(cfg, weights, seed)
}

// job is one sample on its way through the pipeline.
type job struct {
	shard int // position in the todo list
	seq   int // sample number within the shard; -1 marks the shard's end
	s     *wds.Sample
	err   error // shard-level read error (with seq = -1)

	// filled by the decode pool
	key     string
	label   int32
	caption string
	pixels  [][]float32 // one (3,S,S) per view
	reject  string
}

// Run extracts this worker's shards into cfg.Cache.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = os.Stderr
	}
	mcfg, err := clip.LoadConfig(cfg.ModelConfig)
	if err != nil {
		return res, fmt.Errorf("extract: model config %q: %w", cfg.ModelConfig, err)
	}
	fp, err := Fingerprint(mcfg, cfg.Weights, cfg.Seed)
	if err != nil {
		return res, err
	}
	res.Fingerprint = fp
	pre := imageproc.CLIPPreprocessor(mcfg.Vision.ImageSize)
	var compact bytes.Buffer
	if err := json.Compact(&compact, mcfg.JSON()); err != nil {
		compact.Write(mcfg.JSON())
	}
	model := fmt.Sprintf("%s weights=%s | %s", compact.String(), weightsName(cfg), imageproc.Describe(pre))
	tower, err := towerSource(cfg, compact.Bytes())
	if err != nil {
		return res, err
	}
	cache, err := store.Create(cfg.Cache, store.Manifest{
		Fingerprint: fp, Model: model, Tower: tower, Dim: mcfg.EmbedDim, DType: cfg.DType, Views: cfg.Views, Normalized: cfg.Normalize,
	})
	if err != nil {
		return res, fmt.Errorf("extract: cache %s: %w", cfg.Cache, err)
	}

	// This worker's shards; names must be unique so parts cannot collide.
	type shardJob struct{ path, name string }
	var todo []shardJob
	seen := map[string]string{}
	samplesBefore, rejectsBefore := 0, 0
	for i, sh := range cfg.Shards {
		name := store.PartName(cfg.Split, sh)
		if prev, dup := seen[name]; dup {
			return res, fmt.Errorf("extract: shards %s and %s map to the same part %s: give them distinct file names", prev, sh, name)
		}
		seen[name] = sh
		if i%cfg.NumWorkers != cfg.Worker {
			continue
		}
		res.Shards++
		mk, done, err := cache.Done(name)
		if err != nil {
			return res, fmt.Errorf("extract: %w", err)
		}
		if done {
			res.Skipped++
			samplesBefore += mk.Samples
			rejectsBefore += mk.Rejects
			continue
		}
		if _, err := os.Stat(sh); err != nil {
			return res, fmt.Errorf("extract: shard %s: %w", sh, err)
		}
		todo = append(todo, shardJob{sh, name})
	}
	if len(todo) == 0 {
		fmt.Fprintf(logw, "extract: worker %d/%d: all %d shards already in %s\n", cfg.Worker, cfg.NumWorkers, res.Shards, cfg.Cache)
		res.RejectFraction = fraction(rejectsBefore, samplesBefore)
		if _, err := store.Finalize(cfg.Cache); err != nil {
			return res, fmt.Errorf("extract: %w", err)
		}
		return res, checkRejects(cfg, res)
	}

	be := cfg.Backend
	if be == nil {
		be = backend.NewCPU()
	}
	var m *clip.Model
	if cfg.Weights == "" {
		m = clip.NewRandomModel(be, mcfg, cfg.Seed)
	} else if m, err = clip.LoadModel(be, mcfg, cfg.Weights); err != nil {
		return res, fmt.Errorf("extract: %w", err)
	}

	// Progress total from sizes.json beside the shards when present.
	total := 0
	for _, sj := range todo {
		if sizes, err := wds.ReadSizes(filepath.Dir(sj.path)); err == nil {
			if n, ok := sizes[filepath.Base(sj.path)]; ok {
				total += n
				continue
			}
		}
		total = 0
		break
	}
	popt := cfg.Progress
	if popt.Unit == "" {
		popt.Unit = "img"
	}
	bar := progress.New(fmt.Sprintf("extract %s [%d/%d]", cfg.Split, cfg.Worker, cfg.NumWorkers), int64(total), popt)
	defer bar.Finish()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Stage 1: read shards in order. A sample takes a slot of inflight when
	// read and gives it back when the writer stage takes it in order, so the
	// samples held anywhere in the pipeline (queues, decoders, the reorder
	// buffer) never exceed its capacity: memory stays flat even when one
	// image decodes slowly and the others run ahead.
	jobs := make(chan *job, 4*cfg.Workers)
	inflight := make(chan struct{}, 4*cfg.Workers+cfg.BatchSize)
	go func() {
		defer close(jobs)
		send := func(j *job) bool {
			select {
			case jobs <- j:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for si, sj := range todo {
			r, err := wds.NewReader(sj.path)
			if err != nil {
				if !send(&job{shard: si, seq: -1, err: err}) {
					return
				}
				continue
			}
			seq := 0
			var rerr error
			for {
				s, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					rerr = err
					break
				}
				select {
				case inflight <- struct{}{}:
				case <-ctx.Done():
					r.Close()
					return
				}
				if !send(&job{shard: si, seq: seq, s: s}) {
					r.Close()
					return
				}
				seq++
			}
			r.Close()
			if !send(&job{shard: si, seq: -1 - seq, err: rerr}) {
				return
			}
		}
	}()

	// Stage 2: decode + preprocess on all cores.
	decoded := make(chan *job, 4*cfg.Workers)
	var decodeNanos sync.Mutex
	var decodeBusy time.Duration
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var busy time.Duration
			for j := range jobs {
				if j.seq >= 0 {
					t0 := time.Now()
					prepare(j, pre, cfg.Views)
					busy += time.Since(t0)
				}
				select {
				case decoded <- j:
				case <-ctx.Done():
				}
			}
			decodeNanos.Lock()
			decodeBusy += busy
			decodeNanos.Unlock()
		}()
	}
	go func() { wg.Wait(); close(decoded) }()

	// Stage 3: reorder per shard, batch, embed, write — in this goroutine.
	S := mcfg.Vision.ImageSize
	E := mcfg.EmbedDim
	rowPix := 3 * S * S
	var towerTime, writeTime time.Duration
	shardIdx := 0
	next := 0 // next sample seq expected of the current shard
	end := -1 // sample count of the current shard once its end arrived
	var endErr error
	pending := map[int]*job{}
	ends := map[int]*job{}    // end markers of shards ahead
	early := map[int][]*job{} // samples of shards ahead of the current one
	var pw *store.PartWriter
	batchIdx := 0
	var batch []*job
	pix := make([]float32, 0, cfg.BatchSize*rowPix)
	runErr := error(nil)

	flush := func() {
		if len(batch) == 0 {
			return
		}
		rows := 0
		pix = pix[:0]
		for _, j := range batch {
			for _, p := range j.pixels {
				pix = append(pix, p...)
				rows++
			}
		}
		t0 := time.Now()
		emb, err := encode(m.Vision, pix, rows) // (rows,E)
		towerTime += time.Since(t0)
		if err != nil {
			if runErr == nil {
				runErr = err
			}
			batch = batch[:0]
			return
		}
		if cfg.Normalize {
			normalizeRows(emb, rows, E)
		}
		r := 0
		for _, j := range batch {
			for v := range j.pixels {
				if err := pw.Add(j.key, j.label, v, j.caption, emb[r*E:(r+1)*E]); err != nil && runErr == nil {
					runErr = err
				}
				r++
			}
			j.pixels = nil
		}
		bar.Add(int64(len(batch)))
		res.Rows += rows
		batch = batch[:0]
		if cfg.Hooks.AfterBatch != nil {
			cfg.Hooks.AfterBatch(todo[shardIdx].path, batchIdx)
		}
		batchIdx++
	}
	take := func(j *job) {
		<-inflight
		res.Samples++
		if j.reject != "" {
			res.Rejects++
			pw.Reject(j.key, j.reject)
			bar.Add(1)
			return
		}
		batch = append(batch, j)
		if len(batch)*cfg.Views >= cfg.BatchSize {
			flush()
		}
	}
	startShard := func() {
		pending = map[int]*job{}
		next, end, endErr, batchIdx = 0, -1, nil, 0
		pw, err = cache.NewPart(todo[shardIdx].name, cfg.Split, todo[shardIdx].path)
		if err != nil && runErr == nil {
			runErr = err
		}
		if e, ok := ends[shardIdx]; ok {
			delete(ends, shardIdx)
			end, endErr = -1-e.seq, e.err
		}
		for _, j := range early[shardIdx] {
			pending[j.seq] = j
		}
		delete(early, shardIdx)
	}
	startShard()
	for runErr == nil {
		// Drain what is in order.
		for {
			if j, ok := pending[next]; ok {
				delete(pending, next)
				take(j)
				next++
				continue
			}
			break
		}
		if runErr != nil {
			break
		}
		if end >= 0 && next == end {
			flush()
			sj := todo[shardIdx]
			if endErr != nil {
				// A cut or damaged shard keeps the samples read before the
				// damage; the damage itself is one reject.
				res.Samples++
				res.Rejects++
				pw.Reject("", fmt.Sprintf("shard unreadable after %d samples: %v", end, endErr))
				fmt.Fprintf(logw, "extract: %s: %v (kept the %d samples before)\n", sj.path, endErr, end)
			}
			t0 := time.Now()
			if _, err := pw.Commit(cfg.Worker, cfg.NumWorkers, &cfg.Hooks.Part); err != nil {
				runErr = err
				break
			}
			writeTime += time.Since(t0)
			shardIdx++
			if shardIdx == len(todo) {
				break
			}
			startShard()
			continue
		}
		j, ok := <-decoded
		if !ok {
			if ctx.Err() != nil {
				runErr = ctx.Err()
			} else {
				runErr = fmt.Errorf("extract: pipeline ended before shard %s was complete", todo[shardIdx].path)
			}
			break
		}
		switch {
		case j.shard != shardIdx && j.seq < 0:
			ends[j.shard] = j
		case j.shard != shardIdx:
			early[j.shard] = append(early[j.shard], j)
		case j.seq < 0:
			end, endErr = -1-j.seq, j.err
		default:
			pending[j.seq] = j
		}
	}
	if runErr != nil {
		cancel()
		for range decoded {
		}
		if pw != nil {
			pw.Abort()
		}
		return res, fmt.Errorf("extract: %w", runErr)
	}
	bar.Finish()

	decodeNanos.Lock()
	res.DecodeSeconds = decodeBusy.Seconds()
	decodeNanos.Unlock()
	res.TowerSeconds, res.WriteSeconds = towerTime.Seconds(), writeTime.Seconds()
	res.WallSeconds = time.Since(start).Seconds()
	if res.WallSeconds > 0 {
		res.ImagesPerSecond = float64(res.Samples) / res.WallSeconds
	}
	res.RejectFraction = fraction(rejectsBefore+res.Rejects, samplesBefore+res.Samples)
	if _, err := store.Finalize(cfg.Cache); err != nil {
		return res, fmt.Errorf("extract: %w", err)
	}
	fmt.Fprintf(logw, "extract: worker %d/%d: %d shards (%d already done), %d samples, %d rejected, %.1f img/s (decode %.1fs busy, tower %.1fs)\n",
		cfg.Worker, cfg.NumWorkers, res.Shards, res.Skipped, res.Samples, res.Rejects, res.ImagesPerSecond, res.DecodeSeconds, res.TowerSeconds)
	return res, checkRejects(cfg, res)
}

// encode runs the tower; a backend reports a device failure inside an op by
// panicking (the interface has no error returns), which becomes an error here.
func encode(vt *clip.VisionTower, pix []float32, rows int) (emb []float32, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("image tower: %v", r)
		}
	}()
	return vt.Encode(pix, rows), nil
}

func fraction(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func checkRejects(cfg Config, res Result) error {
	if res.RejectFraction > cfg.MaxRejectFraction {
		return fmt.Errorf("extract: %.4f of the samples were rejected (limit %.4f, --max-reject-fraction); see %s: %w",
			res.RejectFraction, cfg.MaxRejectFraction, filepath.Join(cfg.Cache, "rejects.jsonl"), ErrTooManyRejects)
	}
	return nil
}

func weightsName(cfg Config) string {
	if cfg.Weights == "" {
		return clip.RandomWeights(cfg.Seed)
	}
	return filepath.Base(cfg.Weights)
}

// towerSource is the manifest's record of the tower: the config and the
// weights file's absolute path (or random:SEED), so that tune can write the
// tuned text tower out with this image tower as one full model.
func towerSource(cfg Config, configJSON []byte) (*store.TowerSource, error) {
	w := weightsName(cfg)
	if _, random, _ := clip.ParseRandomWeights(cfg.Weights); cfg.Weights != "" && !random {
		abs, err := filepath.Abs(cfg.Weights)
		if err != nil {
			return nil, fmt.Errorf("extract: weights %s: %w", cfg.Weights, err)
		}
		w = abs
	}
	return &store.TowerSource{Config: append(json.RawMessage(nil), configJSON...), Weights: w}, nil
}

// imageExts are the members tried for the image, in order.
var imageExts = [...]string{"jpg", "jpeg", "png", "webp"}

// prepare decodes j's image, makes its views and reads its label and
// caption; a problem sets j.reject instead.
func prepare(j *job, pre imageproc.Preprocessor, views int) {
	s := j.s
	j.s = nil
	j.key = s.Key
	var data []byte
	found := false
	for _, ext := range imageExts {
		if b, ok := s.Files[ext]; ok {
			data, found = b, true
			break
		}
	}
	if !found {
		j.reject = "no image member (.jpg, .jpeg, .png or .webp)"
		return
	}
	if len(data) == 0 {
		j.reject = "image member is empty (0 bytes)"
		return
	}
	label, err := labelOf(s)
	if err != nil {
		j.reject = err.Error()
		return
	}
	j.label = label
	j.caption = strings.TrimSpace(string(s.Files["txt"]))
	img, err := imageproc.DecodeRGB(data)
	if err != nil {
		j.reject = "decode: " + err.Error()
		return
	}
	j.pixels = make([][]float32, views)
	j.pixels[0] = pre.Transform(img, nil)
	for v := 1; v < views; v++ {
		rng := rand.New(rand.NewPCG(keySeed(s.Key), uint64(v)))
		j.pixels[v] = pre.TransformRandom(img, rng, nil)
	}
}

// keySeed hashes a key into a seed for its random views.
func keySeed(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()
}

// labelOf reads the label from .cls (decimal text), else from .json's
// category_id, else -1.
func labelOf(s *wds.Sample) (int32, error) {
	if b, ok := s.Files["cls"]; ok {
		t := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(t, 10, 32)
		if err != nil {
			return 0, fmt.Errorf(".cls %q is not an integer label", truncate(t, 40))
		}
		return int32(n), nil
	}
	if b, ok := s.Files["json"]; ok {
		var meta struct {
			CategoryID *int32 `json:"category_id"`
		}
		if err := json.Unmarshal(b, &meta); err == nil && meta.CategoryID != nil {
			return *meta.CategoryID, nil
		}
	}
	return -1, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// normalizeRows L2-normalises each row of x (N,D) in place.
func normalizeRows(x []float32, n, d int) {
	for i := 0; i < n; i++ {
		r := x[i*d : (i+1)*d]
		var ss float64
		for _, v := range r {
			ss += float64(v) * float64(v)
		}
		if ss == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(ss))
		for k := range r {
			r[k] *= inv
		}
	}
}
