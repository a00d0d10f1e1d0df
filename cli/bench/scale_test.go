package bench

import (
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// tinyScale is a run small enough for a test: the phases' plumbing, not
// their speed (50 classes, val 76 rows, 3 steps at batch 512).
func tinyScale(t *testing.T) ScaleOptions {
	return ScaleOptions{Rows: 2048, Classes: 50, Batch: 512, Steps: 3, Dir: t.TempDir(), Quiet: true}
}

// leftovers lists what a run left in its folder.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestScaleFigures: a tiny run emits every figure, each beside a named,
// non-zero reference, children report their results and peak RSS, and the
// cache is gone afterwards.
func TestScaleFigures(t *testing.T) {
	o := tinyScale(t)
	if v := scaleValRows(o.Rows); v != 76 {
		t.Fatalf("val rows for %d train rows: %d, want 76 (2048 × 100k / 2.69M)", o.Rows, v)
	}
	got := map[string]Figure{}
	var order []string
	if err := o.Run(context.Background(), func(f Figure) { got[f.Name] = f; order = append(order, f.Name) }); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"scale/index/time": "s", "scale/verify/time": "s",
		"scale/tune/first-step": "s", "scale/tune/steps-per-s": "steps/s",
		"scale/eval/score/76x50": "s",
	}
	if runtime.GOOS == "linux" {
		for _, n := range []string{"index", "verify", "tune", "eval"} {
			want["scale/"+n+"/peak-rss"] = "MiB"
		}
	}
	if len(got) != len(want) || len(order) != len(want) {
		t.Errorf("figures %v, want %d: %v", order, len(want), want)
	}
	for name, unit := range want {
		f, ok := got[name]
		if !ok {
			t.Errorf("no figure %s", name)
			continue
		}
		if f.Unit != unit || !(f.Value > 0) || math.IsInf(f.Value, 0) || !(f.Ref > 0) || math.IsInf(f.Ref, 0) || f.RefName == "" {
			t.Errorf("%s: %+v: want a positive value in %s beside a named positive reference", name, f, unit)
		}
	}
	if !strings.HasPrefix(got["scale/tune/steps-per-s"].RefName, "ablation:") || !strings.HasPrefix(got["scale/tune/first-step"].RefName, "ablation:") {
		t.Errorf("tune's references are ablations of tune and must say so: %q, %q", got["scale/tune/steps-per-s"].RefName, got["scale/tune/first-step"].RefName)
	}
	if n := got["scale/tune/first-step"].Note; !strings.Contains(n, "tune: first step done") {
		t.Errorf("first-step note %q lacks tune's own start-up line", n)
	}
	if rss := got["scale/index/peak-rss"]; runtime.GOOS == "linux" && rss.Value < 10 {
		t.Errorf("index's peak RSS %.1f MiB: a Go process holds more than 10 MiB; is it the child's?", rss.Value)
	}
	if left := leftovers(t, o.Dir); len(left) != 0 {
		t.Errorf("the run left %v in %s", left, o.Dir)
	}
}

// TestScaleCancelRemovesCache: a run cancelled after its first figure (as by
// Ctrl-C) returns the cancellation and leaves nothing behind.
func TestScaleCancelRemovesCache(t *testing.T) {
	o := tinyScale(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	err := o.Run(ctx, func(Figure) { n++; cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v, want context.Canceled", err)
	}
	if n == 0 || n > 2 {
		t.Errorf("%d figures before the cancel took hold, want index's (1 or 2)", n)
	}
	if left := leftovers(t, o.Dir); len(left) != 0 {
		t.Errorf("the cancelled run left %v in %s", left, o.Dir)
	}
}

// TestScaleValidate: too few rows for two batches is refused before any
// work, naming --rows.
func TestScaleValidate(t *testing.T) {
	o := tinyScale(t)
	o.Rows = 1000
	if err := o.Run(context.Background(), func(Figure) {}); err == nil || !strings.Contains(err.Error(), "--rows 1000") {
		t.Fatalf("1000 rows at batch 512: %v, want an error naming --rows", err)
	}
	if left := leftovers(t, o.Dir); len(left) != 0 {
		t.Errorf("a refused run left %v", left)
	}
	if d := DefaultScaleOptions(); d.Validate() != nil || d.Batch != 1024 || d.Classes != 10_000 {
		t.Errorf("defaults %+v: want valid, batch 1024, 10,000 classes", d)
	}
}

// TestSelfPeakRSS: selfPeakRSS is the high-water mark, not the current
// RSS: a child that touched 512 MiB and gave it back to the OS still
// reports at least 400 MiB more than one that touched 16 MiB. The children
// are this test binary, run as TestRSSHelper, each in a fresh process.
func TestSelfPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peak RSS is measured on Linux only")
	}
	peak := func(mib int) float64 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRSSHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "LITCACHE_TEST_RSS_MIB="+strconv.Itoa(mib))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v: %s", err, out)
		}
		_, after, ok := strings.Cut(string(out), "peak=")
		v, err := strconv.ParseFloat(strings.Fields(after + " ")[0], 64)
		if !ok || err != nil {
			t.Fatalf("helper printed no peak: %s", out)
		}
		return v / (1 << 20)
	}
	small, large := peak(16), peak(512)
	if small < 16 || large < 512 || large-small < 400 {
		t.Fatalf("peak RSS of children that touched 16 and 512 MiB: %.0f and %.0f MiB", small, large)
	}
}

// TestRSSHelper touches $LITCACHE_TEST_RSS_MIB MiB, returns it to the OS
// and logs selfPeakRSS, when run by TestSelfPeakRSS; otherwise it skips.
func TestRSSHelper(t *testing.T) {
	mib, err := strconv.Atoi(os.Getenv("LITCACHE_TEST_RSS_MIB"))
	if err != nil {
		t.Skip("run by TestSelfPeakRSS only")
	}
	b := make([]byte, mib<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	b = nil
	debug.FreeOSMemory()
	p, err := selfPeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak=%d", p)
}
