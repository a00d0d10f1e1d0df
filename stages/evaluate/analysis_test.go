package evaluate

import (
	"testing"

	"github.com/litcache/litcache/internal/inat"
)

// fourClasses: two Turdus (same genus), one other bird, one plant.
func fourClasses() []inat.Class {
	bird := func(id int, genus, ep, common string) inat.Class {
		return inat.Class{ID: id, Name: genus + " " + ep, CommonName: common, Caption: "c",
			Supercategory: "Birds", Kingdom: "Animalia", Phylum: "Chordata", Class: "Aves",
			Order: "Passeriformes", Family: "Turdidae", Genus: genus, SpecificEpithet: ep}
	}
	return []inat.Class{
		bird(1, "Turdus", "migratorius", "American Robin"),
		bird(2, "Turdus", "merula", "Eurasian Blackbird"),
		bird(3, "Catharus", "guttatus", "Hermit Thrush"),
		{ID: 4, Name: "Quercus alba", CommonName: "white oak", Caption: "c", Supercategory: "Plants",
			Kingdom: "Plantae", Phylum: "Tracheophyta", Class: "Magnoliopsida", Order: "Fagales",
			Family: "Fagaceae", Genus: "Quercus", SpecificEpithet: "alba"},
	}
}

func TestAnalyse(t *testing.T) {
	classes := fourClasses()
	// Hand-made predictions (TopK 2): targets and top-2 class indices.
	s := Scores{N: 5, K: 4, TopK: 2,
		Target: []int32{0, 0, 1, 2, 3},
		Pred: []int32{
			0, 1, // right
			1, 0, // wrong species, right genus; right in top-2
			0, 2, // wrong species, right genus; not in top-2
			3, 0, // wrong kingdom
			3, 1, // right
		}}
	b := Analyse(s, classes, 10, 10)
	want := map[string][2]float64{ // rank → top1, top5 (top-2 here)
		"kingdom": {4.0 / 5, 5.0 / 5},
		"family":  {4.0 / 5, 5.0 / 5},
		"genus":   {4.0 / 5, 4.0 / 5},
		"species": {2.0 / 5, 3.0 / 5},
	}
	for _, r := range b.Ranks {
		w, ok := want[r.Rank]
		if !ok {
			continue
		}
		if r.Top1 != w[0] || r.Top5 != w[1] {
			t.Errorf("rank %s: top1 %.2f top5 %.2f, want %.2f %.2f", r.Rank, r.Top1, r.Top5, w[0], w[1])
		}
	}
	if b.Ranks[len(b.Ranks)-1].Taxa != 4 || b.Ranks[0].Taxa != 2 {
		t.Errorf("taxa per rank: %+v", b.Ranks)
	}
	if len(b.Supercategories) != 2 || b.Supercategories[0].Name != "Birds" || b.Supercategories[0].Images != 4 ||
		b.Supercategories[0].Top1 != 0.25 || b.Supercategories[1].Top1 != 1 {
		t.Errorf("supercategories: %+v", b.Supercategories)
	}
	if len(b.Confused) != 3 {
		t.Fatalf("confused pairs: %+v", b.Confused)
	}
	for _, p := range b.Confused {
		if p.TrueID == 1 && (p.PredID != 2 || !p.SameGenus || p.Fraction != 0.5) {
			t.Errorf("pair %+v", p)
		}
		if p.TrueID == 3 && (p.PredID != 4 || p.SameGenus) {
			t.Errorf("pair %+v", p)
		}
	}
	// Hardest first: classes 2 and 3 at 0 top-1 (class 3 also 0 top-2... class 2 too), then 1, then 4.
	if b.Hardest[0].Top1 != 0 || b.Hardest[len(b.Hardest)-1].ID != 4 {
		t.Errorf("hardest: %+v", b.Hardest)
	}
	for _, h := range b.Hardest {
		if h.ID == 3 && h.MostConfusedID != 4 {
			t.Errorf("class 3 most confused with %d, want 4", h.MostConfusedID)
		}
		if h.ID == 4 && h.MostConfusedID != -1 {
			t.Errorf("class 4 never confused, got %d", h.MostConfusedID)
		}
	}
	if got := Analyse(s, classes, 1, 1); len(got.Hardest) != 1 || len(got.Confused) != 1 {
		t.Errorf("limits not applied: %d hardest, %d pairs", len(got.Hardest), len(got.Confused))
	}
}
