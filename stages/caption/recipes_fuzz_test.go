package caption

import (
	"strings"
	"testing"
)

// FuzzParseRecipes: any --recipes text parses into distinct, non-empty,
// trimmed recipes or fails.
func FuzzParseRecipes(f *testing.F) {
	f.Add("paper;{name};{common_name} {name};auto")
	f.Add(";;")
	f.Add(" paper ; paper")
	f.Fuzz(func(t *testing.T, in string) {
		rs, err := ParseRecipes(in)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range rs {
			if r == "" || r != strings.TrimSpace(r) || strings.Contains(r, ";") || seen[r] {
				t.Fatalf("%q → %q", in, rs)
			}
			seen[r] = true
			if f := recipeFolder(r); f == "" || strings.ContainsAny(f, "/\\ {}") {
				t.Fatalf("recipe %q → folder %q", r, f)
			}
		}
	})
}
