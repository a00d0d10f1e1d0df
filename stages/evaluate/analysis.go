package evaluate

import (
	"sort"
	"strconv"
	"strings"

	"github.com/litcache/litcache/internal/inat"
)

// RankAccuracy is the accuracy at one taxonomic rank: a prediction counts when
// its taxon at that rank is the label's (compared by full lineage from the
// kingdom down, so two genera that share a name in different families differ).
type RankAccuracy struct {
	Rank string  `json:"rank"`
	Top1 float64 `json:"top1"` // the best prediction's taxon is right
	Top5 float64 `json:"top5"` // some prediction among the best 5 has the right taxon
	// Taxa is how many distinct taxa of this rank the classes span.
	Taxa int `json:"taxa"`
}

// GroupAccuracy is top-1/top-5 over the images of one group (a supercategory).
type GroupAccuracy struct {
	Name    string  `json:"name"`
	Images  int     `json:"images"`
	Classes int     `json:"classes"`
	Top1    float64 `json:"top1"`
	Top5    float64 `json:"top5"`
}

// ClassAccuracy is one class's accuracy and what its images are most often
// mistaken for.
type ClassAccuracy struct {
	ID         int     `json:"id"`
	Name       string  `json:"name"`
	CommonName string  `json:"common_name,omitempty"`
	Images     int     `json:"images"`
	Top1       float64 `json:"top1"`
	Top5       float64 `json:"top5"`
	// MeanRank is the mean rank of the class among all K for its images (1:
	// always the best prediction): the hardest-classes order (HardestOrder).
	MeanRank float64 `json:"mean_rank"`
	// Margin is the mean cosine similarity by which the best wrong class
	// beats this one on its images (negative: this one usually wins); it
	// breaks ties of MeanRank.
	Margin float64 `json:"margin"`
	// MostConfusedID/Name is the wrong class predicted most often (ID -1: none).
	MostConfusedID   int    `json:"most_confused_id"`
	MostConfusedName string `json:"most_confused_name,omitempty"`
}

// HardestOrder says how Breakdown.Hardest is ordered, for the reports.
// Top-1 alone ties at 10,000 classes: with 10 val images a class has 11
// possible values, and a weak model puts most classes at 0/10.
const HardestOrder = "mean rank of the true class among all classes (highest first), ties broken by the mean margin of the best wrong class over the true one (largest first)"

// ConfusedPair counts images of class True predicted (top-1) as class Pred.
type ConfusedPair struct {
	TrueID   int    `json:"true_id"`
	TrueName string `json:"true_name"`
	PredID   int    `json:"pred_id"`
	PredName string `json:"pred_name"`
	Count    int    `json:"count"`
	// Fraction is Count over the true class's images.
	Fraction float64 `json:"fraction"`
	// SameGenus tells whether the two share a genus (a near miss).
	SameGenus bool `json:"same_genus"`
}

// Breakdown is the per-rank, per-supercategory and per-class analysis of Scores.
type Breakdown struct {
	Ranks           []RankAccuracy  `json:"ranks"`
	Supercategories []GroupAccuracy `json:"supercategories"`
	Hardest         []ClassAccuracy `json:"hardest_classes"`
	HardestOrder    string          `json:"hardest_order"`
	Confused        []ConfusedPair  `json:"confused_pairs"`
}

// lineage is c's taxon path down to rank ("Animalia/Chordata/Aves" for class).
func lineage(c inat.Class, rank string) string {
	var parts []string
	for _, r := range inat.Ranks {
		parts = append(parts, c.Taxon(r))
		if r == rank {
			break
		}
	}
	return strings.Join(parts, "/")
}

// Analyse breaks s down by rank (inat.Ranks; species is plain top-1), by the
// labels' supercategory, and per class: the hardest classes (lowest top-1,
// at most nHard) and the most frequent top-1 confusions (at most nPairs).
// classes are the K classes in the order of s's class indices.
func Analyse(s Scores, classes []inat.Class, nHard, nPairs int) Breakdown {
	var b Breakdown
	K, P := len(classes), s.TopK
	top5 := min(5, P)

	// Taxon ids per rank: classes with the same lineage share an id.
	taxon := make([][]int32, len(inat.Ranks))
	for ri, r := range inat.Ranks {
		ids := map[string]int32{}
		taxon[ri] = make([]int32, K)
		for k, c := range classes {
			key := lineage(c, r)
			if r == "species" {
				key += "#" + strconv.Itoa(c.ID) // a class is a species, even when names repeat
			}
			id, ok := ids[key]
			if !ok {
				id = int32(len(ids))
				ids[key] = id
			}
			taxon[ri][k] = id
		}
		b.Ranks = append(b.Ranks, RankAccuracy{Rank: r, Taxa: len(ids)})
	}
	for ri := range inat.Ranks {
		c1, c5 := 0, 0
		for i := 0; i < s.N; i++ {
			t := s.Target[i]
			if t < 0 {
				continue
			}
			want := taxon[ri][t]
			pred := s.Pred[i*P : (i+1)*P]
			if taxon[ri][pred[0]] == want {
				c1++
			}
			for _, p := range pred[:top5] {
				if taxon[ri][p] == want {
					c5++
					break
				}
			}
		}
		b.Ranks[ri].Top1 = frac(c1, s.N)
		b.Ranks[ri].Top5 = frac(c5, s.N)
	}

	// Per class: images, hits, and confusions.
	type classStat struct {
		n, c1, c5 int
		rank      float64 // sum of ranks
		margin    float64 // sum of margins over nm images
		nm        int
	}
	stat := make([]classStat, K)
	confusion := map[[2]int32]int{}
	for i := 0; i < s.N; i++ {
		t := s.Target[i]
		if t < 0 {
			continue
		}
		pred := s.Pred[i*P : (i+1)*P]
		st := &stat[t]
		st.n++
		st.rank += float64(trueRank(s, i))
		if m, ok := margin(s, i); ok {
			st.margin += m
			st.nm++
		}
		if pred[0] == t {
			st.c1++
		} else {
			confusion[[2]int32{t, pred[0]}]++
		}
		for _, p := range pred[:top5] {
			if p == t {
				st.c5++
				break
			}
		}
	}

	// Per supercategory of the label.
	groups := map[string]*GroupAccuracy{}
	var order []string
	for k, c := range classes {
		g, ok := groups[c.Supercategory]
		if !ok {
			g = &GroupAccuracy{Name: c.Supercategory}
			groups[c.Supercategory] = g
			order = append(order, c.Supercategory)
		}
		g.Classes++
		g.Images += stat[k].n
		g.Top1 += float64(stat[k].c1)
		g.Top5 += float64(stat[k].c5)
	}
	sort.Strings(order)
	for _, name := range order {
		g := groups[name]
		if g.Images == 0 {
			continue
		}
		g.Top1 /= float64(g.Images)
		g.Top5 /= float64(g.Images)
		b.Supercategories = append(b.Supercategories, *g)
	}

	// Most confused class per true class.
	worst := make([]int32, K)
	worstN := make([]int, K)
	for i := range worst {
		worst[i] = -1
	}
	pairs := make([]ConfusedPair, 0, len(confusion))
	for key, n := range confusion {
		t, p := key[0], key[1]
		if n > worstN[t] || (n == worstN[t] && p < worst[t]) {
			worst[t], worstN[t] = p, n
		}
		tc, pc := classes[t], classes[p]
		pairs = append(pairs, ConfusedPair{TrueID: tc.ID, TrueName: displayName(tc), PredID: pc.ID,
			PredName: displayName(pc), Count: n, Fraction: frac(n, stat[t].n),
			SameGenus: lineage(tc, "genus") == lineage(pc, "genus")})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].Count != pairs[j].Count {
			return pairs[i].Count > pairs[j].Count
		}
		if pairs[i].TrueID != pairs[j].TrueID {
			return pairs[i].TrueID < pairs[j].TrueID
		}
		return pairs[i].PredID < pairs[j].PredID
	})
	if len(pairs) > nPairs {
		pairs = pairs[:nPairs]
	}
	b.Confused = pairs

	var hard []ClassAccuracy
	for k, c := range classes {
		if stat[k].n == 0 {
			continue
		}
		ca := ClassAccuracy{ID: c.ID, Name: c.Name, CommonName: c.CommonName, Images: stat[k].n,
			Top1: frac(stat[k].c1, stat[k].n), Top5: frac(stat[k].c5, stat[k].n), MostConfusedID: -1,
			MeanRank: stat[k].rank / float64(stat[k].n)}
		if stat[k].nm > 0 {
			ca.Margin = stat[k].margin / float64(stat[k].nm)
		}
		if w := worst[k]; w >= 0 {
			ca.MostConfusedID = classes[w].ID
			ca.MostConfusedName = displayName(classes[w])
		}
		hard = append(hard, ca)
	}
	sort.SliceStable(hard, func(i, j int) bool {
		a, c := hard[i], hard[j]
		if a.MeanRank != c.MeanRank {
			return a.MeanRank > c.MeanRank
		}
		if a.Margin != c.Margin {
			return a.Margin > c.Margin
		}
		if a.Images != c.Images {
			return a.Images > c.Images
		}
		return a.ID < c.ID
	})
	if len(hard) > nHard {
		hard = hard[:nHard]
	}
	b.Hardest, b.HardestOrder = hard, HardestOrder
	return b
}

// trueRank is image i's label rank: s.Rank, or for Scores without it its
// position in Pred (TopK+1 when absent: a lower bound).
func trueRank(s Scores, i int) int {
	if s.Rank != nil {
		return int(s.Rank[i])
	}
	t, P := s.Target[i], s.TopK
	for j, p := range s.Pred[i*P : (i+1)*P] {
		if p == t {
			return j + 1
		}
	}
	return P + 1
}

// margin is the cosine similarity of image i's best wrong class minus its
// label's; ok is false when Scores lacks it (no TrueSim, or the label is the
// only prediction kept).
func margin(s Scores, i int) (float64, bool) {
	if s.TrueSim == nil || s.Sim == nil {
		return 0, false
	}
	t, P := s.Target[i], s.TopK
	for j, p := range s.Pred[i*P : (i+1)*P] {
		if p != t {
			return float64(s.Sim[i*P+j]) - float64(s.TrueSim[i]), true
		}
	}
	return 0, false
}

// displayName is "Common name (Scientific name)", or the scientific name alone.
func displayName(c inat.Class) string {
	if c.CommonName != "" && c.CommonName != c.Name {
		return c.CommonName + " (" + c.Name + ")"
	}
	return c.Name
}
