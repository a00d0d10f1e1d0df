package dinov2

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/safetensors"
	"github.com/litcache/litcache/internal/testutil"
)

// testdata/dinov2-posinterp holds position tables resized by PyTorch 1.13's
// own F.interpolate on the CPU as interpolate_pos_encoding calls it
// (generate.py there; FIXTURES.md): released-weight shapes (37 → 16, 32, 46),
// upsampling (16 → 37), both antialias settings and offsets 0.1 and 0.
// ResizePositions must give the same float32 values bit for bit. Breaking any
// of the emulated roundings (an unfused sum, a float32 source index) makes
// some of these differ by an ulp, which this test reports.
func TestResizePositionsMatchesTorch(t *testing.T) {
	dir := testutil.Testdata(t, "dinov2-posinterp")
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Cases []struct {
			Case, M, G, C int
			Offset        float64 `json:"interpolate_offset"`
			Antialias     bool
		}
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	if len(meta.Cases) == 0 {
		t.Fatal("cases.json lists no cases")
	}
	f, err := safetensors.Open(filepath.Join(dir, "posinterp.safetensors"))
	if err != nil {
		t.Fatalf("reference file: %v", err)
	}
	defer f.Close()
	for _, c := range meta.Cases {
		t.Run(fmt.Sprintf("M%d_g%d_offset%g_aa%v", c.M, c.G, c.Offset, c.Antialias), func(t *testing.T) {
			pos, _, err := f.Float32(fmt.Sprintf("case%d.pos", c.Case))
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := f.Float32(fmt.Sprintf("case%d.out", c.Case))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ResizePositions(pos, c.M, c.C, c.G, c.Offset, c.Antialias)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d values, want %d", len(got), len(want))
			}
			diff := 0
			for i := range got {
				if got[i] != want[i] {
					if diff < 3 {
						t.Errorf("value %d: %g (%08x), torch %g (%08x)", i, got[i], f32bits(got[i]), want[i], f32bits(want[i]))
					}
					diff++
				}
			}
			if diff > 0 {
				t.Errorf("%d of %d values differ from torch's", diff, len(want))
			}
		})
	}
}

func f32bits(v float32) uint32 { return math.Float32bits(v) }

// TestResizePositionsSizeCheck: an offset that makes floor(M·sf) miss the
// grid is refused, as the reference's assert does.
func TestResizePositionsSizeCheck(t *testing.T) {
	pos := make([]float32, (1+16*16)*2)
	if _, err := ResizePositions(pos, 16, 2, 8, -0.5, false); err == nil {
		t.Error("offset −0.5 (8 − 0.5)/16·16 = 7.5 → 7 rows accepted")
	}
	if got, err := ResizePositions(pos, 16, 2, 16, 0.1, false); err != nil || len(got) != len(pos) {
		t.Errorf("the trained grid: %v, %d values", err, len(got))
	}
	if _, err := ResizePositions(pos[:5], 16, 2, 8, 0.1, false); err == nil {
		t.Error("a short table accepted")
	}
}
