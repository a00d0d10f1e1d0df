package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litcache/litcache/internal/inat"
)

// TestCaptionRecipes: the call writes one classes.json per recipe
// and prints the table; --recipes refuses the flags it would ignore.
func TestCaptionRecipes(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "categories.csv")
	os.WriteFile(csv, []byte("id,name,common_name,supercategory,kingdom,phylum,class,order,family,genus,specific_epithet,image_dir_name\n"+
		"1,Quercus alba,Oak,Plants,Plantae,Tracheophyta,Magnoliopsida,Fagales,Fagaceae,Quercus,alba,a\n"+
		"2,Quercus rubra,Oak,Plants,Plantae,Tracheophyta,Magnoliopsida,Fagales,Fagaceae,Quercus,rubra,b\n"), 0o644)
	out := filepath.Join(dir, "recipes")
	stdout, _, err := runCommand(t, "caption", "--categories", csv, "--classes-only", "--recipes", "paper;{name};{common_name};auto", "--out", out+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"| indistinct classes", "| {common_name} ", filepath.Join(out, "common_name", "classes.json")} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	for _, f := range []string{"paper", "name", "common_name", "auto"} {
		if _, err := inat.LoadClasses(filepath.Join(out, f, "classes.json")); err != nil {
			t.Error(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--recipes", "paper", "--out", out}, "give --classes-only and --out"},
		{[]string{"--recipes", "paper", "--classes-only"}, "give --classes-only and --out"},
		{[]string{"--recipes", "paper", "--classes-only", "--out", out, "--template", "{name}"}, "--recipes and --template exclude each other"},
		{[]string{"--recipes", "paper;paper", "--classes-only", "--out", out}, "twice"},
		{[]string{"--recipes", "nicknames", "--classes-only", "--out", out}, "neither"},
	} {
		_, _, err := runCommand(t, append([]string{"caption", "--categories", csv}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}
