package caption

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/testutil"
)

// recipeCSV has five categories: two share a common name, two share a
// genus and epithet's first letters, so recipes differ in what they keep
// apart.
const recipeCSV = `id,name,common_name,supercategory,kingdom,phylum,class,order,family,genus,specific_epithet,image_dir_name
1,Junco hyemalis,Dark-eyed Junco,Birds,Animalia,Chordata,Aves,Passeriformes,Passerellidae,Junco,hyemalis,00001_junco
2,Junco phaeonotus,Yellow-eyed Junco,Birds,Animalia,Chordata,Aves,Passeriformes,Passerellidae,Junco,phaeonotus,00002_junco
3,Quercus alba,Oak,Plants,Plantae,Tracheophyta,Magnoliopsida,Fagales,Fagaceae,Quercus,alba,00003_oak
4,Quercus rubra,Oak,Plants,Plantae,Tracheophyta,Magnoliopsida,Fagales,Fagaceae,Quercus,rubra,00004_oak
5,Quercus robur,Oak,Plants,Plantae,Tracheophyta,Magnoliopsida,Fagales,Fagaceae,Quercus,robur,00005_oak
`

// TestRecipes: one classes.json per recipe, each with its recipe beside it,
// and the table counts the classes each recipe leaves indistinct: the
// common name alone merges the three oaks, the paper's template and the
// binomial keep all five apart, and "auto" finds the smallest such fields.
func TestRecipes(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "categories.csv")
	os.WriteFile(csv, []byte(recipeCSV), 0o644)
	cfg := DefaultConfig()
	cfg.Categories, cfg.Out, cfg.ClassesOnly, cfg.Log = csv, filepath.Join(dir, "recipes"), true, &bytes.Buffer{}
	list, err := ParseRecipes("paper; {name};{common_name};{genus} {common_name};auto")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Recipes(cfg, list)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		folder, template string
		distinct         int
		indistinct       int
		largest          int
	}{
		{"paper", inat.DefaultTemplate, 5, 0, 1},
		{"name", "{name}", 5, 0, 1},
		{"common_name", "{common_name}", 3, 3, 3},
		{"genus-common_name", "{genus} {common_name}", 3, 3, 3},
		{"auto", "A photo of the {name}", 5, 0, 1}, // the binomial alone tells these apart
	}
	if len(rs) != len(want) {
		t.Fatalf("%d recipes, want %d", len(rs), len(want))
	}
	for i, w := range want {
		r := rs[i]
		if filepath.Base(r.Dir) != w.folder || r.Template != w.template || r.DistinctCaptions != w.distinct ||
			r.Indistinct != w.indistinct || r.Largest != w.largest || r.ClassesFile != filepath.Join(r.Dir, "classes.json") {
			t.Errorf("recipe %d: %+v, want %+v", i, r, w)
		}
		cls, err := inat.LoadClasses(r.ClassesFile)
		if err != nil || len(cls) != 5 {
			t.Fatalf("%s: %d classes, %v", r.ClassesFile, len(cls), err)
		}
		rec, err := inat.ReadRecipe(r.ClassesFile)
		if err != nil || rec.Template != w.template || rec.Indistinct != w.indistinct {
			t.Errorf("%s: recipe %+v, %v", r.ClassesFile, rec, err)
		}
	}
	if got := rs[0].Example; got != "A photo of the Dark-eyed Junco Birds Junco hyemalis" {
		t.Errorf("paper example %q", got)
	}
	md, _ := os.ReadFile(filepath.Join(cfg.Out, RecipesMarkdown))
	for _, w := range []string{"| recipe ", "| indistinct classes", "| {common_name} ", " 3 |"} {
		if !strings.Contains(string(md), w) {
			t.Errorf("recipes.md lacks %q:\n%s", w, md)
		}
	}
	var js []RecipeResult
	b, _ := os.ReadFile(filepath.Join(cfg.Out, RecipesJSON))
	if err := json.Unmarshal(b, &js); err != nil || len(js) != 5 || js[2].Indistinct != 3 {
		t.Errorf("recipes.json: %v %+v", err, js)
	}

	for _, bad := range []struct{ list, want string }{
		{"paper;paper", "twice"},
		{" ; ", "no recipe"},
	} {
		if _, err := ParseRecipes(bad.list); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseRecipes(%q): %v, want %q", bad.list, err, bad.want)
		}
	}
	for _, bad := range []struct{ recipe, want string }{
		{"common names", "neither"},
		{"{nickname}", "unknown field"},
	} {
		if _, err := Recipes(cfg, []string{bad.recipe}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("recipe %q: %v, want %q", bad.recipe, err, bad.want)
		}
	}
}

// TestRunWritesRecipe: a plain caption run records its template beside
// classes.json, so a sweep can say which recipe a classes file holds.
func TestRunWritesRecipe(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "categories.csv")
	os.WriteFile(csv, []byte(recipeCSV), 0o644)
	cfg := DefaultConfig()
	cfg.Categories, cfg.Out, cfg.ClassesOnly, cfg.Log = csv, dir, true, &bytes.Buffer{}
	cfg.Template = "{common_name}"
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	r, err := inat.ReadRecipe(filepath.Join(dir, "classes.json"))
	if err != nil || r.Name != "{common_name}" || r.Template != "{common_name}" || r.Indistinct != 3 || r.DistinctCaptions != 3 {
		t.Fatalf("recipe %+v, %v", r, err)
	}
}

// TestRecipesINat runs the recipes on iNat2021's 10,000 categories
// (skipped without ../shared/data) and logs the table.
func TestRecipesINat(t *testing.T) {
	csv := testutil.SharedData(t, "inat2021/categories.csv")
	cfg := DefaultConfig()
	cfg.Categories, cfg.Out, cfg.ClassesOnly, cfg.Log = csv, t.TempDir(), true, &bytes.Buffer{}
	list, _ := ParseRecipes("paper;{name};{common_name} {name};auto;{common_name}")
	rs, err := Recipes(cfg, list)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + RecipeTable(rs).Markdown())
	if rs[0].ClassesFile == "" || rs[0].Indistinct != 0 || rs[1].Indistinct != 0 || rs[4].Indistinct == 0 {
		t.Errorf("paper, {name} keep all 10,000 classes apart, {common_name} does not: %+v", rs)
	}
}
