// Package caption is the caption stage (the paper's first contribution): it
// turns the image-only iNat2021 into an image–text dataset by captioning every
// image with its class's metadata, and stores the result as webdataset shards
// that OpenCLIP-style loaders and the extract stage read:
//
//	OUT/000000.tar …        samples KEY.jpg (or .png) KEY.txt KEY.json KEY.cls
//	OUT/sizes.json          {shard name: sample count}
//	OUT/classes.json        one record per class: id, caption, taxonomy
//	OUT/skipped.jsonl       images left out, each with its reason
//	OUT/.caption/           run identity and per-shard records (for resuming)
//
// Input is an iNat json (train.json / val.json, streamed) with its image
// root, or a folder tree ROOT/{image_dir_name}/*.jpg with the categories CSV.
//
// Keys: the image id, zero-padded to 9 digits ("002686843"), when the input
// has ids (iNat ids are unique across train and val, so shards of both splits
// can share a cache); in folder-tree mode the sample's index in the plan.
//
// Shards are assigned deterministically (sample i of the plan goes to shard
// i / PerShard) and written through NAME.tmp + fsync + rename, so a shard is
// complete or absent; a rerun keeps every shard that has its record and the
// recorded size, and rewrites the others with identical bytes.
package caption

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/litcache/litcache/internal/inat"
	"github.com/litcache/litcache/internal/progress"
)

// Config is one caption run.
type Config struct {
	JSON       string // iNat COCO json (.json, .json.gz or the dataset's train.json.tar.gz); file names relative to Images
	Images     string // image root; without JSON: the folder tree ROOT/{image_dir_name}/*.jpg
	Categories string // categories CSV; required without JSON, overrides the json's categories with it
	Out        string // output folder

	Template string   // caption template with {field} placeholders (inat.Fields)
	Omit     []string // "field=value": values rendered as nothing (inat.DefaultOmit)
	// Fields, when set, replaces Template with "A photo of the {f1} {f2} …";
	// the single entry "auto" picks the smallest set of fields that gives every
	// class a distinct caption (inat.SelectFields).
	Fields []string

	PerShard    int    // samples per shard
	Compression string // "none" (.tar), "gz" (.tar.gz) or "zst" (.tar.zst)
	MaxSize     int    // 0: original bytes; else images whose longest side is larger are downscaled to it and re-encoded as JPEG
	Quality     int    // JPEG quality of re-encoded images
	Verify      bool   // decode every passed-through image fully (catches truncated files; costs a decode)
	Shuffle     bool   // shuffle the sample order with Seed (shards then mix classes)
	Seed        int64
	Limit       int // keep the first Limit samples of the plan (0: all)
	Threads     int // parallel image readers/encoders (0: all cores)

	ClassesOnly bool // write classes.json only (no images needed)
	Overwrite   bool // replace shards of a run with a different configuration instead of failing

	Progress progress.Options // the bar; Quiet for tests
	Log      io.Writer        // summary lines (nil: stderr)

	// afterShard is called after each shard is finished (tests interrupt runs with it).
	afterShard func(name string)
}

// DefaultConfig is the paper's setup: its caption template, 10,000 samples
// per shard, original JPEG bytes, shuffled order.
func DefaultConfig() Config {
	return Config{
		Template:    inat.DefaultTemplate,
		Omit:        append([]string(nil), inat.DefaultOmit...),
		PerShard:    10000,
		Compression: "none",
		Quality:     90,
		Shuffle:     true,
		Seed:        0,
	}
}

func (c *Config) validate(needImages bool) error {
	if c.JSON == "" && c.Categories == "" {
		return fmt.Errorf("caption: no metadata: give an iNat json (--json) or a categories CSV (--categories)")
	}
	if needImages {
		if c.Out == "" {
			return fmt.Errorf("caption: no output folder (--out)")
		}
		if c.Images == "" && !c.ClassesOnly {
			return fmt.Errorf("caption: no image root (--images); use --classes-only to write classes.json alone")
		}
	}
	if c.PerShard <= 0 {
		return fmt.Errorf("caption: samples per shard %d: want > 0", c.PerShard)
	}
	if c.MaxSize < 0 || c.MaxSize > 0 && c.MaxSize < 8 {
		return fmt.Errorf("caption: max size %d: want 0 (keep) or at least 8", c.MaxSize)
	}
	if c.Quality == 0 {
		c.Quality = 90
	}
	if c.Quality < 1 || c.Quality > 100 {
		return fmt.Errorf("caption: JPEG quality %d: want 1..100", c.Quality)
	}
	if _, err := c.shardExt(); err != nil {
		return err
	}
	if c.Limit < 0 {
		return fmt.Errorf("caption: limit %d: want ≥ 0", c.Limit)
	}
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	return nil
}

func (c *Config) shardExt() (string, error) {
	switch c.Compression {
	case "", "none", "tar":
		return ".tar", nil
	case "gz", "gzip":
		return ".tar.gz", nil
	case "zst", "zstd":
		return ".tar.zst", nil
	}
	return "", fmt.Errorf("caption: compression %q: want none, gz or zst", c.Compression)
}
