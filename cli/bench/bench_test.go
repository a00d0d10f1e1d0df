package bench

import (
	"bytes"
	"strings"
	"testing"
)

// TestSelect: names match by prefix, none means all, and an unknown name is
// an error that lists the known ones.
func TestSelect(t *testing.T) {
	all, err := Select(nil)
	if err != nil || len(all) != len(All()) {
		t.Fatalf("Select(nil): %d benches, %v", len(all), err)
	}
	got, err := Select([]string{"mat", "tok"})
	if err != nil || len(got) != 2 || got[0].Name != "matmul" || got[1].Name != "tokenizer" {
		t.Fatalf("Select(mat, tok): %v %v", got, err)
	}
	if _, err := Select([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "matmul") {
		t.Fatalf("Select(nope): %v, want an error naming the known benches", err)
	}
}

// TestPrint: a figure with a reference prints the ratio and the reference's
// name and value; one without prints neither.
func TestPrint(t *testing.T) {
	var b bytes.Buffer
	Print(&b, Figure{Name: "x/with", Value: 50, Unit: "img/s", RefName: "ablation: y off", Ref: 25, HigherIsBetter: true, Note: "n"})
	Print(&b, Figure{Name: "x/alone", Value: 7, Unit: "GFLOP/s"})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "ratio 2.000 vs ablation: y off (25 img/s)") || !strings.HasSuffix(lines[0], "# n") {
		t.Fatalf("with a reference: %q", lines[0])
	}
	if strings.Contains(lines[1], "ratio") {
		t.Fatalf("without a reference: %q", lines[1])
	}
}

// TestEveryBenchIsDocumented: each bench has a name and a help line for --list.
func TestEveryBenchIsDocumented(t *testing.T) {
	for _, b := range All() {
		if b.Name == "" || b.Help == "" || b.Run == nil {
			t.Errorf("bench %+v lacks a name, help or run", b.Name)
		}
	}
}
