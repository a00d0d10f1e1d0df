// Command litcache: LiT tuning of CLIP-style text towers against cached image embeddings.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/litcache/litcache/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.App().RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "litcache:", err)
		os.Exit(1)
	}
}
