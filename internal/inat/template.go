package inat

import (
	"fmt"
	"strings"
)

// DefaultTemplate is the paper's caption: common name, supercategory and
// binomial, e.g. "A photo of the Oakmoss Fungi Evernia prunastri".
const DefaultTemplate = "A photo of the {common_name} {supercategory} {name}"

// DefaultOmit blanks the catch-all supercategory "Animalia" (the paper's
// Figure 1: "A photo of the Common Blue Crab Callinectes sapidus").
var DefaultOmit = []string{"supercategory=Animalia"}

// AutoFieldOrder is the preference order --fields auto searches in: the
// fields people name a species by first, then ranks from fine to coarse.
var AutoFieldOrder = []string{"common_name", "supercategory", "name", "genus", "specific_epithet",
	"family", "order", "class", "phylum", "kingdom"}

// Template renders a caption from a category: {field} placeholders are
// replaced with the category's field values (see Fields), a value listed in
// Omit is replaced with nothing, and runs of white space are collapsed.
type Template struct {
	parts []templatePart
	omit  map[string]map[string]bool // field → values left out
	text  string
}

type templatePart struct {
	literal string
	field   string // "" for a literal
}

// ParseTemplate parses text with {field} placeholders; omit holds
// "field=value" pairs whose value renders as empty. Unknown fields and
// unbalanced braces are errors.
func ParseTemplate(text string, omit []string) (*Template, error) {
	t := &Template{text: text, omit: map[string]map[string]bool{}}
	rest := text
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, templatePart{literal: rest})
			break
		}
		if rest[open] == '}' {
			return nil, fmt.Errorf("inat: template %q: unmatched '}'", text)
		}
		if open > 0 {
			t.parts = append(t.parts, templatePart{literal: rest[:open]})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return nil, fmt.Errorf("inat: template %q: unclosed '{'", text)
		}
		field := strings.TrimSpace(rest[open+1 : open+1+end])
		if !knownField(field) {
			return nil, fmt.Errorf("inat: template %q: unknown field {%s} (known: %s)", text, field, strings.Join(Fields, ", "))
		}
		t.parts = append(t.parts, templatePart{field: field})
		rest = rest[open+1+end+1:]
	}
	for _, o := range omit {
		field, value, ok := strings.Cut(o, "=")
		if !ok || !knownField(field) {
			return nil, fmt.Errorf("inat: omit %q: want field=value with a known field", o)
		}
		if t.omit[field] == nil {
			t.omit[field] = map[string]bool{}
		}
		t.omit[field][value] = true
	}
	return t, nil
}

func knownField(name string) bool {
	for _, f := range Fields {
		if f == name {
			return true
		}
	}
	return false
}

// FieldsTemplate is the template for a field list, as --fields builds it:
// "A photo of the {f1} {f2} …".
func FieldsTemplate(fields []string) string {
	var b strings.Builder
	b.WriteString("A photo of the")
	for _, f := range fields {
		b.WriteString(" {" + f + "}")
	}
	return b.String()
}

// String is the template's text.
func (t *Template) String() string { return t.text }

// Fields lists the fields the template uses, in order.
func (t *Template) Fields() []string {
	var out []string
	for _, p := range t.parts {
		if p.field != "" {
			out = append(out, p.field)
		}
	}
	return out
}

// Render returns the caption of c.
func (t *Template) Render(c *Category) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.field == "" {
			b.WriteString(p.literal)
			continue
		}
		v, _ := c.Field(p.field)
		if t.omit[p.field][v] {
			continue
		}
		b.WriteString(v)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// Captions renders every category's caption and counts the distinct ones.
func (t *Template) Captions(cats []Category) (captions []string, distinct int) {
	captions = make([]string, len(cats))
	seen := make(map[string]struct{}, len(cats))
	for i := range cats {
		captions[i] = t.Render(&cats[i])
		seen[captions[i]] = struct{}{}
	}
	return captions, len(seen)
}

// AutoFields is the result of SelectFields.
type AutoFields struct {
	Fields   []string // the chosen fields, in AutoFieldOrder
	Distinct int      // distinct captions they give
	Classes  int      // number of classes
	Tried    int      // subsets evaluated
	// Steps lists the first subsets evaluated with their distinct caption
	// counts (at most 32), for the report.
	Steps []AutoStep
}

// AutoStep is one subset SelectFields evaluated.
type AutoStep struct {
	Fields   []string
	Distinct int
}

// SelectFields implements the paper's step 2, "select a subset of metadata
// columns which maximize inter-class differences": it searches the subsets of
// candidates (AutoFieldOrder when nil) by size, then in preference order, and
// returns the first, smallest subset that gives every class a distinct
// caption. When no subset separates all classes it returns the smallest one
// with the most distinct captions. omit is applied as in ParseTemplate.
// The search is exact: 2^len(candidates) subsets, each one pass over cats.
func SelectFields(cats []Category, candidates []string, omit []string) (AutoFields, error) {
	if candidates == nil {
		candidates = AutoFieldOrder
	}
	if len(candidates) > 16 {
		return AutoFields{}, fmt.Errorf("inat: select fields: %d candidates, at most 16", len(candidates))
	}
	tmpl, err := ParseTemplate(FieldsTemplate(candidates), omit)
	if err != nil {
		return AutoFields{}, err
	}
	// values[f][i]: the (omit-applied) value of candidate f for class i, as a small int.
	values := make([][]int32, len(candidates))
	for f, name := range candidates {
		ids := map[string]int32{}
		values[f] = make([]int32, len(cats))
		for i := range cats {
			v, _ := cats[i].Field(name)
			if tmpl.omit[name][v] {
				v = ""
			}
			v = strings.Join(strings.Fields(v), " ")
			id, ok := ids[v]
			if !ok {
				id = int32(len(ids))
				ids[v] = id
			}
			values[f][i] = id
		}
	}
	best := AutoFields{Classes: len(cats), Distinct: -1}
	key := make([]byte, 0, 4*len(candidates))
	seen := make(map[string]struct{}, len(cats))
	for size := 1; size <= len(candidates); size++ {
		for _, subset := range combinations(len(candidates), size) {
			best.Tried++
			clear(seen)
			for i := range cats {
				key = key[:0]
				for _, f := range subset {
					v := values[f][i]
					key = append(key, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
				}
				seen[string(key)] = struct{}{}
			}
			if len(best.Steps) < 32 {
				step := AutoStep{Distinct: len(seen)}
				for _, f := range subset {
					step.Fields = append(step.Fields, candidates[f])
				}
				best.Steps = append(best.Steps, step)
			}
			if len(seen) > best.Distinct {
				best.Distinct = len(seen)
				best.Fields = best.Fields[:0]
				for _, f := range subset {
					best.Fields = append(best.Fields, candidates[f])
				}
			}
			if best.Distinct == len(cats) {
				return best, nil
			}
		}
	}
	return best, nil
}

// combinations lists the size-k subsets of 0..n-1 in lexicographic order.
func combinations(n, k int) [][]int {
	var out [][]int
	cur := make([]int, 0, k)
	var rec func(start int)
	rec = func(start int) {
		if len(cur) == k {
			out = append(out, append([]int(nil), cur...))
			return
		}
		for i := start; i <= n-(k-len(cur)); i++ {
			cur = append(cur, i)
			rec(i + 1)
			cur = cur[:len(cur)-1]
		}
	}
	rec(0)
	return out
}
