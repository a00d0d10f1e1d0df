// Package report writes what people read after a run (DESIGN.md decision 7):
// Markdown tables, PNG line plots with one line per sweep member, bar charts,
// and the reader of tune's metrics.jsonl that the plots are drawn from.
package report

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Table is a Markdown table: a header row and string cells.
type Table struct {
	Header []string
	// Right marks columns to right-align (numbers); may be shorter than Header.
	Right []bool
	Rows  [][]string
}

// AddRow appends a row; missing cells are left empty, extra ones are an error
// at Markdown time.
func (t *Table) AddRow(cells ...string) { t.Rows = append(t.Rows, cells) }

// AddRowf appends a row formatting each value with %v, float64 with prec digits.
func (t *Table) AddRowf(prec int, values ...any) {
	cells := make([]string, len(values))
	for i, v := range values {
		switch x := v.(type) {
		case float64:
			cells[i] = fmt.Sprintf("%.*f", prec, x)
		case float32:
			cells[i] = fmt.Sprintf("%.*f", prec, x)
		default:
			cells[i] = fmt.Sprint(v)
		}
	}
	t.AddRow(cells...)
}

// Markdown renders the table with padded columns (readable as plain text too).
// Pipes inside cells are escaped; newlines become spaces.
func (t Table) Markdown() string {
	cols := len(t.Header)
	for _, r := range t.Rows {
		cols = max(cols, len(r))
	}
	if cols == 0 {
		return ""
	}
	cell := func(row []string, i int) string {
		if i >= len(row) {
			return ""
		}
		s := strings.ReplaceAll(row[i], "|", `\|`)
		return strings.Join(strings.Fields(s), " ")
	}
	width := make([]int, cols)
	for i := range width {
		width[i] = max(3, utf8.RuneCountInString(cell(t.Header, i)))
		for _, r := range t.Rows {
			width[i] = max(width[i], utf8.RuneCountInString(cell(r, i)))
		}
	}
	right := func(i int) bool { return i < len(t.Right) && t.Right[i] }
	var b strings.Builder
	line := func(row []string) {
		b.WriteByte('|')
		for i := 0; i < cols; i++ {
			s := cell(row, i)
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(s))
			if right(i) {
				b.WriteString(" " + pad + s + " |")
			} else {
				b.WriteString(" " + s + pad + " |")
			}
		}
		b.WriteByte('\n')
	}
	line(t.Header)
	b.WriteByte('|')
	for i := 0; i < cols; i++ {
		dash := strings.Repeat("-", width[i])
		if right(i) {
			dash = dash[1:] + ":"
		}
		b.WriteString(" " + dash + " |")
	}
	b.WriteByte('\n')
	for _, r := range t.Rows {
		line(r)
	}
	return b.String()
}
