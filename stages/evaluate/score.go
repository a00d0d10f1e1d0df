package evaluate

import (
	"runtime"
	"sync"

	"github.com/litcache/litcache/internal/backend"
)

// Letters in shape comments: N images, K classes, E embedding dim, P top-k kept.

// Scores is the outcome of zero-shot classification of N images among K classes.
type Scores struct {
	// N images scored, K classes, TopK predictions kept per image.
	N, K, TopK int
	// Top1 and Top5 count images whose label is the best prediction, or among
	// the best min(5, TopK).
	Top1, Top5 int
	// Hits[j] counts images whose label is among the best j+1 predictions (len TopK).
	Hits []int
	// Unknown counts images whose label is none of the classes (always wrong).
	Unknown int
	// Target (N) is each image's class index (position in classIDs), -1 when unknown.
	Target []int32
	// Pred (N,P) holds class indices, best first; Sim (N,P) their cosine similarities.
	Pred []int32
	Sim  []float32
	// Rank (N) is the rank of each image's label among all K classes (1:
	// the best prediction; ties go to the lower class index, as in Pred), 0
	// when the label is unknown; TrueSim (N) the label's cosine similarity.
	// They measure how wrong a miss is, where top-k only says that it is.
	Rank    []int32
	TrueSim []float32
}

// Top1Acc is Top1/N (0 when N = 0).
func (s Scores) Top1Acc() float64 { return frac(s.Top1, s.N) }

// Top5Acc is Top5/N (0 when N = 0).
func (s Scores) Top5Acc() float64 { return frac(s.Top5, s.N) }

func frac(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ScoreChunk is the number of images whose similarity rows are materialised
// at once: chunk×K float32 (80 MB for K = 10,000).
const ScoreChunk = 2048

// Score classifies n images among k classes by cosine similarity on the CPU
// backend. img (N,E) and classEmb (K,E) must be L2-normalised rows; labels (N)
// are category ids and classIDs (K) the category id of each class row.
// topk predictions are kept per image (at least 1).
func Score(img, classEmb []float32, n, k, dim int, labels []int32, classIDs []int, topk int) Scores {
	return ScoreWith(backend.NewCPU(), img, classEmb, n, k, dim, labels, classIDs, topk)
}

// ScoreWith is Score on a given backend: similarities (chunk,K) = img·classEmbᵀ
// by the backend's Gemm, chunk by chunk, then a parallel top-k per row.
func ScoreWith(be backend.Backend, img, classEmb []float32, n, k, dim int, labels []int32, classIDs []int, topk int) Scores {
	if topk < 1 {
		topk = 1
	}
	if topk > k {
		topk = k
	}
	s := newScores(n, k, topk, labels, classIDs)
	s.Pred, s.Sim = make([]int32, n*topk), make([]float32, n*topk)
	s.Rank, s.TrueSim = make([]int32, n), make([]float32, n)
	if n == 0 || k == 0 {
		return s
	}

	cls := be.FromFloat32(classEmb[:k*dim], k, dim) // (K,E)
	defer be.Free(cls)
	chunk := min(ScoreChunk, n)
	sim := be.Zeros(chunk, k) // (chunk,K)
	defer be.Free(sim)
	var host []float32
	if _, cpu := be.(*backend.CPU); !cpu {
		host = make([]float32, chunk*k)
	}
	for r0 := 0; r0 < n; r0 += chunk {
		m := min(chunk, n-r0)
		a := be.FromFloat32(img[r0*dim:(r0+m)*dim], m, dim) // (m,E)
		out := sim
		if m != chunk { // the shorter last chunk
			out = be.Zeros(m, k)
		}
		be.Gemm(false, true, 1, a, cls, 0, out) // (m,K) = (m,E)·(K,E)ᵀ
		var rows []float32
		if _, cpu := be.(*backend.CPU); cpu {
			rows = backend.Data(out)[:m*k] // zero-copy: the rows are read before the next Gemm
		} else {
			rows = be.ToFloat32(out, host[:m*k])
		}
		topKRows(rows, m, k, topk, s.Pred[r0*topk:(r0+m)*topk], s.Sim[r0*topk:(r0+m)*topk],
			s.Target[r0:r0+m], s.Rank[r0:r0+m], s.TrueSim[r0:r0+m])
		be.Free(a)
		if m != chunk {
			be.Free(out) // after the rows, which may be its memory, are read
		}
	}

	s.countHits()
	return s
}

// ScorePredictions is Score for predictions made elsewhere (the GPU's
// top-k): pred (N,topk) class indices best first and sim their
// similarities. Rank and TrueSim need every similarity and stay nil.
func ScorePredictions(pred []int32, sim []float32, n, k int, labels []int32, classIDs []int, topk int) Scores {
	s := newScores(n, k, topk, labels, classIDs)
	s.Pred, s.Sim = pred, sim
	if n > 0 && topk > 0 {
		s.countHits()
	}
	return s
}

// newScores maps each image's label to its class index (Target).
func newScores(n, k, topk int, labels []int32, classIDs []int) Scores {
	s := Scores{N: n, K: k, TopK: topk, Hits: make([]int, topk), Target: make([]int32, n)}
	index := make(map[int]int32, k)
	for i, id := range classIDs {
		if _, dup := index[id]; !dup {
			index[id] = int32(i)
		}
	}
	for i := 0; i < n; i++ {
		t, ok := index[int(labels[i])]
		if !ok {
			t = -1
			s.Unknown++
		}
		s.Target[i] = t
	}
	return s
}

// countHits fills Hits, Top1 and Top5 from Pred and Target.
func (s *Scores) countHits() {
	topk := s.TopK
	for i := 0; i < s.N; i++ {
		t := s.Target[i]
		if t < 0 {
			continue
		}
		for j := 0; j < topk; j++ {
			if s.Pred[i*topk+j] == t {
				for h := j; h < topk; h++ {
					s.Hits[h]++
				}
				break
			}
		}
	}
	s.Top1 = s.Hits[0]
	s.Top5 = s.Hits[min(5, topk)-1]
}

// topKRows writes, for each of the m rows of sim (m,K), the indices and values
// of its p largest entries, best first (ties: lower index first), into
// pred (m,p) and val (m,p), and the rank and value of the row's target
// class (targets (m), -1: none) into rank (m) and trueSim (m). Rows are
// split over the machine's cores.
func topKRows(sim []float32, m, k, p int, pred []int32, val []float32, targets, rank []int32, trueSim []float32) {
	workers := min(runtime.GOMAXPROCS(0), m)
	var wg sync.WaitGroup
	per := (m + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, m)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				row := sim[i*k : (i+1)*k]
				topK(row, pred[i*p:(i+1)*p], val[i*p:(i+1)*p])
				if t := targets[i]; t >= 0 {
					rank[i], trueSim[i] = rankOf(row, int(t)), row[t]
				}
			}
		}()
	}
	wg.Wait()
}

// rankOf is the 1-based rank of row[t] in row, in topK's order: entries
// above it, and equal entries at lower indices, come first.
func rankOf(row []float32, t int) int32 {
	x := row[t]
	r := int32(1)
	for j, v := range row {
		if v > x || v == x && j < t {
			r++
		}
	}
	return r
}

// topK keeps the len(idx) largest entries of row in descending order by
// insertion into a short sorted list: for the small p of top-5, one compare
// against the current p-th best rejects almost every entry.
func topK(row []float32, idx []int32, val []float32) {
	p := len(idx)
	n := 0
	for j, x := range row {
		if n == p && !(x > val[p-1]) {
			continue
		}
		pos := n
		if n < p {
			n++
		} else {
			pos = p - 1
		}
		for pos > 0 && x > val[pos-1] {
			val[pos] = val[pos-1]
			idx[pos] = idx[pos-1]
			pos--
		}
		val[pos] = x
		idx[pos] = int32(j)
	}
}
