package tune

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/stages/evaluate"
	"github.com/litcache/litcache/store"
)

// A run on a CUDA backend trains with cuda.LiT (issue 11) instead of the
// generic Trainer: the training split's embeddings resident on the GPU,
// uploaded once, each batch gathered there by index, the captions' token
// rows resident too, the per-epoch scoring on the device. The job's Trainer
// stays on the CPU as the host mirror of the GPU's state: checkpoints,
// resume and final/ go through it unchanged (syncHost copies the masters,
// Adam's moments and the step count into it when it is needed).

// gpuRun is the GPU half of a run.
type gpuRun struct {
	be   *cuda.Backend
	lit  *cuda.LiT
	rows *cuda.DeviceRows     // image i's view v at row i·V+v
	caps *cuda.DeviceCaptions // TrainCaptions' token rows
	V    int
	o    TrainerOptions
	// the batch prepared for the next step while this one ran
	next     *cuda.LiTBatch
	nextIdx  []int
	synced   int // the step the host mirror was last copied at (-1: never)
	queued   bool
	valState *gpuVal
}

// gpuVal is what the per-epoch scoring keeps on the device.
type gpuVal struct {
	rows      *cuda.DeviceRows
	img       *cuda.DeviceEmbeddings // nil until computed (each epoch with a head)
	classCaps *cuda.DeviceCaptions
	valCaps   *cuda.DeviceCaptions
}

// cudaBackend is the run's CUDA backend, nil on the CPU.
func (c Config) cudaBackend() *cuda.Backend {
	g, _ := c.Backend.(*cuda.Backend)
	return g
}

// newGPURun builds the GPU trainer from the host trainer's state (fresh or
// restored from a checkpoint) and uploads the training rows and captions.
func newGPURun(j *job, be *cuda.Backend, tr *Trainer) (g *gpuRun, err error) {
	defer cuda.Recover(&err)
	in, cfg := j.in, j.cfg
	N, V, D := in.Train.Len(), in.Train.Views(), in.Train.Dim()
	mc := in.Model
	t := mc.Text
	m := cuda.LiTModel{Vocab: t.VocabSize, Context: t.ContextLength, Width: t.Width, Heads: t.Heads, Layers: t.Layers,
		Hidden: t.Hidden(), Embed: mc.EmbedDim, Act: mc.Act(), Eps: clip.LayerNormEps, ImageDim: D, Head: tr.Head() != nil}
	ps, m1, m2 := hostState(tr)
	o := cfg.optimOptions()
	g = &gpuRun{be: be, V: V, o: TrainerOptions{Dedup: cfg.Dedup, Trim: cfg.Trim}, synced: tr.step}
	defer func() {
		if err != nil {
			g.free()
		}
	}()
	if g.caps, err = deviceCaptions(be, tr.Text(), in.TrainCaptions); err != nil {
		return nil, fmt.Errorf("tune: training captions: %w", err)
	}
	// the arena for the longest step up front (trimmed: the longest caption, bucketed)
	maxT := in.Context
	if cfg.Trim {
		maxT = min((g.caps.Longest()+cuda.TokenBucket-1)/cuda.TokenBucket*cuda.TokenBucket, in.Context)
	}
	if g.lit, err = cuda.NewLiT(be, m, ps, cuda.LiTOptions{Batch: cfg.BatchSize, MaxTokens: maxT,
		Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay, ClipNorm: o.ClipNorm, Graphs: cfg.CUDAGraphs}); err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	if err := g.lit.SetState(m1, m2, tr.step); err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	if g.rows, err = uploadRows(be, in.Train, V, be.Precision() == cuda.F32); err != nil {
		return nil, fmt.Errorf("tune: training rows: %w", err)
	}
	fmt.Fprintf(j.log, "tune: %s: %d training rows (%d images × %d views) resident, %d captions; activations for %d × %d tokens\n",
		be.Name(), N*V, N, V, g.caps.K, cfg.BatchSize, maxT)
	return g, nil
}

// hostState lists the host trainer's tensors as the GPU trainer takes them
// (decay as its AdamW decides) with their moments.
func hostState(tr *Trainer) (ps []cuda.LiTParam, m, v [][]float32) {
	be := tr.be
	decay := map[string]bool{}
	for _, n := range tr.opt.Decaying() {
		decay[n] = true
	}
	mt, vt := tr.opt.Moments()
	for i, p := range tr.Params() {
		ps = append(ps, cuda.LiTParam{Name: p.Name, Shape: append([]int(nil), p.Value.Shape()...),
			Data: be.ToFloat32(p.Value, nil), Decay: decay[p.Name]})
		m = append(m, be.ToFloat32(mt[i], nil))
		v = append(v, be.ToFloat32(vt[i], nil))
	}
	return ps, m, v
}

// uploadRows copies views 0..V-1 of every image of src to the device, image
// i's view v at row i·V+v (an image with fewer views repeats them, as
// Source.Row does), in chunks.
func uploadRows(be *cuda.Backend, src Source, V int, f32 bool) (*cuda.DeviceRows, error) {
	N, D := src.Len(), src.Dim()
	// one pass in the parts' order: read ahead (a store source was opened
	// for training's random reads, which this path no longer makes)
	if a, ok := src.(interface{ Advise(store.Advice) error }); ok {
		_ = a.Advise(store.AdviseSequential)
	}
	rows, err := be.NewDeviceRows(N*V, D, f32)
	if err != nil {
		return nil, err
	}
	const chunk = 1 << 14
	buf := make([]float32, chunk*D)
	for lo := 0; lo < N*V; lo += chunk {
		n := min(chunk, N*V-lo)
		for r := 0; r < n; r++ {
			src.Row((lo+r)/V, (lo+r)%V, buf[r*D:(r+1)*D])
		}
		if err := rows.UploadF32(lo, buf[:n*D]); err != nil {
			rows.Free()
			return nil, err
		}
	}
	return rows, nil
}

// deviceCaptions uploads a caption set's token rows with their pooled
// positions (the host tower's rule).
func deviceCaptions(be *cuda.Backend, text *clip.TextTower, cs *CaptionSet) (*cuda.DeviceCaptions, error) {
	K := len(cs.tokens) / cs.T
	return be.NewDeviceCaptions(cs.tokens, K, cs.T, text.PoolPositions(cs.tokens, K, cs.T))
}

// plan is the step's batch for the images idx (with each image's view).
func (g *gpuRun) plan(j *job, idx []int, views []uint8, step int) *cuda.LiTBatch {
	B := len(idx)
	rows, capOf := make([]int32, B), make([]int32, B)
	for b, i := range idx {
		v := 0
		if views != nil {
			v = int(views[i]) % g.V
		}
		rows[b] = int32(i*g.V + v)
		capOf[b] = j.in.TrainCaptions.index[i]
	}
	bt := g.caps.PlanBatch(rows, capOf, g.o.Dedup, g.o.Trim)
	bt.LR = j.tr.sched.LR(step)
	return &bt
}

// step runs the step on images idx and, while the GPU works, prepares the
// batch of next (nil at an epoch's end). On a failure, kept reports that the
// last good step's state is still to be had: on the device (nothing of the
// failed step ran: the batch did not fit, the arena could not grow) or in
// the host mirror (synced at that step).
func (g *gpuRun) step(j *job, idx []int, views []uint8, next []int) (st StepStats, kept bool, err error) {
	tr := j.tr
	bt := g.next
	if bt == nil || !sameInts(g.nextIdx, idx) {
		bt = g.plan(j, idx, views, tr.step)
	}
	g.next = nil
	lastGood := func() bool { return g.lit.Intact() || g.synced == tr.step }
	if err := g.lit.Launch(g.rows, g.caps, *bt); err != nil {
		return st, lastGood(), err
	}
	if next != nil {
		g.next, g.nextIdx = g.plan(j, next, views, tr.step+1), next
	}
	s, err := g.lit.Wait()
	if err != nil {
		return st, lastGood(), err
	}
	st = StepStats{Step: tr.step, Loss: s.Loss, LR: bt.LR, LogitScale: s.LogitScale, GradNorm: s.GradNorm,
		Unique: bt.Distinct, Encoded: len(bt.Caps), T: bt.T}
	tr.step++
	return st, true, nil
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// syncHost copies the GPU's state into the host trainer: the masters into
// its tensors, the moments and step count into its AdamW.
func (g *gpuRun) syncHost(tr *Trainer) (err error) {
	defer cuda.Recover(&err)
	if g.synced == tr.step {
		return nil
	}
	ps, err := g.lit.Params()
	if err != nil {
		return err
	}
	m, v, err := g.lit.Moments()
	if err != nil {
		return err
	}
	be := tr.be
	mt, vt := tr.opt.Moments()
	for i, p := range tr.Params() {
		if p.Name != ps[i].Name {
			return fmt.Errorf("tune: GPU trainer's tensor %d is %s, the host's %s", i, ps[i].Name, p.Name)
		}
		copyInto(be, p.Value, ps[i].Data)
		copyInto(be, mt[i], m[i])
		copyInto(be, vt[i], v[i])
	}
	tr.opt.SetSteps(g.lit.Steps())
	g.synced = tr.step
	return nil
}

func copyInto(be backend.Backend, dst backend.Tensor, data []float32) {
	t := be.FromFloat32(data, dst.Shape()...)
	be.Copy(dst, t)
	be.Free(t)
}

func (g *gpuRun) free() {
	if g == nil {
		return
	}
	if v := g.valState; v != nil {
		v.rows.Free()
		v.img.Free()
		v.classCaps.Free()
		v.valCaps.Free()
	}
	g.lit.Free()
	g.rows.Free()
	g.caps.Free()
}

// gpuEncoder is the GPU tower as evaluate's TextEncoder (a template
// classifier); a device failure panics with the op's error, which evalVal
// recovers.
type gpuEncoder struct {
	lit  *cuda.LiT
	text *clip.TextTower // the host tower's pooling rule
}

// Encode embeds token rows ids (B,T) with the GPU tower, normalised.
func (e gpuEncoder) Encode(ids []int32, B, T int) []float32 {
	emb, err := e.lit.Encode(ids, B, T, e.text.PoolPositions(ids, B, T))
	if err != nil {
		panic(err)
	}
	return emb
}

// evalVal is job.evalVal on the device: zero-shot top-1/top-5 of the val
// images among the classes, and the val InfoNCE loss over batches of the
// training batch size in the CPU path's fixed shuffled order.
func (g *gpuRun) evalVal(j *job) (top1, top5, valLoss float64, err error) {
	defer cuda.Recover(&err)
	in := j.in
	val, K := in.Val, len(in.Classes)
	be := g.be
	vs := g.valState
	if vs == nil {
		vs = &gpuVal{}
		g.valState = vs
		if vs.rows, err = uploadRows(be, val, 1, be.Precision() == cuda.F32); err != nil { // view 0, as the CPU path scores
			return 0, 0, 0, fmt.Errorf("tune: val rows: %w", err)
		}
		if vs.valCaps, err = deviceCaptions(be, j.tr.Text(), in.ValCaptions); err != nil {
			return 0, 0, 0, fmt.Errorf("tune: val captions: %w", err)
		}
		if in.Classifier == nil {
			cs := &CaptionSet{tokens: in.ClassTokens, T: in.Context}
			if vs.classCaps, err = deviceCaptions(be, j.tr.Text(), cs); err != nil {
				return 0, 0, 0, fmt.Errorf("tune: class captions: %w", err)
			}
		}
	}
	if vs.img == nil || g.lit.Model().Head { // the head changes each epoch; the features alone do not
		vs.img.Free()
		if vs.img, err = g.lit.ImageEmbeddings(vs.rows); err != nil {
			return 0, 0, 0, err
		}
	}
	var cls *cuda.DeviceEmbeddings
	if in.Classifier != nil {
		host, err := in.Classifier(gpuEncoder{lit: g.lit, text: j.tr.Text()})
		if err != nil {
			return 0, 0, 0, fmt.Errorf("tune: zero-shot classifier: %w", err)
		}
		if cls, err = g.lit.UploadEmbeddings(host, K); err != nil {
			return 0, 0, 0, err
		}
	} else if cls, err = g.lit.EncodeCaptions(vs.classCaps, iota32(K)); err != nil {
		return 0, 0, 0, err
	}
	defer cls.Free()
	P := min(5, K)
	pred, sims, err := g.lit.ZeroShot(vs.img, cls, P)
	if err != nil {
		return 0, 0, 0, err
	}
	N := val.Len()
	labels := make([]int32, N)
	for i := range labels {
		labels[i] = val.Label(i)
	}
	sc := evaluate.ScorePredictions(pred, sims, N, K, labels, evaluate.ClassIDs(in.Classes), P)
	top1, top5 = sc.Top1Acc(), sc.Top5Acc()

	// ---- val loss: the captions used, encoded once ----
	caps := in.ValCaptions
	used := map[int32]int32{}
	var rows []int32
	txtOf := make([]int32, N)
	for i, k := range caps.index {
		u, ok := used[k]
		if !ok {
			u = int32(len(rows))
			used[k] = u
			rows = append(rows, k)
		}
		txtOf[i] = u
	}
	txt, err := g.lit.EncodeCaptions(vs.valCaps, rows)
	if err != nil {
		return top1, top5, 0, err
	}
	defer txt.Free()
	Bv := min(j.cfg.BatchSize, N)
	if Bv < 2 {
		return top1, top5, math.NaN(), nil
	}
	order := rand.New(rand.NewPCG(0x7a1, 0)).Perm(N)
	valLoss, err = g.lit.ValLoss(vs.img, txt, txtOf, order, Bv)
	return top1, top5, valLoss, err
}

func iota32(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// trainStep runs step k of the epoch's order perm: on the GPU when there is
// one (preparing step k+1's batch while it runs), else on the host trainer
// with a batch filled from the source into img and ids. kept reports, for a
// failed step, that the weights are still the last good step's.
func (j *job) trainStep(perm []int, views []uint8, k int, img []float32, ids []int32) (st StepStats, kept bool, err error) {
	B := j.cfg.BatchSize
	idx := perm[k*B : (k+1)*B]
	if j.gpu != nil {
		var next []int
		if (k+2)*B <= len(perm) {
			next = perm[(k+1)*B : (k+2)*B]
		}
		return j.gpu.step(j, idx, views, next)
	}
	j.batch(idx, views, img, ids)
	return j.tr.Step(img, ids, B, j.in.Context), true, nil
}

// stepFailed ends a run whose step failed: with the weights still the last
// good step's (nothing of the failed step ran), a checkpoint of that step
// first; else the device's state is lost and the latest checkpoint on disk
// is where to resume.
func (j *job) stepFailed(err error, kept bool, save func(bool) error) error {
	step := j.tr.step
	if kept {
		if serr := save(false); serr != nil {
			return fmt.Errorf("tune: step %d failed: %w (and the checkpoint of step %d failed too: %v)", step, err, step, serr)
		}
		dir, _ := LatestCheckpoint(j.cfg.Out)
		return fmt.Errorf("tune: step %d failed: %w; the last good step's checkpoint is %s (continue with --resume)", step, err, dir)
	}
	dir, _ := LatestCheckpoint(j.cfg.Out)
	if dir == "" {
		dir = "none yet"
	}
	return fmt.Errorf("tune: step %d failed: %w; the GPU's state after it is lost: the latest checkpoint is %s", step, err, dir)
}

// evalFailed ends a run whose end-of-epoch evaluation failed (a device
// out of memory for the scores, say): the epoch's training is kept in a
// checkpoint, which a resume continues from by evaluating the epoch again.
func (j *job) evalFailed(epoch int, err error, save func(bool) error) error {
	if serr := save(false); serr != nil {
		return fmt.Errorf("tune: epoch %d's evaluation failed: %w (and its checkpoint too: %v)", epoch+1, err, serr)
	}
	dir, _ := LatestCheckpoint(j.cfg.Out)
	return fmt.Errorf("tune: epoch %d's evaluation failed: %w; its training is in checkpoint %s (--resume evaluates it again)", epoch+1, err, dir)
}

// syncHost brings the host trainer up to the GPU's state (a no-op on the CPU).
func (j *job) syncHost() error {
	if j.gpu == nil {
		return nil
	}
	return j.gpu.syncHost(j.tr)
}

// logitScale is the current log temperature.
func (j *job) logitScale() float64 {
	if j.gpu != nil {
		if v, err := j.gpu.lit.LogitScale(); err == nil {
			return float64(v)
		}
	}
	return float64(j.tr.LogitScale())
}

// checkDevice refuses settings the backend cannot run.
func (c Config) checkDevice() error {
	g := c.cudaBackend()
	switch {
	case g == nil && c.Precision == PrecisionBF16:
		return fmt.Errorf("tune: --precision bf16 needs the GPU (--device cuda); the CPU trains in float32")
	case g == nil && c.CUDAGraphs:
		return fmt.Errorf("tune: --cuda-graphs needs the GPU (--device cuda)")
	case g != nil && c.Precision == PrecisionBF16 && g.Precision() != cuda.BF16,
		g != nil && c.Precision == PrecisionFP32 && g.Precision() != cuda.F32:
		return fmt.Errorf("tune: --precision %s on a %s backend", c.Precision, g.Precision())
	}
	return nil
}
