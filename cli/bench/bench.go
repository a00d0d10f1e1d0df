// Package bench is the harness behind `litcache bench`: each figure is
// measured next to a reference timed in the same run with the same statistic
// (fastest of interleaved runs, or one run each), and printed with the ratio
// between them. A reference is independent of the code measured (a ceiling
// such as OpenBLAS sgemm or a library's decode alone, or a peer such as
// gonum or x/image), or else is named plainly as an ablation of litcache's
// own code ("ablation: dedup off"). It is a driver of the stages, so it
// lives beside the commands. Timings never appear in tests.
package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Figure is one measured number and the reference it is compared with.
type Figure struct {
	Name  string  // e.g. "matmul/1024^3/go"
	Value float64 // the measurement
	Unit  string  // e.g. "GFLOP/s"
	// RefName and Ref describe the reference measured in the same run; Ref = 0
	// when there is none (the ratio is then not printed).
	RefName string
	Ref     float64
	// HigherIsBetter tells how to read the ratio Value/Ref.
	HigherIsBetter bool
	Note           string
}

// Ratio is Value/Ref, or 0 without a reference.
func (f Figure) Ratio() float64 {
	if f.Ref == 0 {
		return 0
	}
	return f.Value / f.Ref
}

// Bench is a named group of figures.
type Bench struct {
	Name string
	Help string
	Run  func(ctx context.Context, emit func(Figure)) error
}

// All lists every benchmark `litcache bench` knows, in print order.
// Each area adds its entry here and keeps its Bench in its own file.
func All() []Bench {
	return []Bench{
		Matmul,
		Decode,
		ViT,
		Towers,
		Eval,
		Tune,
		Tokenizer,
		Caption,
		Cache,
		Scale,
	}
}

// Select returns the benches whose name starts with one of prefixes (all when none).
func Select(prefixes []string) ([]Bench, error) {
	if len(prefixes) == 0 {
		return All(), nil
	}
	var out []Bench
	for _, b := range All() {
		for _, p := range prefixes {
			if strings.HasPrefix(b.Name, p) {
				out = append(out, b)
				break
			}
		}
	}
	if len(out) == 0 {
		var names []string
		for _, b := range All() {
			names = append(names, b.Name)
		}
		return nil, fmt.Errorf("bench: no benchmark matches %q (known: %s)", prefixes, strings.Join(names, ", "))
	}
	return out, nil
}

// Print writes one line per figure: name, value, unit, and the ratio to its reference.
func Print(w io.Writer, f Figure) {
	line := fmt.Sprintf("%-44s %12.4g %-10s", f.Name, f.Value, f.Unit)
	if f.Ref != 0 {
		line += fmt.Sprintf(" ratio %.3f vs %s (%.4g %s)", f.Ratio(), f.RefName, f.Ref, f.Unit)
	}
	if f.Note != "" {
		line += "  # " + f.Note
	}
	fmt.Fprintln(w, line)
}
