// Package predict is the field stage that classifies photos with a bundle
// (stages/bundle): files and folders in, one row per photo out (a table,
// JSON or CSV), the top-k species or, with a rank, the top-k taxa at that
// rank with their species' probabilities summed, as pybioclip's predict does.
//
// The pipeline (pipeline.go): the photo list → a pool of decoders (read,
// decode, turn upright, preprocess) → one batcher running the tower on as
// many decoded photos as are ready → a writer putting rows back in input
// order. Bounded channels and a window of photos in flight keep memory flat
// on a folder of any size. An unreadable photo is a row with an error, never
// a stop.
package predict

import (
	"fmt"
	"io"
	"slices"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/stages/bundle"
)

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// Formats lists the output formats.
var Formats = []string{FormatTable, FormatJSON, FormatCSV}

// Config is one predict run.
type Config struct {
	// Bundle is the classifier bundle file.
	Bundle string
	// Paths are photo files and folders (walked recursively for Extensions).
	Paths []string
	// Top is how many predictions each photo gets.
	Top int
	// Rank is the taxonomic rank of the predictions ("species" or higher, see bundle.Ranks).
	Rank string
	// Format is FormatTable, FormatJSON or FormatCSV.
	Format string
	// Out receives the rows (nil: discarded; the cli gives stdout).
	Out io.Writer
	// Threads is the number of decoding goroutines (0: all cores).
	Threads int
	// BatchSize is the most photos per tower call (0: bundle.DefaultBatch of the backend).
	BatchSize int
	// Limits bound each photo's size, checked from its header.
	Limits imageproc.Limits
	// MaxFileBytes bounds each file read.
	MaxFileBytes int64

	Backend  backend.Backend  // nil: the CPU backend
	Progress progress.Options // the photo counter
	Log      io.Writer        // the summary line (nil: none)
}

// DefaultConfig is predict as `litcache predict` runs it: the top 5 species
// as a table, the backend's batch size (bundle.DefaultBatch).
func DefaultConfig() Config {
	return Config{Top: 5, Rank: "species", Format: FormatTable,
		Limits: bundle.FieldLimits(), MaxFileBytes: 256 << 20}
}

// Validate reports a Config that cannot run, naming the setting.
func (c Config) Validate() error {
	switch {
	case len(c.Paths) == 0:
		return fmt.Errorf("predict: no photo or folder given")
	case c.Top < 1:
		return fmt.Errorf("predict: --top %d: want at least 1", c.Top)
	case c.BatchSize < 0:
		return fmt.Errorf("predict: --batch-size %d < 0", c.BatchSize)
	case c.Threads < 0:
		return fmt.Errorf("predict: --threads %d < 0", c.Threads)
	case !slices.Contains(Formats, c.Format):
		return fmt.Errorf("predict: --format %q: want table, json or csv", c.Format)
	case c.Rank != "" && !slices.Contains(bundle.Ranks, c.Rank):
		return fmt.Errorf("predict: --rank %q: want one of %s", c.Rank, bundle.RankNames())
	}
	return nil
}
