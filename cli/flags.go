package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/tokenizer"
	"github.com/litcache/litcache/internal/tokenizer/clipvocab"
	"github.com/litcache/litcache/internal/tower"
	"github.com/litcache/litcache/stages/tune"
)

// The flags below mean the same in every command that has them (issue 16):
//
//	--model CONFIG             the CLIP model config (built-in name or OpenCLIP/HF JSON);
//	                           in extract, embed and cache fingerprint any image tower of internal/tower
//	--pool P                   the image tower's pooling (extract, embed, cache fingerprint)
//	--weights FILE|random:SEED the weights the command starts from
//	--vocab FILE               BPE vocabulary; default $LITCACHE_VOCAB, else CLIP's, built in
//	--threads N                in-process parallelism (0 = all cores)
//	--worker i --workers n     this machine among n (array jobs); nothing else
//	--batch-size N             rows per step or per tower call
//	--device cpu|cuda|auto     default auto; --gpu N picks the GPU
//	--split NAME               store.SelectSplit, the one rule of every reader
//
// Each is built by one function here so that its name, usage and default
// are written once.

// modelFlag is --model CONFIG; what says what the command takes from it.
func modelFlag(what string) *cli.StringFlag {
	return &cli.StringFlag{Name: "model", Usage: "CLIP model `CONFIG`: a built-in name (" +
		strings.Join(clip.BuiltinNames(), ", ") + ") or an OpenCLIP/HF config JSON; " + what}
}

// towerModelFlag is --model CONFIG of the commands that run an image tower
// (extract, embed, cache fingerprint): any family of the registry
// (internal/tower), listed in the help.
func towerModelFlag(what string) *cli.StringFlag {
	return &cli.StringFlag{Name: "model", Usage: "image tower `CONFIG`: a built-in name (" +
		strings.Join(tower.Builtins(), ", ") + ") or a config JSON (OpenCLIP/HF CLIP, DINOv2, torchvision Swin); " + what}
}

// poolFlag is --pool: how the tower's tokens become one embedding.
func poolFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "pool", Usage: "pooling `P`: cls, mean or cls+mean for DINOv2 (cls+mean, twice as wide, is its linear-probe recipe); CLIP has cls only, Swin mean only",
		DefaultText: "cls for CLIP and DINOv2, mean for Swin"}
}

// weightsFlag is --weights FILE|random:SEED; what says whose weights, more
// what else the command takes.
func weightsFlag(what, more string) *cli.StringFlag {
	return &cli.StringFlag{Name: "weights", Usage: what + ": a safetensors `FILE` (OpenCLIP or HF names)" + more +
		", or random:SEED for a random initialisation"}
}

// towerWeightsFlag is the image tower's --weights FILE|random:SEED.
func towerWeightsFlag(what string) *cli.StringFlag {
	return &cli.StringFlag{Name: "weights", Usage: what + ": a safetensors `FILE` under the family's names (CLIP: OpenCLIP or HF; DINOv2: Meta's or HF; Swin: torchvision's or timm's)" +
		", or random:SEED for a random initialisation"}
}

// vocabFlag is --vocab FILE. Its environment default is read by vocabPath,
// not by urfave/cli, so that "given on the command line" stays tellable from
// "set in the environment" (a --vocab that would be ignored is an error; a
// $LITCACHE_VOCAB that would be ignored is not).
func vocabFlag(use string) *cli.StringFlag {
	return &cli.StringFlag{Name: "vocab", Usage: "BPE vocabulary `FILE`" + use,
		DefaultText: "$" + tokenizer.EnvVocab + ", else CLIP's " + clipvocab.Name + ", built in"}
}

// vocabPath is the vocabulary the command reads: --vocab, else
// $LITCACHE_VOCAB, else "" (CLIP's built-in vocabulary).
func vocabPath(c *cli.Context) string {
	if v := c.String("vocab"); v != "" {
		return v
	}
	return os.Getenv(tokenizer.EnvVocab)
}

// threadsFlag is --threads N, in-process parallelism.
func threadsFlag(what string) *cli.IntFlag {
	return &cli.IntFlag{Name: "threads", Usage: what + ": `N` goroutines", DefaultText: "all cores"}
}

// splitFlag is a reader's --split (or --val-split): the one rule of
// store.SelectSplit in the reader's role.
func splitFlag(name, role, what string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Usage: "split `NAME` of " + what + " to read",
		DefaultText: fmt.Sprintf("the cache's only split, or %q when it holds several", role)}
}

// commandPath is the running command's name with its parents': "cache
// fingerprint" (urfave/cli's FullName leaves the parents out).
func commandPath(c *cli.Context) string {
	var names []string
	for _, x := range c.Lineage() {
		if x.Command != nil && x.Command.Name != "" && (x.App == nil || x.Command.Name != x.App.Name) {
			names = append([]string{x.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// usageLine is the first line of the command's usage text.
func usageLine(c *cli.Context) string {
	cmd := c.Command
	name := "litcache " + commandPath(c)
	if line, _, _ := strings.Cut(strings.TrimSpace(cmd.UsageText), "\n"); line != "" {
		name = strings.TrimSpace(line)
	} else if cmd.ArgsUsage != "" {
		name += " " + cmd.ArgsUsage
	}
	return name
}

// usageError is a flag error of the command in two lines: the problem, then
// the usage line (not the whole help, which buries the one line that matters).
func usageError(c *cli.Context, format string, args ...any) error {
	return fmt.Errorf("%s: %s\nusage: %s   (litcache %s --help for every flag)",
		commandPath(c), fmt.Sprintf(format, args...), usageLine(c), commandPath(c))
}

// given reports a flag set on the command line (or by the environment
// variables urfave/cli reads for it) to a non-empty value.
func given(c *cli.Context, name string) bool {
	if !c.IsSet(name) {
		return false
	}
	if v, ok := c.Value(name).(string); ok {
		return v != ""
	}
	return true
}

// withRequired marks the named flags of cmd as required: their usage says
// so, and the command stops with usageError naming the first one missing.
// (urfave/cli's Required prints the whole help instead.) The check runs
// before anything else the action does: before a file is read or a device
// opened.
func withRequired(cmd *cli.Command, names ...string) *cli.Command {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, f := range cmd.Flags {
		if !want[f.Names()[0]] {
			continue
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Usage += " (required)"
		case *cli.StringSliceFlag:
			f.Usage += " (required)"
		case *cli.IntFlag:
			f.Usage += " (required)"
		default:
			panic(fmt.Sprintf("cli: withRequired: --%s is a %T", f.Names()[0], f))
		}
		delete(want, f.Names()[0])
	}
	if len(want) > 0 {
		panic(fmt.Sprintf("cli: withRequired: %s has no flag %v", cmd.Name, want))
	}
	act := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		for _, n := range names {
			if !given(c, n) {
				return usageError(c, "--%s is required", n)
			}
		}
		return act(c)
	}
	return cmd
}

// dependency is a flag that does something only with another setting.
type dependency struct {
	flag string // the flag that depends
	ok   bool   // whether the setting it needs is there
	why  string // when it does nothing, as the error says it: "without --synthetic"
}

// checkDependencies refuses a flag given where it would do nothing, so that
// a typo or a misunderstanding is not silently ignored.
func checkDependencies(c *cli.Context, deps ...dependency) error {
	for _, d := range deps {
		if !d.ok && c.IsSet(d.flag) {
			return usageError(c, "--%s does nothing %s", d.flag, d.why)
		}
	}
	return nil
}

// noArgs refuses positional arguments: every input is a flag.
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unexpected argument %q (all inputs are flags)", c.Args().First())
	}
	return nil
}

// onUsageError prints a flag parse error (an unknown flag, a bad number) as
// usageError does, instead of urfave/cli's whole help.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError(c, "%v", err)
}

// setUsageErrors gives every command and subcommand onUsageError.
func setUsageErrors(cmds []*cli.Command) {
	for _, cmd := range cmds {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = onUsageError
		}
		setUsageErrors(cmd.Subcommands)
	}
}

// checkPaths stats the files and folders the named flags give (when given;
// --vocab also from $LITCACHE_VOCAB; --weights unless random or random:SEED), so that a
// typo is reported before a device is opened or any work starts.
func checkPaths(c *cli.Context, names ...string) error {
	for _, n := range names {
		v := c.String(n)
		if n == "vocab" {
			v = vocabPath(c)
		}
		if _, random, _ := clip.ParseRandomWeights(v); v == "" || (n == "weights" && (random || v == tune.RandomInit)) {
			continue
		}
		if _, err := os.Stat(v); err != nil {
			return fmt.Errorf("%s: --%s: %w", commandPath(c), n, err)
		}
	}
	return nil
}
