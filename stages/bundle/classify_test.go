package bundle_test

import (
	"math"
	"strings"
	"testing"

	"github.com/litcache/litcache/stages/bundle"
	"github.com/litcache/litcache/stages/bundle/bundletest"
)

func openTiny(t *testing.T) (*bundle.Bundle, bundletest.Fixture) {
	t.Helper()
	f := bundletest.Tiny(t, t.TempDir())
	b, err := bundle.Open(f.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, f
}

// Each fixture photo's class embedding is the tower's embedding of that very
// photo, so the whole path (decode, preprocess, tower, normalise, cosine,
// softmax) must put it first; a pipeline that differs from the one that made
// the embeddings (another crop, no normalisation, a transposed score) fails.
func TestEachPhotoIsItsClass(t *testing.T) {
	b, f := openTiny(t)
	if b.LogitScale() != f.LogitScale {
		t.Errorf("logit_scale %g, want %g", b.LogitScale(), f.LogitScale)
	}
	for i, jpg := range f.Photos {
		px, err := b.Prepare(jpg, bundle.FieldLimits())
		if err != nil {
			t.Fatal(err)
		}
		p := mustProbs(t, b, px, 1)
		want := referenceProbs(t, b, f.Path, px)
		for j := range want {
			// float32 cosines and softmax against a float64 recomputation: measured ≤ 3e-7.
			if math.Abs(float64(p[j])-want[j]) > 1e-5 {
				t.Fatalf("photo %d class %d: probability %g, recomputed %g", i, j, p[j], want[j])
			}
		}
		var sum float64
		for _, v := range p {
			sum += float64(v)
		}
		// float32 probabilities of 6 classes: measured |1-sum| < 1e-7.
		if math.Abs(sum-1) > 1e-5 {
			t.Errorf("photo %d: probabilities sum to %g", i, sum)
		}
		top, err := b.Top(p, 5, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(top) != 5 {
			t.Fatalf("photo %d: %d predictions, want 5", i, len(top))
		}
		wc := f.Classes[i]
		if top[0].Name != wc.Name || top[0].CommonName != wc.CommonName || *top[0].ID != wc.ID || top[0].Taxonomy != wc.Taxonomy {
			t.Errorf("photo %d: top-1 %+v, want class %s", i, top[0], wc.Name)
		}
		for k := 1; k < len(top); k++ {
			if top[k].Score > top[k-1].Score {
				t.Errorf("photo %d: predictions not sorted: %g after %g", i, top[k].Score, top[k-1].Score)
			}
		}
	}
}

// A batch gives each image the probabilities it gets alone.
func TestBatchEqualsSingles(t *testing.T) {
	b, f := openTiny(t)
	var px []float32
	var singles [][]float32
	for _, jpg := range f.Photos {
		p, err := b.Prepare(jpg, bundle.FieldLimits())
		if err != nil {
			t.Fatal(err)
		}
		px = append(px, p...)
		singles = append(singles, mustProbs(t, b, p, 1))
	}
	batch := mustProbs(t, b, px, len(f.Photos))
	K := len(f.Classes)
	for i, s := range singles {
		for j := range s {
			// Another batch shape changes GEMM blocking only: measured ≤ 2e-7.
			if d := math.Abs(float64(batch[i*K+j] - s[j])); d > 1e-5 {
				t.Fatalf("image %d class %d: batch %g, alone %g", i, j, batch[i*K+j], s[j])
			}
		}
	}
}

// Above species the probabilities of each taxon's species are summed
// (pybioclip's Rank), the taxonomy is cut at the rank and there is no common
// name or id.
func TestRankSumsSpecies(t *testing.T) {
	b, f := openTiny(t)
	px, err := b.Prepare(f.Photos[2], bundle.FieldLimits())
	if err != nil {
		t.Fatal(err)
	}
	p := mustProbs(t, b, px, 1)
	cases := []struct {
		rank string
		want map[string]float64
	}{
		{"genus", map[string]float64{"Junco": float64(p[0] + p[1]), "Melozone": float64(p[2] + p[3]), "Picoides": float64(p[4] + p[5])}},
		{"family", map[string]float64{"Passerellidae": float64(p[0] + p[1] + p[2] + p[3]), "Picidae": float64(p[4] + p[5])}},
		{"kingdom", map[string]float64{"Animalia": 1}},
	}
	for _, c := range cases {
		t.Run(c.rank, func(t *testing.T) {
			top, err := b.Top(p, 10, c.rank)
			if err != nil {
				t.Fatal(err)
			}
			if len(top) != len(c.want) {
				t.Fatalf("%d taxa, want %d: %+v", len(top), len(c.want), top)
			}
			for k, pr := range top {
				w, ok := c.want[pr.Name]
				if !ok {
					t.Fatalf("unexpected taxon %q", pr.Name)
				}
				// float64 sums of float32 values: measured 0 difference; 1e-6 covers the order.
				if math.Abs(pr.Score-w) > 1e-6 {
					t.Errorf("%s: score %g, want %g", pr.Name, pr.Score, w)
				}
				if pr.CommonName != "" || pr.ID != nil {
					t.Errorf("%s: common name %q / id %v above species", pr.Name, pr.CommonName, pr.ID)
				}
				if pr.Taxonomy.At(c.rank) != pr.Name || pr.Taxonomy.Species != "" {
					t.Errorf("%s: taxonomy %+v not cut at %s", pr.Name, pr.Taxonomy, c.rank)
				}
				if k > 0 && pr.Score > top[k-1].Score {
					t.Errorf("not sorted")
				}
			}
			if c.rank == "genus" && top[0].Name != "Melozone" {
				t.Errorf("top genus %s, want Melozone (photo of Melozone crissalis)", top[0].Name)
			}
		})
	}
	if _, err := b.Top(p, 5, "tribe"); err == nil || !strings.Contains(err.Error(), "tribe") {
		t.Errorf("rank tribe: error %v, want one naming it", err)
	}
}

// referenceProbs recomputes softmax(exp(logit_scale)·cos(tower(px), class)) in
// float64 from the tower and the class embeddings stored in the file.
func referenceProbs(t *testing.T, b *bundle.Bundle, path string, px []float32) []float64 {
	t.Helper()
	emb := b.Tower().Encode(px, 1)
	cls := readClassEmbeddings(t, path)
	E := len(emb)
	var n float64
	for _, v := range emb {
		n += float64(v) * float64(v)
	}
	n = math.Sqrt(n)
	K := len(cls) / E
	logits := make([]float64, K)
	mx := math.Inf(-1)
	for k := range K {
		var d float64
		for j := range E {
			d += float64(emb[j]) / n * float64(cls[k*E+j])
		}
		logits[k] = math.Exp(float64(b.LogitScale())) * d
		mx = math.Max(mx, logits[k])
	}
	var sum float64
	for k := range logits {
		logits[k] = math.Exp(logits[k] - mx)
		sum += logits[k]
	}
	for k := range logits {
		logits[k] /= sum
	}
	return logits
}

// mustProbs is b.Probabilities, failing the test on a (device) error.
func mustProbs(t testing.TB, b *bundle.Bundle, px []float32, n int) []float32 {
	t.Helper()
	p, err := b.Probabilities(px, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
