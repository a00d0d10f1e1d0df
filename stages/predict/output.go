package predict

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/litcache/litcache/stages/bundle"
)

// rowWriter writes rows as they come, so a long run's answers are on disk
// (or in the pipe) as soon as each photo is done.
type rowWriter interface {
	Write(Row) error
	Close() error
}

// CSVHeader is the CSV output's header: one row per photo and prediction
// (k = 1..top), the taxonomy down to the rank, and the error of a photo that
// could not be read (its only row, with k empty).
var CSVHeader = append(append([]string{"file", "rank", "k", "name", "common_name", "score"}, bundle.Ranks...), "error")

// newRowWriter makes the writer of format; nameWidth sizes the table's name column.
func newRowWriter(format string, w io.Writer, nameWidth int) (rowWriter, error) {
	switch format {
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(CSVHeader); err != nil {
			return nil, err
		}
		return &csvWriter{w: cw}, nil
	case FormatJSON:
		return &jsonWriter{w: w}, nil
	case FormatTable, "":
		return &tableWriter{w: w, nameWidth: nameWidth}, nil
	}
	return nil, fmt.Errorf("predict: format %q: want table, json or csv", format)
}

type csvWriter struct{ w *csv.Writer }

func (c *csvWriter) Write(r Row) error {
	if r.Err != nil {
		rec := make([]string, len(CSVHeader))
		rec[0], rec[1], rec[len(rec)-1] = r.File, r.Rank, r.Err.Error()
		return c.w.Write(rec)
	}
	for k, p := range r.Predictions {
		rec := []string{r.File, r.Rank, strconv.Itoa(k + 1), p.Name, p.CommonName, strconv.FormatFloat(p.Score, 'f', 6, 64)}
		for _, rank := range bundle.Ranks {
			rec = append(rec, p.Taxonomy.At(rank))
		}
		if err := c.w.Write(append(rec, "")); err != nil {
			return err
		}
	}
	c.w.Flush()
	return c.w.Error()
}

func (c *csvWriter) Close() error {
	c.w.Flush()
	return c.w.Error()
}

// JSONRow is a photo's element of the JSON output.
type JSONRow struct {
	File        string              `json:"file"`
	Rank        string              `json:"rank"`
	Predictions []bundle.Prediction `json:"predictions,omitempty"`
	Error       string              `json:"error,omitempty"`
}

// jsonWriter writes one array, an element per line.
type jsonWriter struct {
	w io.Writer
	n int
}

func (j *jsonWriter) Write(r Row) error {
	jr := JSONRow{File: r.File, Rank: r.Rank, Predictions: r.Predictions}
	if r.Err != nil {
		jr.Error = r.Err.Error()
	}
	b, err := json.Marshal(jr)
	if err != nil {
		return err
	}
	sep := ",\n"
	if j.n == 0 {
		sep = "[\n"
	}
	j.n++
	_, err = io.WriteString(j.w, sep+string(b))
	return err
}

func (j *jsonWriter) Close() error {
	end := "\n]\n"
	if j.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(j.w, end)
	return err
}

// tableWriter prints each photo's name, then its predictions one per line:
// rank, score as a percentage, scientific and common name.
type tableWriter struct {
	w         io.Writer
	nameWidth int
}

func (t *tableWriter) Write(r Row) error {
	var b strings.Builder
	b.WriteString(r.File + "\n")
	if r.Err != nil {
		fmt.Fprintf(&b, "    error: %v\n", r.Err)
	}
	for k, p := range r.Predictions {
		line := fmt.Sprintf("  %2d  %6.2f%%  %-*s  %s", k+1, 100*p.Score, t.nameWidth, p.Name, p.CommonName)
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

func (t *tableWriter) Close() error { return nil }

// nameWidth is the width of the longest name at rank (at most 40).
func nameWidth(classes []bundle.Class, rank string) int {
	w := 4
	for _, c := range classes {
		n := c.Name
		if rank != "" && rank != "species" {
			n = c.Taxonomy.At(rank)
		}
		w = max(w, len([]rune(n)))
	}
	return min(w, 40)
}
