package optim

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/litcache/litcache/internal/testutil"
)

// trainReference is the part of clip-tiny/train_reference.json the schedule
// test reads: OpenCLIP's cosine schedule evaluated by the fixture generator.
type trainReference struct {
	LR     []float64 `json:"lr"`
	Steps  int       `json:"steps"`
	Warmup int       `json:"warmup"`
	BaseLR float64   `json:"base_lr"`
}

// TestScheduleFixture checks the cosine schedule against the fixture's lr
// column (float64 in both: 1e-12 relative covers cos() differences).
func TestScheduleFixture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.FixtureDir(t), "train_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref trainReference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.LR) != ref.Steps {
		t.Fatalf("fixture: %d lr values for %d steps", len(ref.LR), ref.Steps)
	}
	s := Schedule{Kind: Cosine, BaseLR: ref.BaseLR, Warmup: ref.Warmup, Steps: ref.Steps}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, want := range ref.LR {
		if got := s.LR(i); math.Abs(got-want) > 1e-12*math.Abs(want) {
			t.Errorf("step %d: lr %.17g, fixture %.17g", i, got, want)
		}
	}
}

func TestScheduleKinds(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule
		want []float64
	}{
		{"const", Schedule{Kind: Const, BaseLR: 1, Warmup: 2, Steps: 5}, []float64{0.5, 1, 1, 1, 1}},
		{"const no warmup", Schedule{Kind: Const, BaseLR: 2, Steps: 3}, []float64{2, 2, 2}},
		{"cosine", Schedule{Kind: Cosine, BaseLR: 1, Warmup: 1, Steps: 5},
			[]float64{1, 1, 0.5 * (1 + math.Cos(math.Pi/4)), 0.5, 0.5 * (1 + math.Cos(3*math.Pi/4))}},
		{"cosine warmup is whole run", Schedule{Kind: Cosine, BaseLR: 1, Warmup: 4, Steps: 4}, []float64{0.25, 0.5, 0.75, 1}},
		{"const-cooldown linear", Schedule{Kind: ConstCooldown, BaseLR: 1, Warmup: 1, Steps: 6, CooldownSteps: 3, CooldownPower: 1, EndLR: 0.1},
			[]float64{1, 1, 1, 1, 1 - 0.9/3, 1 - 0.9*2/3}},
		{"const-cooldown square", Schedule{Kind: ConstCooldown, BaseLR: 1, Steps: 4, CooldownSteps: 2, CooldownPower: 2},
			[]float64{1, 1, 1, 0.25}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.want {
				if got := tc.s.LR(i); math.Abs(got-want) > 1e-12 {
					t.Errorf("step %d: lr %g, want %g", i, got, want)
				}
			}
		})
	}
}

func TestScheduleValidate(t *testing.T) {
	bad := []struct {
		name string
		s    Schedule
	}{
		{"unknown kind", Schedule{Kind: "linear", BaseLR: 1, Steps: 1}},
		{"no steps", Schedule{Kind: Cosine, BaseLR: 1}},
		{"negative warmup", Schedule{Kind: Cosine, BaseLR: 1, Steps: 3, Warmup: -1}},
		{"negative lr", Schedule{Kind: Const, BaseLR: -1, Steps: 3}},
		{"nan lr", Schedule{Kind: Const, BaseLR: math.NaN(), Steps: 3}},
		{"cooldown too long", Schedule{Kind: ConstCooldown, BaseLR: 1, Steps: 3, CooldownSteps: 4, CooldownPower: 1}},
		{"cooldown power 0", Schedule{Kind: ConstCooldown, BaseLR: 1, Steps: 3, CooldownSteps: 2}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error", tc.s)
			}
		})
	}
	if k, err := ParseKind("Const-Cooldown"); err != nil || k != ConstCooldown {
		t.Fatalf("ParseKind: %v %v", k, err)
	}
}
