package sweep

import (
	"testing"

	"github.com/litcache/litcache/stages/tune"
)

// FuzzDescribeModel: a manifest's model description of any text shortens
// without a panic.
func FuzzDescribeModel(f *testing.F) {
	f.Add(`{"embed_dim":64,"vision_cfg":{"image_size":64,"patch_size":16,"width":96,"layers":2}} weights=random:7 | imageproc/v1`)
	f.Add(`synthetic`)
	f.Add(`{"vision_cfg":`)
	f.Fuzz(func(t *testing.T, in string) {
		_ = describeModel(in)
	})
}

// FuzzShortLabels: distinct values get distinct labels, and the members of
// an axis over them distinct folder names.
func FuzzShortLabels(f *testing.F) {
	f.Add("recipes/paper/classes.json", "recipes/auto/classes.json")
	f.Add("/a/x", "/b/x")
	f.Add("a", "a/")
	f.Add("a/b", "a-b")
	f.Add("a:b", "a_b")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == b {
			return
		}
		ls := ShortLabels([]string{a, b})
		if len(ls) != 2 || ls[0] == ls[1] {
			t.Fatalf("%q, %q → labels %q", a, b, ls)
		}
		ms := Members(tune.DefaultConfig(), Grid{Classes: []string{a, b}})
		if len(ms) != 2 || ms[0].Name == ms[1].Name {
			t.Fatalf("%q, %q → members %q, %q", a, b, ms[0].Name, ms[1].Name)
		}
	})
}
