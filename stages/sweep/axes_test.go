package sweep

import (
	"reflect"
	"strings"
	"testing"

	"github.com/litcache/litcache/stages/tune"
)

// TestPathAxes: the cache axis pairs each training cache with its val cache
// (one axis, not two), the classes and text-init axes cross it, and every
// member records its value on every axis keyed by flag name, with short
// labels in its name.
func TestPathAxes(t *testing.T) {
	base := tune.DefaultConfig()
	base.Warmup = 9
	g := Grid{
		Cache:    []string{"/data/b16/train", "/data/l14/train"},
		ValCache: []string{"/data/b16/val", "/data/l14/val"},
		Classes:  []string{"recipes/paper/classes.json", "recipes/auto/classes.json"},
		Weights:  []string{RandomInit},
		Warmup:   []int{5},
	}
	if err := g.Validate(base); err != nil {
		t.Fatal(err)
	}
	ms := Members(base, g)
	names := []string{"cache-b16_classes-paper", "cache-b16_classes-auto", "cache-l14_classes-paper", "cache-l14_classes-auto"}
	if len(ms) != len(names) {
		t.Fatalf("%d members, want %d", len(ms), len(names))
	}
	for i, m := range ms {
		if m.Name != names[i] {
			t.Errorf("member %d: %q, want %q", i, m.Name, names[i])
		}
	}
	m := ms[2]
	want := map[string]string{"cache": "/data/l14/train", "val-cache": "/data/l14/val", "classes": "recipes/paper/classes.json",
		"weights": RandomInit, "warmup": "5", "lr": "0.001", "batch-size": "256", "wd": "0.2", "epochs": "1", "schedule": "cosine", "seed": "0"}
	if !reflect.DeepEqual(m.Axes, want) {
		t.Errorf("axes %v\nwant  %v", m.Axes, want)
	}
	if got := m.Label(); got != "cache l14, classes paper" {
		t.Errorf("label %q", got)
	}
	tc := m.TuneConfig(base, "/sweep")
	if tc.Cache != "/data/l14/train" || tc.ValCache != "/data/l14/val" || tc.Classes != "recipes/paper/classes.json" || tc.Weights != "" || tc.Warmup != 5 {
		t.Errorf("tune config: cache %s val %s classes %s init %q warmup %d", tc.Cache, tc.ValCache, tc.Classes, tc.Weights, tc.Warmup)
	}

	// The text-init axis in tune's vocabulary.
	ws := Members(base, Grid{Weights: []string{RandomInit, "random:3", "/w/pretrained.safetensors"}})
	inits := []string{"", "random:3", "/w/pretrained.safetensors"}
	wnames := []string{"weights-random", "weights-random_3", "weights-pretrained.safetensors"}
	for i, m := range ws {
		if got := m.TuneConfig(base, "/s").Weights; got != inits[i] || m.Name != wnames[i] {
			t.Errorf("weights member %d: %s, init %q; want %s, %q", i, m.Name, got, wnames[i], inits[i])
		}
	}
	if got := ws[1].Label(); got != "text init random:3" {
		t.Errorf("label %q", got)
	}
}

func TestGridValidate(t *testing.T) {
	base := tune.DefaultConfig()
	withVal := base
	withVal.ValCache = "/v"
	withFP := base
	withFP.ExpectFingerprint = "sha256:x"
	two := []string{"/a", "/b"}
	for _, tc := range []struct {
		name string
		base tune.Config
		g    Grid
		want string
	}{
		{"val caches not paired", base, Grid{Cache: two, ValCache: []string{"/v"}}, "1 values for 2 --cache values"},
		{"one val cache for two towers", withVal, Grid{Cache: two}, "one per cache"},
		{"fingerprint with two towers", withFP, Grid{Cache: two}, "--expect-fingerprint"},
		{"none is not tune's word", base, Grid{Weights: []string{"none", "/w"}}, `spelled "random"`},
		{"bad seed", base, Grid{Weights: []string{"random:x"}}, "seed"},
		{"a value twice", base, Grid{Classes: []string{"/c.json", "/c.json"}}, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.g.Validate(tc.base); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	if err := (Grid{Cache: two, ValCache: []string{"/va", "/vb"}}).Validate(withVal); err != nil {
		t.Errorf("paired val caches over a base val cache: %v", err)
	}
}

func TestShortLabels(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"recipes/paper/classes.json", "recipes/auto/classes.json"}, []string{"paper", "auto"}},
		{[]string{"/x/cache-b16", "/y/cache-l14"}, []string{"cache-b16", "cache-l14"}},
		{[]string{"/x/a/cache", "/y/b/cache"}, []string{"a", "b"}},
		{[]string{"/x/a/cache", "/y/a/cache"}, []string{"x", "y"}},
		{[]string{"/x/a/cache", "/x/b/cache", "/y/a/cache"}, []string{"x-a", "x-b", "y-a"}},
		{[]string{"random", "random:3", "/w/p.safetensors"}, []string{"random", "random:3", "p.safetensors"}},
		{[]string{"one"}, []string{"one"}},
	} {
		if got := ShortLabels(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ShortLabels(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLineGroups: with two varying axes a line's colour follows the first
// axis and its style the second.
func TestLineGroups(t *testing.T) {
	ms := Members(tune.DefaultConfig(), Grid{Cache: []string{"/a", "/b"}, Classes: []string{"/p.json", "/q.json"}, Warmup: []int{5}})
	gs := lineGroups(ms)
	want := []lineGroup{{0, 0}, {0, 1}, {1, 0}, {1, 1}}
	if !reflect.DeepEqual(gs.groups, want) || !strings.Contains(gs.caption, "colour: cache, line: classes") {
		t.Errorf("groups %v caption %q, want %v", gs.groups, gs.caption, want)
	}
	if one := lineGroups(Members(tune.DefaultConfig(), Grid{Warmup: []int{1, 2}})); one.grouped() {
		t.Errorf("one varying axis grouped: %+v", one)
	}
}
