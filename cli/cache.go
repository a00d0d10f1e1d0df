package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/internal/progress"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/store"
)

func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "inspect, verify, index and export an embedding cache",
		UsageText: `litcache cache info DIR
   litcache cache verify DIR [--expect-fingerprint FP]
   litcache cache index DIR
   litcache cache get DIR KEY
   litcache cache export DIR --format clip-retrieval --out OUT
   litcache cache fingerprint --model ViT-B-16 --weights open_clip_model.safetensors`,
		Description: `A cache (made by litcache extract) is a folder: manifest.json (image-tower
fingerprint, dim, dtype, views, counts), parts/*.arrow (Arrow IPC files, one per
input shard), done/ markers, rejects.jsonl and, after 'cache index', index/
(Badger: key → part, row).

pyarrow (pyarrow.ipc.open_file) and polars (polars.read_ipc) read the parts as
they are. DuckDB reads Arrow IPC files only through its arrow extension, which
it downloads on first use (INSTALL arrow), so not on a machine offline: for
DuckDB, 'cache export' writes parquet (metadata/*.parquet) it reads natively.`,
		Subcommands: []*cli.Command{
			{
				Name:  "info",
				Usage: "print the manifest, counts per split and rejects",
				UsageText: `litcache cache info DIR [--json]

   litcache cache info cache/train`,
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the manifest as JSON"}},
				Action: func(c *cli.Context) error {
					dir, err := oneArg(c, "DIR")
					if err != nil {
						return err
					}
					return cacheInfo(c.App.Writer, dir, c.Bool("json"))
				},
			},
			{
				Name:  "verify",
				Usage: "check every part against its marker (size, sha256, schema, rows, tower, producer), keys unique, index agrees; report a cache that mixes producers",
				UsageText: `litcache cache verify DIR [--expect-fingerprint FP]

   litcache cache verify cache/train --expect-fingerprint \
       "$(litcache cache fingerprint --model ViT-B-16 --weights open_clip_model.safetensors)"`,
				Flags: []cli.Flag{&cli.StringFlag{Name: "expect-fingerprint", Usage: "fail unless the cache was made by this image tower"}},
				Action: func(c *cli.Context) error {
					args, flags, err := trailingFlags(c, "expect-fingerprint")
					if err != nil {
						return err
					}
					if len(args) != 1 {
						return fmt.Errorf("cache verify: want one argument DIR, got %d", len(args))
					}
					dir := args[0]
					bar := progress.New("verify", 0, progress.Options{W: c.App.ErrWriter, Unit: "B"})
					var last int64
					rep, err := store.Verify(dir, store.VerifyOptions{ExpectFingerprint: flags["expect-fingerprint"], Progress: func(n int64) {
						bar.Add(n - last)
						last = n
					}})
					bar.Finish()
					w := c.App.Writer
					if len(rep.Producers) > 1 {
						fmt.Fprintf(w, "producers: %s\n", producerList(rep.Producers))
					}
					for _, p := range rep.Problems {
						fmt.Fprintf(w, "PROBLEM %s\n", p)
					}
					for _, p := range rep.Warnings {
						fmt.Fprintf(w, "warning %s\n", p)
					}
					if err != nil {
						return err
					}
					idx := "no index"
					if rep.IndexChecked {
						idx = "index agrees"
					}
					fmt.Fprintf(w, "ok: %d parts, %d rows, %d keys, %d rejects, %s; %s\n", rep.Parts, rep.Rows, rep.Keys, rep.Rejects, humanBytes(rep.Bytes), idx)
					return nil
				},
			},
			{
				Name:  "index",
				Usage: "refresh the manifest and rejects.jsonl, then build index/ (key → part, row) over the finished parts",
				UsageText: `litcache cache index DIR

   litcache cache index cache/train      # once every extract worker is done`,
				Action: func(c *cli.Context) error {
					dir, err := oneArg(c, "DIR")
					if err != nil {
						return err
					}
					bar := progress.New("index", 0, progress.Options{W: c.App.ErrWriter, Unit: "rows"})
					var last int
					st, err := store.BuildIndex(dir, store.IndexOptions{Progress: func(n int) {
						bar.Add(int64(n - last))
						last = n
					}})
					bar.Finish()
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "indexed %d keys over %d parts in %s (%s)\n", st.Keys, st.Parts, st.Elapsed.Round(1e6), humanBytes(st.Bytes))
					return nil
				},
			},
			{
				Name:  "get",
				Usage: "print one key's rows (label, caption, view, embedding) as JSON lines",
				UsageText: `litcache cache get DIR KEY

   litcache cache get cache/train 000000031      # KEY as in the shards (litcache caption: the 9-digit image id)`,
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return fmt.Errorf("cache get: want DIR KEY, got %d arguments", c.NArg())
					}
					return cacheGet(c.App.Writer, c.App.ErrWriter, c.Args().Get(0), c.Args().Get(1))
				},
			},
			{
				Name:  "export",
				Usage: "write the cache in another tool's layout",
				UsageText: `litcache cache export DIR --format clip-retrieval --out OUT [--split NAME]

   litcache cache export cache/val --out val-export    # then in DuckDB: SELECT * FROM 'val-export/metadata/*.parquet'`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Value: "clip-retrieval", Usage: "clip-retrieval: img_emb/img_emb_N.npy + metadata/metadata_N.parquet (view 0 only)"},
					&cli.StringFlag{Name: "out", Usage: "output folder (required)"},
					&cli.StringFlag{Name: "split", Usage: "export only this split", DefaultText: "every split"},
				},
				Action: func(c *cli.Context) error {
					args, flags, err := trailingFlags(c, "format", "out", "split")
					if err != nil {
						return err
					}
					if len(args) != 1 {
						return fmt.Errorf("cache export: want one argument DIR, got %d", len(args))
					}
					dir := args[0]
					if f := flags["format"]; f != "clip-retrieval" {
						return fmt.Errorf("cache export: --format %q: the one known format is clip-retrieval", f)
					}
					if flags["out"] == "" {
						return fmt.Errorf("cache export: --out OUT is required")
					}
					bar := progress.New("export", 0, progress.Options{W: c.App.ErrWriter, Unit: "img"})
					var last int
					st, err := store.ExportCLIPRetrieval(dir, flags["out"], store.ExportOptions{Split: flags["split"], Progress: func(n int) {
						bar.Add(int64(n - last))
						last = n
					}})
					bar.Finish()
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "wrote %d embeddings in %d npy/parquet pairs under %s\n", st.Rows, st.Files, flags["out"])
					return nil
				},
			},
			withRequired(&cli.Command{
				Name:  "fingerprint",
				Usage: "print the fingerprint a cache made with this image tower has (for --expect-fingerprint)",
				UsageText: `litcache cache fingerprint --model CONFIG --weights FILE|random:SEED [--pool P]

   litcache cache fingerprint --model dinov2-vitb14 --weights dinov2_vitb14_pretrain.safetensors --pool cls+mean`,
				Flags: []cli.Flag{
					towerModelFlag("as given to litcache extract"),
					towerWeightsFlag("image tower weights, as given to litcache extract"),
					poolFlag(),
				},
				Action: func(c *cli.Context) error {
					if err := noArgs(c); err != nil {
						return err
					}
					if _, _, err := imageWeights(c); err != nil {
						return err
					}
					fp, err := tower.Fingerprint(tower.Spec{Model: c.String("model"), Weights: c.String("weights"), Pool: c.String("pool")})
					if err != nil {
						return fmt.Errorf("cache fingerprint: %w", err)
					}
					fmt.Fprintln(c.App.Writer, fp)
					return nil
				},
			}, "model", "weights"),
		},
	}
}

// trailingFlags returns the positional arguments and the values of the
// named string flags, which may come before the arguments (parsed by
// urfave/cli) or after them ("cache export DIR --out OUT", which urfave/cli
// leaves in the arguments).
func trailingFlags(c *cli.Context, names ...string) ([]string, map[string]string, error) {
	vals := map[string]string{}
	known := map[string]bool{}
	for _, n := range names {
		vals[n] = c.String(n)
		known[n] = true
	}
	var args []string
	rest := c.Args().Slice()
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			args = append(args, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !known[name] {
			return nil, nil, fmt.Errorf("cache %s: unknown flag %s", c.Command.Name, a)
		}
		if !hasVal {
			if i+1 >= len(rest) {
				return nil, nil, fmt.Errorf("cache %s: flag %s needs a value", c.Command.Name, a)
			}
			i++
			val = rest[i]
		}
		vals[name] = val
	}
	return args, vals, nil
}

func oneArg(c *cli.Context, name string) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("cache %s: want one argument %s, got %d", c.Command.Name, name, c.NArg())
	}
	return c.Args().First(), nil
}

func cacheInfo(w io.Writer, dir string, asJSON bool) error {
	m, err := store.ReadManifest(dir)
	if err != nil {
		return err
	}
	r, err := store.Open(dir, store.ReadOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	if asJSON {
		b, _ := json.MarshalIndent(m, "", "  ")
		fmt.Fprintln(w, string(b))
		return nil
	}
	fmt.Fprintf(w, "cache        %s\n", dir)
	fmt.Fprintf(w, "fingerprint  %s\n", m.Fingerprint)
	fmt.Fprintf(w, "model        %s\n", m.Model)
	fmt.Fprintf(w, "embeddings   dim %d, %s, %d view(s) per image, normalised %v\n", m.Dim, m.DType, m.Views, m.Normalized)
	fmt.Fprintf(w, "created      %s\n", m.Created)
	printProducers(w, m, r.Parts())
	type agg struct{ parts, rows, samples, rejects int }
	splits := map[string]*agg{}
	var bytes int64
	for _, p := range r.Parts() {
		a := splits[p.Split]
		if a == nil {
			a = &agg{}
			splits[p.Split] = a
		}
		a.parts++
		a.rows += p.N
		a.samples += p.Marker.Samples
		a.rejects += p.Marker.Rejects
		bytes += p.Marker.Size
	}
	names := make([]string, 0, len(splits))
	for n := range splits {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "%-10s %8s %12s %12s %10s\n", "split", "parts", "images", "rows", "rejects")
	for _, n := range names {
		a := splits[n]
		fmt.Fprintf(w, "%-10s %8d %12d %12d %10d\n", n, a.parts, a.samples-a.rejects, a.rows, a.rejects)
	}
	fmt.Fprintf(w, "parts on disk %s; index: %s\n", humanBytes(bytes), map[bool]string{true: "present", false: "none (litcache cache index)"}[store.HasIndex(dir)])
	// The reasons for rejection, most frequent first.
	reasons := map[string]int{}
	for _, p := range r.Parts() {
		if p.Marker.RejectLines() == 0 {
			continue
		}
		lines, err := store.ReadRejects(dir, p.Name)
		if err != nil {
			return err
		}
		for _, l := range lines {
			reasons[reasonClass(l)]++
		}
	}
	if len(reasons) > 0 {
		type rc struct {
			r string
			n int
		}
		var rs []rc
		for r, n := range reasons {
			rs = append(rs, rc{r, n})
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].n > rs[j].n || rs[i].n == rs[j].n && rs[i].r < rs[j].r })
		fmt.Fprintln(w, "rejects by reason:")
		for _, x := range rs {
			fmt.Fprintf(w, "  %6d  %s\n", x.n, x.r)
		}
	}
	return nil
}

// printProducers prints the producer (backend, precision, JPEG decoder) of
// the cache's rows, and each one with its share when the parts mix them.
func printProducers(w io.Writer, m store.Manifest, parts []*store.Part) {
	type share struct {
		p           store.Producer
		parts, rows int
		allowed     bool
	}
	var shares []*share
	at := map[string]*share{}
	for _, p := range parts {
		k := p.Marker.Producer.Key()
		s := at[k]
		if s == nil {
			s = &share{p: p.Marker.Producer}
			at[k] = s
			shares = append(shares, s)
		}
		s.parts++
		s.rows += p.N
		s.allowed = s.allowed || p.Marker.MixedProducersAllowed
	}
	fmt.Fprintf(w, "producer     %s\n", m.Producer)
	if len(shares) < 2 {
		return
	}
	fmt.Fprintf(w, "producers    %d: the cache mixes them\n", len(shares))
	for _, s := range shares {
		note := ""
		if s.allowed {
			note = " (written with --allow-mixed-producers)"
		}
		fmt.Fprintf(w, "             %s: %d parts, %d rows%s\n", s.p, s.parts, s.rows, note)
	}
}

// producerList is "cpu/float32/go: 3 parts, cuda/bf16/nvjpeg: 1 part".
func producerList(pc []store.ProducerCount) string {
	var parts []string
	for _, c := range pc {
		parts = append(parts, fmt.Sprintf("%s: %d parts, %d rows", c.Producer.Key(), c.Parts, c.Rows))
	}
	return strings.Join(parts, "; ")
}

// reasonClass shortens a reject to its kind: a member left out with why,
// the damage that ended a shard, or the part of a sample's reason before
// its first colon.
func reasonClass(rj store.Reject) string {
	switch rj.Kind {
	case store.KindMember:
		return "member left out: " + rj.Reason
	case store.KindDamage:
		return "shard unreadable part-way (samples after it lost)"
	}
	r := rj.Reason
	if i := strings.Index(r, ":"); i > 0 {
		return r[:i]
	}
	return r
}

// cacheGet prints key's rows on w as JSON lines; notes go to errw, so that
// w holds only JSON.
func cacheGet(w, errw io.Writer, dir, key string) error {
	r, err := store.Open(dir, store.ReadOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	loc, err := r.Lookup(key)
	if errors.Is(err, store.ErrNoIndex) || errors.Is(err, store.ErrStaleIndex) {
		// Without a usable index, scan (slow on a big cache; says so).
		fmt.Fprintf(errw, "cache get: %v; scanning the parts\n", err)
		loc, err = r.Scan(key)
	}
	if err != nil {
		return err
	}
	p := loc.Part
	for v := 0; v < loc.Views; v++ {
		i := loc.Row + v
		b, _ := json.Marshal(map[string]any{
			"key": p.Key(i), "part": p.Name, "row": i, "view": p.Views()[i], "label": p.Labels()[i],
			"caption": p.Caption(i), "emb": p.Row(i, nil),
		})
		fmt.Fprintln(w, string(b))
	}
	return nil
}

func humanBytes(n int64) string {
	const u = 1024
	if n < u {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= u && i < 4 {
		f /= u
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "BKMGT"[i])
}
