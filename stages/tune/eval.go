package tune

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/litcache/litcache/stages/evaluate"
)

// evalBatch is how many captions the text tower encodes at once in evaluation.
const evalBatch = 256

// evalVal scores the val source after an epoch: zero-shot top-1/top-5 of the
// val images among the classes (evaluate.Score), and the val InfoNCE loss
// over batches of the training batch size in a fixed shuffled order (a sorted
// cache would otherwise put one class in a batch).
func (j *job) evalVal() (top1, top5, valLoss float64, err error) {
	if j.gpu != nil {
		return j.gpu.evalVal(j)
	}
	in := j.in
	val := in.Val
	N, E, K := val.Len(), in.Model.EmbedDim, len(in.Classes)
	img := j.valFeatures() // (N,E) normalised

	var classEmb []float32 // (K,E) normalised
	if in.Classifier != nil {
		if classEmb, err = in.Classifier(j.tr.Text()); err != nil {
			return 0, 0, 0, fmt.Errorf("tune: zero-shot classifier: %w", err)
		}
	} else {
		all := make([]int32, K)
		for k := range all {
			all[k] = int32(k)
		}
		classEmb = j.encodeNormalized(in.ClassTokens, all)
	}
	labels := make([]int32, N)
	for i := range labels {
		labels[i] = val.Label(i)
	}
	classIDs := make([]int, K)
	for k, c := range in.Classes {
		classIDs[k] = c.ID
	}
	sc := evaluate.Score(img, classEmb, N, K, E, labels, classIDs, min(5, K))
	top1, top5 = sc.Top1Acc(), sc.Top5Acc()

	// ---- val loss: symmetric InfoNCE as in training, without gradients ----
	caps := in.ValCaptions
	used := map[int32]int{} // caption row → position in capEmb
	var rows []int32
	for _, k := range caps.index {
		if _, ok := used[k]; !ok {
			used[k] = len(rows)
			rows = append(rows, k)
		}
	}
	capEmb := j.encodeNormalized(caps.tokens, rows) // (R,E)
	Bv := min(j.cfg.BatchSize, N)
	if Bv < 2 {
		return top1, top5, math.NaN(), nil
	}
	order := rand.New(rand.NewPCG(0x7a1, 0)).Perm(N)
	be := j.be
	scale := float32(math.Exp(float64(j.tr.LogitScale())))
	ib, tb := make([]float32, Bv*E), make([]float32, Bv*E)
	logits := be.Zeros(Bv, Bv)
	defer be.Free(logits)
	targets := make([]int32, Bv)
	for b := range targets {
		targets[b] = int32(b)
	}
	var sum float64
	nb := N / Bv
	for k := 0; k < nb; k++ {
		for b, i := range order[k*Bv : (k+1)*Bv] {
			copy(ib[b*E:(b+1)*E], img[i*E:(i+1)*E])
			r := used[caps.index[i]]
			copy(tb[b*E:(b+1)*E], capEmb[r*E:(r+1)*E])
		}
		it, tt := be.FromFloat32(ib, Bv, E), be.FromFloat32(tb, Bv, E)
		be.Gemm(false, true, scale, it, tt, 0, logits) // image → text
		l1 := be.CrossEntropy(logits, targets, nil, 1)
		be.Gemm(false, true, scale, tt, it, 0, logits) // text → image
		l2 := be.CrossEntropy(logits, targets, nil, 1)
		be.Free(it)
		be.Free(tt)
		sum += (float64(l1) + float64(l2)) / 2
	}
	return top1, top5, sum / float64(nb), nil
}

// valFeatures are the val images' view-0 embeddings through the image head
// (when trained), L2-normalised: (N,E). Without a head they never change and
// are computed once.
func (j *job) valFeatures() []float32 {
	if j.valImg != nil {
		return j.valImg
	}
	val, be := j.in.Val, j.be
	N, D := val.Len(), val.Dim()
	raw := make([]float32, N*D)
	for i := 0; i < N; i++ {
		val.Row(i, 0, raw[i*D:(i+1)*D])
	}
	out := raw
	if h := j.tr.Head(); h != nil {
		E := h.Out()
		out = make([]float32, N*E)
		for lo := 0; lo < N; lo += evalBatch {
			n := min(evalBatch, N-lo)
			x := be.FromFloat32(raw[lo*D:(lo+n)*D], n, D)
			y := h.Forward(x, n)
			be.ToFloat32(y, out[lo*E:(lo+n)*E])
			be.Free(x)
			be.Free(y)
		}
	}
	evaluate.NormalizeRows(out, N, len(out)/N)
	if j.tr.Head() == nil {
		j.valImg = out
	}
	return out
}

// encodeNormalized encodes the caption rows of tokens (·,T) listed in rows
// with the text tower, each batch trimmed to its longest caption, and returns
// the L2-normalised embeddings (len(rows),E).
func (j *job) encodeNormalized(tokens []int32, rows []int32) []float32 {
	T, E := j.in.Context, j.in.Model.EmbedDim
	out := make([]float32, len(rows)*E)
	ids := make([]int32, 0, evalBatch*T)
	for lo := 0; lo < len(rows); lo += evalBatch {
		n := min(evalBatch, len(rows)-lo)
		Tt := 1
		for _, r := range rows[lo : lo+n] {
			row := tokens[int(r)*T : int(r+1)*T]
			for t := T - 1; t >= Tt; t-- {
				if row[t] != 0 {
					Tt = t + 1
					break
				}
			}
		}
		ids = ids[:0]
		for _, r := range rows[lo : lo+n] {
			ids = append(ids, tokens[int(r)*T:int(r)*T+Tt]...)
		}
		emb := j.tr.Text().Encode(ids, n, Tt)
		copy(out[lo*E:(lo+n)*E], emb)
	}
	evaluate.NormalizeRows(out, len(rows), E)
	return out
}
