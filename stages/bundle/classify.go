package bundle

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
)

// Prediction is one ranked answer for a photo: a class (at rank species) or a
// taxon (at a higher rank) with its probability.
type Prediction struct {
	// Name is the scientific name: the binomial at rank species, else the
	// taxon at the rank.
	Name string `json:"name"`
	// CommonName is the class's common name (species only; "" above).
	CommonName string `json:"common_name"`
	// Score is the probability, summed over the taxon's species above rank species.
	Score float64 `json:"score"`
	// ID is the class id (species only).
	ID *int `json:"id,omitempty"`
	// Taxonomy is the path from the kingdom down to the rank.
	Taxonomy Taxonomy `json:"taxonomy"`
}

// Probabilities runs n preprocessed images (n,3,S,S) through the tower and
// returns each image's class probabilities (n,K): the softmax of
// exp(logit_scale) · cosine(image, class), as CLIP's zero-shot classifier
// (and pybioclip) score. A device error (a GPU op failing) is returned,
// not raised.
func (b *Bundle) Probabilities(pixels []float32, n int) (_ []float32, err error) {
	defer cuda.Recover(&err)
	emb := b.tower.Encode(pixels, n) // (n,D)
	D := len(emb) / n
	be := b.be
	x := be.FromFloat32(emb, n, D)
	defer be.Free(x)
	be.L2Normalize(x, x)
	if b.headW != nil {
		// tune --image-head trained a map on the normalised image side;
		// evaluate applies it the same way before scoring.
		h := be.Zeros(n, b.E)
		defer be.Free(h)
		be.Linear(h, x, b.headW, b.headB, backend.ActNone)
		be.L2Normalize(h, h)
		x = h
	}
	logits := be.Zeros(n, b.K)
	defer be.Free(logits)
	be.Linear(logits, x, b.cls, nil, backend.ActNone) // (n,K) cosines
	out := be.ToFloat32(logits, nil)
	for i := 0; i < n; i++ {
		softmax(out[i*b.K:(i+1)*b.K], b.scale)
	}
	return out, nil
}

// softmax replaces cos (K) by softmax(scale·cos) in place, in float64.
func softmax(cos []float32, scale float32) {
	m := math.Inf(-1)
	for _, c := range cos {
		m = math.Max(m, float64(scale*c))
	}
	var sum float64
	e := make([]float64, len(cos))
	for i, c := range cos {
		e[i] = math.Exp(float64(scale*c) - m)
		sum += e[i]
	}
	for i := range cos {
		cos[i] = float32(e[i] / sum)
	}
}

// CheckRank reports whether rank is one Top accepts.
func (b *Bundle) CheckRank(rank string) error {
	if rank == "" || rank == "species" {
		return nil
	}
	g, ok := b.groups[rank]
	if !ok {
		return fmt.Errorf("rank %q: want one of %s", rank, RankNames())
	}
	if g.missing != "" {
		return fmt.Errorf("rank %s: %s", rank, g.missing)
	}
	return nil
}

// Top returns the k best predictions of one image's probabilities (K) at
// rank ("" = species), best first; ties keep the class order. Above species,
// the probabilities of the species of each taxon are summed (pybioclip's
// Rank): the answer "genus Junco, 0.93" is the chance that the photo shows
// some Junco.
func (b *Bundle) Top(probs []float32, k int, rank string) ([]Prediction, error) {
	if len(probs) != b.K {
		return nil, fmt.Errorf("bundle: %d probabilities for %d classes", len(probs), b.K)
	}
	if err := b.CheckRank(rank); err != nil {
		return nil, err
	}
	if rank == "" || rank == "species" {
		idx := topIndices(probs64(probs), k)
		out := make([]Prediction, len(idx))
		for i, j := range idx {
			c := b.Meta.Classes[j]
			id := c.ID
			out[i] = Prediction{Name: c.Name, CommonName: c.CommonName, Score: float64(probs[j]), ID: &id, Taxonomy: c.Taxonomy}
		}
		return out, nil
	}
	g := b.groups[rank]
	sums := make([]float64, len(g.taxa))
	for j, p := range probs {
		sums[g.of[j]] += float64(p)
	}
	idx := topIndices(sums, k)
	out := make([]Prediction, len(idx))
	for i, t := range idx {
		tx := g.taxa[t]
		out[i] = Prediction{Name: tx.At(rank), Score: sums[t], Taxonomy: tx}
	}
	return out, nil
}

func probs64(p []float32) []float64 {
	out := make([]float64, len(p))
	for i, v := range p {
		out[i] = float64(v)
	}
	return out
}

// topIndices returns the indices of the k largest values, largest first,
// ties in index order.
func topIndices(v []float64, k int) []int {
	k = min(max(k, 0), len(v))
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, c int) bool { return v[idx[a]] > v[idx[c]] })
	return idx[:k]
}

// grouping maps each class to its taxon at one rank.
type grouping struct {
	taxa []Taxonomy // distinct taxa, in order of first appearance
	of   []int      // class → taxon index
	// missing explains why the rank cannot be used ("" when it can).
	missing string
}

// buildGroupings groups the classes at every rank above species. A taxon is
// its whole path down to the rank, so two genera of one name in different
// families stay apart.
func buildGroupings(classes []Class) map[string]*grouping {
	out := map[string]*grouping{}
	for _, rank := range Ranks[:len(Ranks)-1] {
		g := &grouping{of: make([]int, len(classes))}
		index := map[Taxonomy]int{}
		for j, c := range classes {
			if g.missing == "" && strings.TrimSpace(c.Taxonomy.At(rank)) == "" {
				g.missing = fmt.Sprintf("class %d (%s) has no %s in the bundle", c.ID, c.Name, rank)
			}
			t := c.Taxonomy.Upto(rank)
			i, ok := index[t]
			if !ok {
				i = len(g.taxa)
				index[t] = i
				g.taxa = append(g.taxa, t)
			}
			g.of[j] = i
		}
		out[rank] = g
	}
	return out
}
