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
   litcache bench matmul tokenizer`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "list", Usage: "list the benchmarks and exit"},
		},
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
