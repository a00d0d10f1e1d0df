package cli

import (
	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/stages/serve"
)

func serveCommand() *cli.Command {
	d := serve.DefaultConfig()
	return withRequired(&cli.Command{
		Name:  "serve",
		Usage: "an HTTP classifier over a bundle, with a page for phones and desktops",
		UsageText: `litcache serve --bundle B [--addr 127.0.0.1:8080] [options]

   litcache serve --bundle demo-out/demo.bundle.safetensors      # then open http://127.0.0.1:8080/
   litcache serve --bundle inat21.bundle.safetensors --addr 0.0.0.0:8080 --queue 128
   curl -F image=@junco.jpg 'http://127.0.0.1:8080/v1/predict?top=5&rank=genus'`,
		Description: `Serves the bundle with Go's net/http:

  POST /v1/predict   the photo as the multipart field "image" or as the raw body;
                     ?top=N (default 5), ?rank=species|genus|...|kingdom. Answers
                     {"predictions": [{"name", "common_name", "score", "id", "taxonomy"}], "rank", "ms"}
  GET  /v1/classes   the classes with their taxonomy
  GET  /healthz      {"status": "ok", ...}
  GET  /metrics      Prometheus text: requests by route and code, a latency
                     histogram, requests in flight and queued, 503s by reason
  GET  /             a page: take or choose a photo, see the top 5 with score
                     bars and the best match's taxonomy (no outside assets)

Limits: --max-upload-mb per photo; --max-megapixels, read from the photo's
header before it is decoded; --threads photos decoded at once with --queue
more waiting (beyond that: 503 with Retry-After); --timeout per request
(503 with Retry-After when it passes). Every error is JSON {"error": "..."}.
SIGTERM or Ctrl-C shuts down gracefully: requests in flight are answered.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "bundle", Usage: "classifier bundle `FILE` (from litcache bundle)"},
			&cli.StringFlag{Name: "addr", Value: d.Addr, Usage: "address to listen on (0.0.0.0:PORT for every interface)"},
			threadsFlag("photos decoded at once, and the CPU backend's parallelism"),
			&cli.IntFlag{Name: "queue", Value: d.Queue, Usage: "requests that may wait for a decoder"},
			&cli.IntFlag{Name: "batch-size", Usage: "most photos per image-tower call", DefaultText: "16 on the CPU, 64 on a GPU"},
			&cli.DurationFlag{Name: "timeout", Value: d.Timeout, Usage: "deadline of each request, queueing included"},
			&cli.Float64Flag{Name: "max-upload-mb", Value: float64(d.MaxUploadBytes) / (1 << 20), Usage: "largest photo upload in MiB"},
			&cli.Float64Flag{Name: "max-megapixels", Value: float64(d.Limits.MaxPixels) / 1e6, Usage: "largest photo in megapixels (checked before decoding)"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: d.ShutdownTimeout, Usage: "how long to wait for requests in flight at shutdown"},
			&cli.BoolFlag{Name: "quiet", Usage: "no start and stop lines"},
		}, deviceFlags("the image tower in bf16")...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			cfg := d
			cfg.Bundle, cfg.Addr = c.String("bundle"), c.String("addr")
			cfg.Threads, cfg.Queue, cfg.BatchSize = c.Int("threads"), c.Int("queue"), c.Int("batch-size")
			cfg.Timeout, cfg.ShutdownTimeout = c.Duration("timeout"), c.Duration("shutdown-timeout")
			cfg.MaxUploadBytes = int64(c.Float64("max-upload-mb") * (1 << 20))
			cfg.Limits.MaxPixels = int(c.Float64("max-megapixels") * 1e6)
			if !c.Bool("quiet") {
				cfg.Log = c.App.ErrWriter
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if err := checkPaths(c, "bundle"); err != nil {
				return err
			}
			var err error
			if cfg.Backend, err = fieldBackend(c, cuda.BF16); err != nil {
				return err
			}
			return serve.Run(c.Context, cfg)
		},
	}, "bundle")
}
