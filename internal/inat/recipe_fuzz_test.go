package inat

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadRecipe: a recipe file of any bytes reads or fails, never panics;
// what reads writes back to the same recipe.
func FuzzReadRecipe(f *testing.F) {
	f.Add(`{"name":"paper","template":"A photo of the {name}","classes":3,"distinct_captions":2,"indistinct_classes":2}`)
	f.Add(`{"fields":["name"],"omit":null}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, in string) {
		dir := t.TempDir()
		cls := filepath.Join(dir, "classes.json")
		if err := os.WriteFile(RecipePath(cls), []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := ReadRecipe(cls)
		if err != nil {
			return
		}
		if err := WriteRecipe(cls, r); err != nil {
			t.Fatal(err)
		}
		back, err := ReadRecipe(cls)
		if err != nil || back.Name != r.Name || back.Template != r.Template || back.Indistinct != r.Indistinct {
			t.Fatalf("round trip %+v → %+v, %v", r, back, err)
		}
	})
}

func TestIndistinct(t *testing.T) {
	if n := Indistinct([]string{"a", "b", "a", "c", "a", "b"}); n != 5 {
		t.Errorf("Indistinct = %d, want 5 (three a, two b)", n)
	}
	if n := Indistinct(nil); n != 0 {
		t.Errorf("Indistinct(nil) = %d", n)
	}
}
