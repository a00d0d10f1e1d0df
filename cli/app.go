// Package cli holds litcache's commands: flags become each stage's Config, and
// the stages do the work. cli/litcache/main.go builds the binary.
package cli

import (
	"github.com/urfave/cli/v2"
)

// Version is set at build time with -ldflags "-X github.com/litcache/litcache/cli.Version=...".
var Version = "dev"

// App returns the litcache command line application.
func App() *cli.App {
	app := &cli.App{
		Name:    "litcache",
		Usage:   "LiT tuning of CLIP text towers against cached image embeddings",
		Version: Version,
		Description: `litcache runs a frozen image tower (CLIP, DINOv2 or Swin) once over a
dataset, keeps the embeddings in a cache, and tunes only a CLIP text tower
against that cache (LiT: locked-image text tuning, arXiv 2111.07991).

   litcache demo                      # the whole flow on a synthetic mini-iNat
   litcache doctor                    # what this machine offers (BLAS, JPEG, GPU)`,
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			demoCommand(),
			captionCommand(),
			extractCommand(),
			cacheCommand(),
			tuneCommand(),
			sweepCommand(),
			evalCommand(),
			tokenizeCommand(),
			embedCommand(),
			bundleCommand(),
			predictCommand(),
			serveCommand(),
			benchCommand(),
			doctorCommand(),
		},
	}
	setUsageErrors(app.Commands)
	quietBoolDefaults(app.Commands)
	return app
}

// quietBoolDefaults drops urfave/cli's "(default: false)" from every
// switch that is off unless given: it says nothing the flag's name does not.
func quietBoolDefaults(cmds []*cli.Command) {
	for _, cmd := range cmds {
		for _, f := range cmd.Flags {
			if b, ok := f.(*cli.BoolFlag); ok && !b.Value {
				b.DisableDefaultText = true
			}
		}
		quietBoolDefaults(cmd.Subcommands)
	}
}
