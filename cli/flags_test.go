package cli

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/stages/sweep"
	"github.com/litcache/litcache/stages/tune"
)

// command finds a command of the app by its path ("cache fingerprint").
func command(t *testing.T, path string) *cli.Command {
	t.Helper()
	cmds := App().Commands
	var cmd *cli.Command
	for _, name := range strings.Fields(path) {
		cmd = nil
		for _, c := range cmds {
			if c.Name == name {
				cmd = c
			}
		}
		if cmd == nil {
			t.Fatalf("no command %q", path)
		}
		cmds = cmd.Subcommands
	}
	return cmd
}

// flagsOf maps a command's flag names to the flags.
func flagsOf(cmd *cli.Command) map[string]cli.Flag {
	m := map[string]cli.Flag{}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			m[n] = f
		}
	}
	return m
}

// allCommands walks every command and subcommand with its path.
func allCommands(cmds []*cli.Command, prefix string, fn func(path string, cmd *cli.Command)) {
	for _, c := range cmds {
		fn(prefix+c.Name, c)
		allCommands(c.Subcommands, prefix+c.Name+" ", fn)
	}
}

// TestRenamedFlags: the one vocabulary of issue 16. Each old name is gone
// (renamed, not aliased) and its new name is there.
func TestRenamedFlags(t *testing.T) {
	for _, tc := range []struct {
		cmd      string
		gone, as []string
	}{
		{"tune", []string{"text-model", "init-text"}, []string{"model", "weights", "batch-size", "device", "gpu", "vocab"}},
		{"sweep", []string{"text-model", "init-text"}, []string{"model", "weights", "batch-size", "device", "gpu", "vocab"}},
		{"eval", []string{"text", "text-model"}, []string{"weights", "model", "device", "gpu", "vocab"}},
		{"embed", []string{"batch"}, []string{"batch-size", "model", "weights", "device", "gpu", "vocab"}},
		{"extract", []string{"decoders", "seed"}, []string{"threads", "batch-size", "model", "weights", "worker", "workers", "device", "gpu"}},
		{"caption", []string{"workers"}, []string{"threads", "vocab"}},
		{"demo", []string{"workers"}, []string{"threads", "batch-size"}},
		{"tokenize", nil, []string{"vocab"}},
		{"cache fingerprint", []string{"seed"}, []string{"model", "weights"}},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			fl := flagsOf(command(t, tc.cmd))
			for _, n := range tc.gone {
				if fl[n] != nil {
					t.Errorf("--%s is still there", n)
				}
			}
			for _, n := range tc.as {
				if fl[n] == nil {
					t.Errorf("no --%s", n)
				}
			}
		})
	}
	// Every --device defaults to auto, embed's included.
	allCommands(App().Commands, "", func(path string, cmd *cli.Command) {
		if f, ok := flagsOf(cmd)["device"].(*cli.StringFlag); ok && f.Value != "auto" {
			t.Errorf("%s --device defaults to %q", path, f.Value)
		}
	})
	// An old name is refused in two lines naming it, not with the whole help.
	out, errw, err := runCommand(t, "tune", "--text-model", "ViT-B-32")
	if err == nil || !strings.Contains(err.Error(), "text-model") || strings.Count(err.Error(), "\n") != 1 || out+errw != "" {
		t.Errorf("tune --text-model: err %v\nstdout %q stderr %q", err, out, errw)
	}
}

// TestMissingRequiredFlag: a command without a required flag says which in
// one line, then its usage line, and prints nothing else (not the help).
func TestMissingRequiredFlag(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		line, use string
	}{
		{[]string{"tune"}, "tune: --cache is required", "usage: litcache tune --cache DIR"},
		{[]string{"tune", "--cache", "c"}, "tune: --classes is required", "usage: litcache tune "},
		{[]string{"sweep", "--cache", "c", "--classes", "k"}, "sweep: --out is required", "usage: litcache sweep "},
		{[]string{"eval", "--cache", "c", "--classes", "k"}, "eval: --weights is required", "usage: litcache eval "},
		{[]string{"extract", "--model", "clip-tiny"}, "extract: --shards is required", "usage: litcache extract "},
		{[]string{"extract", "--shards", "x.tar", "--model", "clip-tiny", "--cache", "c"}, "extract: --weights is required", "usage: litcache extract "},
		{[]string{"embed", "--model", "clip-tiny"}, "embed: --weights is required", "usage: litcache embed "},
		{[]string{"cache", "fingerprint", "--model", "clip-tiny"}, "cache fingerprint: --weights is required", "usage: litcache cache fingerprint "},
		{[]string{"tune", "--cache", "", "--classes", "k", "--out", "o"}, "tune: --cache is required", "usage: litcache tune "},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errw, err := runCommand(t, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 2 || lines[0] != tc.line || !strings.HasPrefix(lines[1], tc.use) {
				t.Errorf("error:\n%s\nwant %q, then a line starting %q", err, tc.line, tc.use)
			}
			if out != "" || errw != "" {
				t.Errorf("printed besides the error:\nstdout %s\nstderr %s", out, errw)
			}
		})
	}
	// The help says which flags are required.
	if u := flagsOf(command(t, "tune"))["cache"].(*cli.StringFlag).Usage; !strings.HasSuffix(u, "(required)") {
		t.Errorf("tune --cache usage %q does not say it is required", u)
	}
}

// TestFlagsThatNeedAnother: a flag that does nothing without another is an
// error naming both, before any work (and before a device opens).
func TestFlagsThatNeedAnother(t *testing.T) {
	dir := t.TempDir()
	tune := []string{"tune", "--cache", dir, "--classes", dir, "--out", dir}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"caption", "--species", "5", "--categories", "c.csv", "--stats"}, "--species does nothing without --synthetic"},
		{[]string{"caption", "--image-size", "32", "--out", dir}, "--image-size does nothing without --synthetic"},
		{[]string{"caption", "--train-per-species", "3", "--out", dir}, "--train-per-species does nothing without --synthetic"},
		{[]string{"caption", "--val-per-species", "3", "--out", dir}, "--val-per-species does nothing without --synthetic"},
		{[]string{"caption", "--quality", "80", "--json", "x.json", "--out", dir}, "--quality does nothing without --max-size"},
		{[]string{"caption", "--vocab", "v.txt", "--categories", "c.csv", "--preview", "1"}, "--vocab does nothing without --stats"},
		{[]string{"caption", "--template", "{name}", "--fields", "name", "--out", dir}, "--template and --fields exclude each other"},
		{append(tune, "--val-split", "val"), "--val-split does nothing without --val-cache"},
		{append(tune, "--eval-templates", "openai"), "--eval-templates does nothing without --val-cache"},
		{append(tune, "--cooldown-steps", "10"), "--cooldown-steps does nothing without --schedule const-cooldown"},
		{append(tune, "--cooldown-power", "2"), "--cooldown-power does nothing without --schedule const-cooldown"},
		{append(tune, "--cooldown-end-lr", "0.1"), "--cooldown-end-lr does nothing without --schedule const-cooldown"},
		{append(tune, "--device", "cpu", "--gpu", "1"), "--gpu does nothing with --device cpu"},
		{[]string{"sweep", "--cache", dir, "--classes", dir, "--out", dir, "--cooldown-steps", "10"}, "--cooldown-steps does nothing without --schedule const-cooldown"},
		{[]string{"embed", "--model", "clip-tiny", "--weights", "random:1", "--ids", "x", "--vocab", "v"}, "--vocab does nothing without --text"},
		{[]string{"tokenize", "--bpe", "--context", "5"}, "--context does nothing with --bpe"},
		{[]string{"eval", "--cache", dir, "--classes", dir, "--weights", "random:1", "--subject", "name"}, "--subject does nothing with --templates caption"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errw, err := runCommand(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
			if out != "" || errw != "" {
				t.Errorf("work started before the flag error:\nstdout %s\nstderr %s", out, errw)
			}
		})
	}
	// With what it needs, the same flag is fine (here: only the next check fails).
	_, _, err := runCommand(t, append(tune, "--schedule", "const-cooldown", "--cooldown-steps", "10")...)
	if err != nil && strings.Contains(err.Error(), "does nothing") {
		t.Errorf("--cooldown-steps with --schedule const-cooldown: %v", err)
	}
}

// TestSweepTakesEveryTuneFlag: sweep has each of tune's flags (but --resume,
// which sweep does by itself), of the same kind and default, the grid axes
// as comma-separated lists.
func TestSweepTakesEveryTuneFlag(t *testing.T) {
	tuneFl, sweepFl := flagsOf(command(t, "tune")), flagsOf(command(t, "sweep"))
	axes := map[string]bool{}
	for _, f := range tuneFlags(tune.DefaultConfig()) {
		if f.axis != nil {
			axes[f.flag.Names()[0]] = true
		}
	}
	if want := []string{"batch-size", "cache", "classes", "epochs", "lr", "schedule", "seed", "val-cache", "warmup", "wd", "weights"}; len(axes) != len(want) {
		t.Errorf("grid axes %v, want %v", axes, want)
	}
	for name, tf := range tuneFl {
		if name == "resume" || name == "help" || name == "h" {
			continue
		}
		sf := sweepFl[name]
		switch {
		case sf == nil:
			t.Errorf("sweep lacks tune's --%s", name)
		case axes[name]:
			if _, ok := sf.(*cli.StringFlag); !ok {
				t.Errorf("sweep --%s is a %T, want a list (string)", name, sf)
			}
		case reflect.TypeOf(sf) != reflect.TypeOf(tf):
			t.Errorf("sweep --%s is a %T, tune's a %T", name, sf, tf)
		case name != "out" && flagDefault(sf) != flagDefault(tf):
			t.Errorf("sweep --%s defaults to %q, tune's to %q", name, flagDefault(sf), flagDefault(tf))
		}
	}
}

// TestSweepConfigMatchesTune: every non-axis flag given to sweep reaches each
// member as it reaches tune's config, and the axes become the grid.
func TestSweepConfigMatchesTune(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--cache", dir, "--split", "a", "--val-cache", dir, "--val-split", "b", "--classes", dir,
		"--captions", "cache", "--model", "clip-tiny", "--weights", "random:4", "--vocab", dir, "--context", "7",
		"--schedule", "const-cooldown", "--cooldown-steps", "3", "--cooldown-power", "2", "--cooldown-end-lr", "1e-5",
		"--beta1", "0.8", "--beta2", "0.9", "--eps", "1e-7", "--grad-clip", "1.5", "--logit-scale", "2.5",
		"--image-head", "--no-dedup", "--no-trim", "--checkpoint-every", "9", "--stop-after", "11",
		"--eval-templates", "openai", "--expect-fingerprint", "sha256:x", "--quiet", "--out", dir}
	axes := []string{"--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--warmup", "5", "--wd", "0.1", "--seed", "3"}
	capture := func(cmd *cli.Command, run func(c *cli.Context) error) {
		t.Helper()
		cmd.Action = run
		app := &cli.App{Commands: []*cli.Command{cmd}, Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{}}
		if err := app.RunContext(context.Background(), append(append([]string{"litcache", cmd.Name}, args...), axes...)); err != nil {
			t.Fatal(err)
		}
	}
	var fromTune tune.Config
	tc := tuneCommand()
	capture(tc, func(c *cli.Context) error {
		var err error
		fromTune, err = tuneConfig(c, tune.DefaultConfig(), tuneFlags(tune.DefaultConfig()), false)
		return err
	})
	var fromSweep sweep.Config
	sc := sweepCommand()
	capture(sc, func(c *cli.Context) error {
		var err error
		fromSweep, err = sweepConfig(c, tuneFlags(tune.DefaultConfig()))
		return err
	})
	if len(fromSweep.Grid.Warmup) != 1 {
		t.Fatalf("grid %+v, want one member", fromSweep.Grid)
	}
	member := sweep.Members(fromSweep.Base, fromSweep.Grid)[0].TuneConfig(fromSweep.Base, dir)
	fromTune.Out, member.Out = "", ""
	fromTune.Log, member.Log = nil, nil
	if !reflect.DeepEqual(fromTune, member) {
		t.Errorf("sweep's member config differs from tune's for the same flags:\ntune  %+v\nsweep %+v", fromTune, member)
	}
	if fromTune.Beta2 != 0.9 || fromTune.Weights != "random:4" || fromTune.Split != "a" || !fromTune.Quiet {
		t.Errorf("tune config %+v does not hold the flags", fromTune)
	}
}

// TestDeviceMessage: every backend choice is announced on one line saying
// why. The CPU paths are checked here; the GPU ones need a GPU.
func TestDeviceMessage(t *testing.T) {
	var log bytes.Buffer
	be, err := openBackend(deviceChoice{device: "cpu"}, cuda.F32, &log)
	if err != nil || be == nil {
		t.Fatal(err)
	}
	if want := "device: cpu (--device cpu); " + be.Name() + "\n"; log.String() != want {
		t.Errorf("--device cpu: %q, want %q", log.String(), want)
	}
	if cuda.Probe().DriverErr == nil {
		t.Skip("a CUDA driver is installed: the no-driver messages are not seen here")
	}
	log.Reset()
	if _, err := openBackend(deviceChoice{device: "auto"}, cuda.BF16, &log); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^device: cpu \(no CUDA driver: libcuda.so.1 not found\); cpu/float32 \(.+\)\n$`).MatchString(log.String()) {
		t.Errorf("--device auto without a driver: %q", log.String())
	}
	log.Reset()
	if _, err := openBackend(deviceChoice{device: "cuda", gpu: 1}, cuda.BF16, &log); err == nil ||
		!strings.Contains(err.Error(), "--device cuda: no CUDA driver: libcuda.so.1 not found; use --device cpu or auto") || log.Len() != 0 {
		t.Errorf("--device cuda without a driver: err %v, log %q", err, log.String())
	}
	// A command prints the line on stderr when it starts (here tokenize has
	// no device; eval does, and fails afterwards on the empty cache).
	dir := t.TempDir()
	_, errw, _ := runCommand(t, "eval", "--cache", dir, "--classes", dir, "--weights", "random:1", "--model", "clip-tiny")
	if !strings.HasPrefix(errw, "device: cpu (no CUDA driver") {
		t.Errorf("eval's stderr does not start with the device line:\n%s", errw)
	}
}

// TestGPUFlag: --gpu N, by default $LOCAL_RANK, else 0; checked before use.
func TestGPUFlag(t *testing.T) {
	pick := func(env string, args ...string) (deviceChoice, error) {
		t.Helper()
		t.Setenv("LOCAL_RANK", env)
		var d deviceChoice
		cmd := &cli.Command{Name: "x", Flags: deviceFlags("test"), Action: func(c *cli.Context) (err error) {
			d, err = deviceFromFlags(c)
			return err
		}}
		app := &cli.App{Commands: []*cli.Command{cmd}, Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{}}
		err := app.RunContext(context.Background(), append([]string{"litcache", "x"}, args...))
		return d, err
	}
	for _, tc := range []struct {
		env  string
		args []string
		want deviceChoice
		err  string
	}{
		{"", nil, deviceChoice{"auto", 0}, ""},
		{"3", nil, deviceChoice{"auto", 3}, ""},
		{"3", []string{"--gpu", "5", "--device", "cuda"}, deviceChoice{"cuda", 5}, ""},
		{"3", []string{"--device", "cpu"}, deviceChoice{"cpu", 3}, ""},
		{"x", nil, deviceChoice{}, `$LOCAL_RANK="x"`},
		{"", []string{"--gpu", "-1"}, deviceChoice{}, "--gpu -1 < 0"},
		{"", []string{"--device", "tpu"}, deviceChoice{}, `--device "tpu": want cpu, cuda or auto`},
		{"", []string{"--device", "cpu", "--gpu", "0"}, deviceChoice{}, "--gpu does nothing with --device cpu"},
	} {
		t.Run(fmt.Sprint(tc.env, tc.args), func(t *testing.T) {
			d, err := pick(tc.env, tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || d != tc.want {
				t.Fatalf("got %+v %v, want %+v", d, err, tc.want)
			}
		})
	}
}

// TestHelpStatesDefaultsOnce: no flag's help gives its default twice (once
// in the text, once as urfave/cli's "(default: ...)"), and every reader's
// --split states the one rule.
func TestHelpStatesDefaultsOnce(t *testing.T) {
	inText := regexp.MustCompile(`(?i)default|\((0|-1) ?[=:]|\(-?1 =`)
	allCommands(App().Commands, "", func(path string, cmd *cli.Command) {
		for _, f := range cmd.Flags {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				continue
			}
			shown := f.String()
			if strings.Contains(shown, "(default:") && inText.MatchString(df.GetUsage()) {
				t.Errorf("%s --%s states its default twice: %s", path, f.Names()[0], shown)
			}
			if strings.Count(shown, "default") > 1 {
				t.Errorf("%s --%s: %s", path, f.Names()[0], shown)
			}
		}
	})
	for _, tc := range []struct{ cmd, flag, role string }{
		{"tune", "split", "train"}, {"tune", "val-split", "val"},
		{"sweep", "split", "train"}, {"sweep", "val-split", "val"},
		{"eval", "split", "val"},
	} {
		shown := flagsOf(command(t, tc.cmd))[tc.flag].String()
		if want := fmt.Sprintf(`(default: the cache's only split, or %q when it holds several)`, tc.role); !strings.Contains(shown, want) {
			t.Errorf("%s --%s: %s\nwant it to state %s", tc.cmd, tc.flag, shown, want)
		}
	}
}

// TestVocabFromEnvironment: $LITCACHE_VOCAB is the vocabulary of every
// command that tokenizes when --vocab is not given (a missing file there is
// named before any work).
func TestVocabFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LITCACHE_VOCAB", dir+"/env-vocab.txt.gz")
	for _, args := range [][]string{
		{"tune", "--cache", dir, "--classes", dir, "--out", dir},
		{"sweep", "--cache", dir, "--classes", dir, "--out", dir},
		{"eval", "--cache", dir, "--classes", dir, "--weights", "random:1", "--model", "clip-tiny"},
		{"tokenize"},
		{"embed", "--model", "ViT-B-32", "--weights", "random:1", "--text", "a bird", "--device", "cpu"},
		{"caption", "--categories", dir + "/none.csv", "--stats"},
	} {
		_, _, err := runCommand(t, args...)
		if err == nil || !strings.Contains(err.Error(), "env-vocab.txt.gz") {
			t.Errorf("%s: err %v, want one naming $LITCACHE_VOCAB's file", args[0], err)
		}
	}
}

// TestSweepMemberFromArray: sweep's member is the array task's index, read
// as extract reads its worker index (SLURM_ARRAY_TASK_ID minus
// SLURM_ARRAY_TASK_MIN, or JOB_COMPLETION_INDEX); --member wins.
func TestSweepMemberFromArray(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want int
		err  string
	}{
		{nil, nil, -1, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"}, nil, 1, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}, nil, 2, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3"}, []string{"--member", "0"}, 0, ""},
		{map[string]string{"JOB_COMPLETION_INDEX": "1", "LITCACHE_WORKERS": "3"}, nil, 1, ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, nil, 0, "array task 3 (of 4) is outside the grid of 3 members"},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"}, nil, 0, `$SLURM_ARRAY_TASK_ID="x"`},
	} {
		t.Run(fmt.Sprint(tc.env, tc.args), func(t *testing.T) {
			for _, k := range []string{"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX", "LITCACHE_WORKERS"} {
				t.Setenv(k, tc.env[k])
			}
			var got int
			cmd := sweepCommand()
			cmd.Action = func(c *cli.Context) (err error) {
				got, err = sweepMember(c, 3)
				return err
			}
			app := &cli.App{Commands: []*cli.Command{cmd}, Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{}}
			err := app.RunContext(context.Background(), append([]string{"litcache", "sweep"}, tc.args...))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("member %d %v, want %d", got, err, tc.want)
			}
		})
	}
}

// TestEveryCommandHasAnExample: each command's and subcommand's --help
// shows at least one command line with real arguments (no DIR, FILE or
// [option] placeholders), in its usage text or its description.
func TestEveryCommandHasAnExample(t *testing.T) {
	placeholder := regexp.MustCompile(`\[|\b(DIR|FILE|KEY|CONFIG|FP|OUT|NAME|PATH|PATTERN|RUN|FOLDER|CACHE|VAL|SEED|ROOT|TEXT)\b`)
	allCommands(App().Commands, "", func(path string, cmd *cli.Command) {
		if cmd.Name == "help" {
			return
		}
		for _, line := range strings.Split(cmd.UsageText+"\n"+cmd.Description, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "printf ") || strings.HasPrefix(line, "echo ") {
				line = line[strings.Index(line, "| ")+2:] // a pipeline into the command
			}
			if !strings.HasPrefix(line, "litcache "+path) {
				continue
			}
			if cmdPart, _, _ := strings.Cut(line, "#"); !placeholder.MatchString(strings.ReplaceAll(cmdPart, "$(", "")) {
				return
			}
		}
		t.Errorf("litcache %s --help shows no example", path)
	})
}
