package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
)

// deviceFlags are --device and --gpu; what says what runs on the GPU in
// this command (e.g. "the image tower in bf16").
func deviceFlags(what string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "auto", Usage: "where to run (`cpu|cuda|auto`): cuda is " + what + ", auto the GPU when one is found and passes its self-check, else the CPU"},
		&cli.IntFlag{Name: "gpu", Usage: "GPU `N` (ordinal among CUDA_VISIBLE_DEVICES); one process per GPU, see the README", DefaultText: "$LOCAL_RANK, else 0"},
	}
}

// deviceChoice is what --device and --gpu ask for, checked before anything
// is opened.
type deviceChoice struct {
	device string // cpu, cuda or auto
	gpu    int
}

// deviceFromFlags reads and checks --device and --gpu (default $LOCAL_RANK,
// as torchrun and SLURM launchers set it for each process of a node).
func deviceFromFlags(c *cli.Context) (deviceChoice, error) {
	d := deviceChoice{device: c.String("device")}
	switch d.device {
	case "cpu", "cuda", "auto":
	default:
		return d, usageError(c, "--device %q: want cpu, cuda or auto", d.device)
	}
	if c.IsSet("gpu") {
		if d.device == "cpu" {
			return d, usageError(c, "--gpu does nothing with --device cpu")
		}
		d.gpu = c.Int("gpu")
	} else if s := os.Getenv("LOCAL_RANK"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return d, usageError(c, "$LOCAL_RANK=%q is not a GPU ordinal (give --gpu N)", s)
		}
		d.gpu = n
	}
	if d.gpu < 0 {
		return d, usageError(c, "--gpu %d < 0", d.gpu)
	}
	return d, nil
}

// openBackend returns the compute backend d asks for, and prints on log one
// line saying which it chose and why:
//
//	device: cuda:0 NVIDIA H200, bf16 (self-check passed)
//	device: cpu (no CUDA driver: libcuda.so.1 not found); cpu/float32 (openblas)
//	device: cpu (--device cpu); cpu/float32 (openblas)
//
// "cuda" is the GPU or an error; "auto" falls back to the CPU when there is
// no GPU or it fails its self-check against the CPU reference.
func openBackend(d deviceChoice, prec cuda.Precision, log io.Writer) (backend.Backend, error) {
	if log == nil {
		log = io.Discard
	}
	if d.device == "cpu" {
		return cpuBackend(log, "--device cpu"), nil
	}
	b, err := cuda.NewBackend(cuda.Options{Device: d.gpu, Precision: prec})
	if err == nil {
		if err = cuda.SelfCheck(b); err != nil {
			err = fmt.Errorf("cuda:%d %s failed its self-check: %w", d.gpu, b.Device().Name, err)
		}
	}
	if err == nil {
		why := "self-check passed"
		if d.device == "cuda" {
			why = "--device cuda, " + why
		}
		fmt.Fprintf(log, "device: cuda:%d %s, %s (%s)\n", d.gpu, b.Device().Name, prec, why)
		return b, nil
	}
	why := gpuUnusable(err, d.gpu)
	if d.device == "cuda" {
		return nil, fmt.Errorf("--device cuda: %s; use --device cpu or auto, and see `litcache doctor`", why)
	}
	return cpuBackend(log, why), nil
}

// cpuBackend is the CPU backend, announced with the reason it was chosen.
func cpuBackend(log io.Writer, why string) backend.Backend {
	be := backend.NewCPU()
	fmt.Fprintf(log, "device: cpu (%s); %s\n", why, be.Name())
	return be
}

// gpuUnusable says in a few words why GPU n cannot be used.
func gpuUnusable(err error, n int) string {
	detail := strings.TrimPrefix(err.Error(), "cuda: ")
	switch {
	case errors.Is(err, cuda.ErrNoDriver):
		return "no CUDA driver: libcuda.so.1 not found"
	case errors.Is(err, cuda.ErrNoDevice):
		return fmt.Sprintf("no GPU %d: %s", n, detail)
	}
	return "GPU unusable: " + detail
}
