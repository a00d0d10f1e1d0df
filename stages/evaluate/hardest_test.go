package evaluate

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/inat"
)

// TestHardestOrder: classes that all miss (top-1 and top-5 at 0, the tie
// that made the old table list ids 0, 1, 2 …) are ordered by the mean rank
// of their true class, highest first, and equal mean ranks by the margin of
// the best wrong class. Scores come from ScoreWith on hand-built similarities,
// so Rank and TrueSim are the scorer's own.
func TestHardestOrder(t *testing.T) {
	const K, D = 8, 8
	// Class k's embedding is the unit vector e_k. Each class has 2 images,
	// none of them nearest its own class; how far its class falls behind is
	// set per class.
	classes := make([]inat.Class, K)
	ids := make([]int, K)
	cls := make([]float32, K*D)
	for k := range classes {
		classes[k] = inat.Class{ID: 100 + k, Name: fmt.Sprintf("Genus%d species", k), Caption: "c", Genus: fmt.Sprintf("Genus%d", k)}
		ids[k] = 100 + k
		cls[k*D+k] = 1
	}
	// img = a·e_true + Σ b_j·e_j over "impostor" classes: the true class's rank
	// is 1 + the number of impostors with b_j > a.
	var img []float32
	var labels []int32
	add := func(k int, a float32, impostors map[int]float32) {
		v := make([]float32, D)
		v[k] = a
		for j, b := range impostors {
			v[j] = b
		}
		img = append(img, v...)
		labels = append(labels, int32(100+k))
	}
	// Classes 0..3: every image misses top-5 (6 impostors above the true
	// class), so top-1 = top-5 = 0 for all four: the old order's tie.
	// Class 2's true class ranks 8th (7 impostors), class 0's 7th, class 1
	// and 3 7th too but class 3 by a wider margin.
	six := func(k int, b float32) map[int]float32 {
		m := map[int]float32{}
		for j := 0; len(m) < 6; j++ {
			if j != k {
				m[j%K] = b
			}
		}
		return m
	}
	seven := func(k int, b float32) map[int]float32 {
		m := six(k, b)
		for j := 0; j < K; j++ {
			if j != k && m[j] == 0 {
				m[j] = b
				break
			}
		}
		return m
	}
	for r := 0; r < 2; r++ {
		add(0, 0.1, six(0, 0.2))
		add(1, 0.1, six(1, 0.2))
		add(2, 0.1, seven(2, 0.2))
		add(3, 0.1, six(3, 0.5))
	}
	// Classes 4..7 are right every time.
	for k := 4; k < K; k++ {
		add(k, 1, nil)
	}
	n := len(labels)
	NormalizeRows(img, n, D)
	s := Score(img, cls, n, K, D, labels, ids, 5)
	for i, r := range s.Rank {
		if r < 1 || r > K {
			t.Fatalf("image %d: rank %d", i, r)
		}
	}
	b := Analyse(s, classes, 4, 4)
	var got []int
	for _, h := range b.Hardest {
		got = append(got, h.ID)
		if h.Top1 != 0 || h.Top5 != 0 {
			t.Errorf("class %d: top-1 %.2f top-5 %.2f, the case wants every hardest class at 0/0", h.ID, h.Top1, h.Top5)
		}
	}
	// 102 (rank 8), then 103 (rank 7, wide margin), then 100 and 101 (rank
	// 7, equal margins: more images first, then lower id).
	if want := []int{102, 103, 100, 101}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hardest order %v, want %v (ranks/margins: %+v)", got, want, b.Hardest)
	}
	if b.Hardest[0].MeanRank != 8 || b.Hardest[1].MeanRank != 7 || !(b.Hardest[1].Margin > b.Hardest[2].Margin) {
		t.Errorf("mean ranks and margins: %+v", b.Hardest)
	}
	if b.HardestOrder == "" || !strings.Contains(Markdown(Result{Breakdown: b, Classes: K}), "mean rank") {
		t.Error("the report does not say how the hardest classes are ordered")
	}
}

// TestRankOf: rankOf agrees with topK's order (ties to the lower index) on
// random rows with ties.
func TestRankOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		k := 1 + rng.IntN(30)
		row := make([]float32, k)
		for j := range row {
			row[j] = float32(rng.IntN(5)) // many ties
		}
		idx, val := make([]int32, k), make([]float32, k)
		topK(row, idx, val)
		for pos, c := range idx {
			if r := rankOf(row, int(c)); r != int32(pos+1) {
				t.Fatalf("row %v: class %d is at position %d of topK, rankOf says %d", row, c, pos+1, r)
			}
		}
	}
}
