package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cli/bench"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "measure litcache's speed, each figure beside a reference measured in the same run",
		ArgsUsage: "[NAME...]",
		Description: `Runs the named benchmarks (all when none is named; a name matches by prefix)
and prints one line per figure: name, value, unit, and the ratio to its
reference measured in the same run with the same statistic: a ceiling such as
OpenBLAS sgemm, a peer such as gonum, or an ablation named as one.

Examples:
   litcache bench --list
   litcache bench matmul tokenizer
   litcache bench scale --rows 2690000     # iNat2021's full size: ~5 GB in $TMPDIR`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "list", Usage: "list the benchmarks and exit"},
		},
		Subcommands: []*cli.Command{benchScaleCommand()},
		Action: func(c *cli.Context) error {
			w := c.App.Writer
			if c.Bool("list") {
				for _, b := range bench.All() {
					fmt.Fprintf(w, "%-12s %s\n", b.Name, b.Help)
				}
				return nil
			}
			benches, err := bench.Select(c.Args().Slice())
			if err != nil {
				return err
			}
			var failed []string
			for _, b := range benches {
				if err := c.Context.Err(); err != nil {
					return err
				}
				fmt.Fprintf(w, "# %s: %s\n", b.Name, b.Help)
				if err := b.Run(c.Context, func(f bench.Figure) { bench.Print(w, f) }); err != nil {
					fmt.Fprintf(c.App.ErrWriter, "bench %s: %v\n", b.Name, err)
					failed = append(failed, b.Name)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("bench: %s failed", strings.Join(failed, ", "))
			}
			return nil
		},
	}
}

// benchScaleCommand is `bench scale` with its sizes as flags (a bare
// `bench scale` among other names runs it at its defaults).
func benchScaleCommand() *cli.Command {
	d := bench.DefaultScaleOptions()
	return &cli.Command{
		Name:  "scale",
		Usage: "index, verify, tune and eval on a synthetic cache of iNat2021's shape, each phase's time and peak RSS beside its reference",
		Description: `Builds a synthetic cache through the store API (learnable class-centre
embeddings, float16, 768-d, 10,000 long-tailed classes; val scaled as
iNat2021's 100k per 2.69M train rows), then runs each phase in a child
process, cold (the cache dropped from the page cache first):

   index, verify     time vs a cold sequential read of the part files,
                     peak RSS vs the raw embedding bytes
   tune              tiny 2×128 text tower at batch 1024: time to the first
                     step, steps/s and peak RSS
   eval              val × 10,000 classes: scoring time vs the same FLOPs
                     through OpenBLAS sgemm (gonum without it), peak RSS

The cache is deleted afterwards, also on an error or Ctrl-C. The default is a
tenth of iNat2021 (minutes on two cores, ~0.5 GB of disk); --rows 2690000 is
the full size (~5 GB of disk, a few GB of memory).

Example:
   litcache bench scale --rows 2690000 --dir /scratch`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "rows", Value: d.Rows, Usage: "train rows of the synthetic cache (iNat2021: 2690000)"},
			&cli.StringFlag{Name: "dir", Usage: "folder to build the cache in", DefaultText: "$TMPDIR"},
			&cli.BoolFlag{Name: "quiet", Usage: "no status lines or progress bar"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("bench scale: unexpected argument %q (sizes are flags: --rows N)", c.Args().First())
			}
			o := d
			o.Rows, o.Dir, o.Quiet, o.Log = c.Int("rows"), c.String("dir"), c.Bool("quiet"), c.App.ErrWriter
			if err := o.Validate(); err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "# %s: %s\n", bench.Scale.Name, bench.Scale.Help)
			return o.Run(c.Context, func(f bench.Figure) { bench.Print(w, f) })
		},
	}
}
