package weights

import (
	"fmt"
	"slices"
	"strings"
)

// Part is one file tensor a binding reads.
type Part struct {
	Name  string
	Shape []int
}

// Binding is one row of a mapping table: a model tensor under its canonical
// name and shape, read from one file tensor or from several concatenated
// along dim 0 (HF's separate query, key and value projections make one qkv).
// A single part may have another shape of the same size (a (1,1,C) token
// kept as (C)).
type Binding struct {
	Name  string
	Shape []int
	Parts []Part
}

// One is the binding of a model tensor read from one file tensor.
func One(name string, shape []int, fileName string, fileShape []int) Binding {
	if fileShape == nil {
		fileShape = shape
	}
	return Binding{Name: name, Shape: shape, Parts: []Part{{fileName, fileShape}}}
}

// Error lists every problem of matching a source to a table.
type Error struct {
	Source     string // the file or label
	Scheme     string // the naming scheme the table is in
	Missing    []string
	Unexpected []string
	Misshaped  []string // "name: [a b] in the file, want [c d]"
	Unreadable []string // "name: cause"
}

// Error names each problem, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "weights %s (%s) do not fit the model: %d problem(s)", e.Source, e.Scheme, e.Problems())
	for _, m := range e.Missing {
		b.WriteString("\n  missing " + m)
	}
	for _, m := range e.Unexpected {
		b.WriteString("\n  unexpected " + m)
	}
	for _, m := range e.Misshaped {
		b.WriteString("\n  mis-shaped " + m)
	}
	for _, m := range e.Unreadable {
		b.WriteString("\n  unreadable " + m)
	}
	return b.String()
}

// Problems is the number of problems e lists.
func (e *Error) Problems() int {
	return len(e.Missing) + len(e.Unexpected) + len(e.Misshaped) + len(e.Unreadable)
}

// Load reads every binding of table from src: the result maps each
// canonical name to its values in the canonical shape. Every tensor of src
// must be bound or known (known(name) true: buffers and heads the model
// does not use); all problems are reported at once in an *Error. Shapes are
// checked before any tensor is read (Check, then Read).
func Load(src Source, label, scheme string, table []Binding, known func(string) bool) (map[string][]float32, error) {
	if werr := Check(src, label, scheme, table, known); werr.Problems() > 0 {
		return nil, werr
	}
	return Read(src, label, scheme, table)
}

// Check matches src to table without reading a value: every missing,
// unexpected (neither bound nor known) and mis-shaped tensor, in an *Error
// that lists no problem when src fits. A caller with tensors of its own
// outside the table (CLIP's optional logit_scale) adds their problems to it
// before reporting.
func Check(src Source, label, scheme string, table []Binding, known func(string) bool) *Error {
	werr := &Error{Source: label, Scheme: scheme}
	used := map[string]bool{}
	for _, b := range table {
		size := 0
		for _, p := range b.Parts {
			used[p.Name] = true
			size += numel(p.Shape)
			shape, ok := src.Shape(p.Name)
			if !ok {
				werr.Missing = append(werr.Missing, p.Name)
				continue
			}
			if !slices.Equal(shape, p.Shape) {
				werr.Misshaped = append(werr.Misshaped, fmt.Sprintf("%s: %v in the file, want %v", p.Name, shape, p.Shape))
			}
		}
		if size != numel(b.Shape) {
			panic(fmt.Sprintf("weights: table row %s: parts hold %d values, the tensor %v %d", b.Name, size, b.Shape, numel(b.Shape)))
		}
	}
	for _, n := range src.Names() {
		if !used[n] && (known == nil || !known(n)) {
			werr.Unexpected = append(werr.Unexpected, n)
		}
	}
	return werr
}

// Read reads every binding of a table Check found src to fit, a
// multi-part binding's parts concatenated; a tensor that cannot be read, or
// reads as another number of values than its shape holds, is reported in
// an *Error (every one at once).
func Read(src Source, label, scheme string, table []Binding) (map[string][]float32, error) {
	werr := &Error{Source: label, Scheme: scheme}
	out := make(map[string][]float32, len(table))
	for _, b := range table {
		var d []float32
		for _, p := range b.Parts {
			v, err := src.Float32(p.Name)
			if err != nil {
				werr.Unreadable = append(werr.Unreadable, p.Name+": "+err.Error())
				continue
			}
			if len(v) != numel(p.Shape) {
				werr.Unreadable = append(werr.Unreadable, fmt.Sprintf("%s: %d values for shape %v", p.Name, len(v), p.Shape))
				continue
			}
			if len(b.Parts) == 1 {
				d = v
			} else {
				d = append(d, v...)
			}
		}
		out[b.Name] = d
	}
	if werr.Problems() > 0 {
		return nil, werr
	}
	return out, nil
}
