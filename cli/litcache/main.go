// Command litcache: LiT tuning of CLIP-style text towers against cached image embeddings.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/litcache/litcache/cli"
)

func main() { os.Exit(run(os.Args, os.Stderr)) }

// run runs the app and returns the exit status: 0, 1 on an error, or 128 +
// the signal's number (130 for SIGINT, 143 for SIGTERM) when the run was
// interrupted, as shells and other CLI tools report it. The first signal
// cancels the context: every stage then writes what it has (tune its
// checkpoint, extract the parts whose rows are embedded) and returns, and
// only then does the process exit. A second signal ends it at once.
func run(args []string, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	got := make(chan os.Signal, 1)
	go func() {
		select {
		case s := <-sigs:
			got <- s
			fmt.Fprintf(stderr, "litcache: %v: stopping after the work in hand is saved (again to quit at once)\n", s)
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			cancel()
		case <-ctx.Done():
		}
	}()
	err := cli.App().RunContext(ctx, args)
	if err != nil {
		fmt.Fprintln(stderr, "litcache:", err)
	}
	select {
	case s := <-got:
		if n, ok := s.(syscall.Signal); ok {
			return 128 + int(n)
		}
		return 130
	default:
	}
	if err != nil {
		return 1
	}
	return 0
}
