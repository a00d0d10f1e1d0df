package evaluate

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/litcache/litcache/internal/backend"
)

func randUnit(rng *rand.Rand, n, dim int) []float32 {
	x := make([]float32, n*dim)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := 0; i < n; i++ {
		row := x[i*dim : (i+1)*dim]
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		for j := range row {
			row[j] = float32(float64(row[j]) / math.Sqrt(s))
		}
	}
	return x
}

// bruteTopK ranks all classes by a float64 dot product.
func bruteTopK(img, cls []float32, i, k, dim, p int) []int32 {
	type kv struct {
		j int
		s float64
	}
	all := make([]kv, k)
	for j := 0; j < k; j++ {
		var s float64
		for d := 0; d < dim; d++ {
			s += float64(img[i*dim+d]) * float64(cls[j*dim+d])
		}
		all[j] = kv{j, s}
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].s > all[b].s })
	out := make([]int32, p)
	for q := range out {
		out[q] = int32(all[q].j)
	}
	return out
}

func TestScoreMatchesBruteForce(t *testing.T) {
	cases := []struct {
		name            string
		n, k, dim, topk int
		blas            bool
	}{
		{"small", 50, 7, 8, 5, false},
		{"topk>k", 20, 3, 8, 5, false},
		{"top1", 40, 30, 16, 1, false},
		{"two chunks", ScoreChunk + 37, 11, 12, 5, false},
		{"blas if present", 300, 64, 32, 5, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.n)))
			img := randUnit(rng, tc.n, tc.dim)
			cls := randUnit(rng, tc.k, tc.dim)
			ids := make([]int, tc.k)
			for j := range ids {
				ids[j] = 1000 + 3*j
			}
			labels := make([]int32, tc.n)
			for i := range labels {
				labels[i] = int32(ids[rng.IntN(tc.k)])
			}
			be := backend.NewCPUWith(backend.CPUOptions{DisableBLAS: !tc.blas})
			s := ScoreWith(be, img, cls, tc.n, tc.k, tc.dim, labels, ids, tc.topk)
			p := min(tc.topk, tc.k)
			if s.TopK != p || len(s.Pred) != tc.n*p {
				t.Fatalf("TopK %d, len(Pred) %d; want %d, %d", s.TopK, len(s.Pred), p, tc.n*p)
			}
			top1, top5 := 0, 0
			for i := 0; i < tc.n; i++ {
				want := bruteTopK(img, cls, i, tc.k, tc.dim, p)
				got := s.Pred[i*p : (i+1)*p]
				for q := range want {
					if got[q] != want[q] {
						// float32 vs float64 rounding may swap near-equal neighbours.
						a := s.Sim[i*p+q]
						var b float32
						for d := 0; d < tc.dim; d++ {
							b += img[i*tc.dim+d] * cls[int(want[q])*tc.dim+d]
						}
						if math.Abs(float64(a-b)) > 1e-5 {
							t.Fatalf("image %d rank %d: class %d (%.6f), want %d (%.6f)", i, q, got[q], a, want[q], b)
						}
					}
				}
				for q := 1; q < p; q++ {
					if s.Sim[i*p+q] > s.Sim[i*p+q-1] {
						t.Fatalf("image %d: similarities not descending: %v", i, s.Sim[i*p:(i+1)*p])
					}
				}
				target := int32((int(labels[i]) - 1000) / 3)
				if s.Target[i] != target {
					t.Fatalf("image %d: target %d, want %d", i, s.Target[i], target)
				}
				if got[0] == target {
					top1++
				}
				for _, g := range got[:min(5, p)] {
					if g == target {
						top5++
					}
				}
			}
			if s.Top1 != top1 || s.Top5 != top5 {
				t.Fatalf("Top1/Top5 %d/%d, want %d/%d", s.Top1, s.Top5, top1, top5)
			}
			if p >= 5 && (s.Hits[0] != top1 || s.Hits[4] != top5) {
				t.Fatalf("Hits %v inconsistent with %d/%d", s.Hits, top1, top5)
			}
		})
	}
}

func TestScoreUnknownLabelsAndEmpty(t *testing.T) {
	be := backend.NewCPU()
	// Two classes on the axes; image 0 is class 10, image 1 has an unknown label.
	cls := []float32{1, 0, 0, 1}
	img := []float32{1, 0, 0, 1}
	s := ScoreWith(be, img, cls, 2, 2, 2, []int32{10, 99}, []int{10, 20}, 5)
	if s.Unknown != 1 || s.Target[1] != -1 || s.Top1 != 1 || s.TopK != 2 {
		t.Fatalf("got %+v", s)
	}
	if s.Top1Acc() != 0.5 {
		t.Fatalf("Top1Acc %v, want 0.5 (unknown labels count as wrong)", s.Top1Acc())
	}
	e := ScoreWith(be, nil, cls, 0, 2, 2, nil, []int{10, 20}, 5)
	if e.N != 0 || e.Top1Acc() != 0 {
		t.Fatalf("empty: %+v", e)
	}
}

func TestTopKTies(t *testing.T) {
	row := []float32{0.5, 0.9, 0.5, 0.9, 0.1}
	idx := make([]int32, 3)
	val := make([]float32, 3)
	topK(row, idx, val)
	want := []int32{1, 3, 0} // equal values: lower index first
	for i := range want {
		if idx[i] != want[i] {
			t.Fatalf("topK = %v, want %v", idx, want)
		}
	}
}

func BenchmarkScore(b *testing.B) {
	const n, k, dim = 4096, 1000, 256
	rng := rand.New(rand.NewPCG(1, 2))
	img := randUnit(rng, n, dim)
	cls := randUnit(rng, k, dim)
	ids := make([]int, k)
	for j := range ids {
		ids[j] = j
	}
	labels := make([]int32, n)
	be := backend.NewCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ScoreWith(be, img, cls, n, k, dim, labels, ids, 5)
	}
}
