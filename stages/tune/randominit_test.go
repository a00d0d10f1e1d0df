package tune

import (
	"path/filepath"
	"testing"
)

// TestRandomWeights: Weights random:SEED starts from the random tower of
// that seed, independent of the run's Seed (data order): random:5 with Seed 5
// is the default start (Weights ""), random:6 is another tower.
func TestRandomWeights(t *testing.T) {
	w := newTestWorld(t)
	run := func(name, init string) Result {
		cfg := w.config(filepath.Join(w.dir, name))
		cfg.Epochs, cfg.Weights = 1, init
		res, err := w.runMem(t, cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	def, same, other := run("default", ""), run("random5", "random:5"), run("random6", "random:6")
	if same.Loss != def.Loss || same.LogitScale != def.LogitScale {
		t.Errorf("random:5 with seed 5: loss %v, the default start %v", same.Loss, def.Loss)
	}
	if other.Loss == def.Loss {
		t.Errorf("random:6: loss %v equals the seed-5 start's", other.Loss)
	}
	cfg := w.config(filepath.Join(w.dir, "bad"))
	cfg.Weights = "random:x"
	if err := cfg.Validate(); err == nil {
		t.Error("random:x accepted")
	}
}
