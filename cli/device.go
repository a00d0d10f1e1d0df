package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
)

// openBackend returns the compute backend a --device flag asks for:
//   - "cpu": the float32 CPU backend;
//   - "cuda": GPU 0 (of CUDA_VISIBLE_DEVICES) in the given precision, or a clear error;
//   - "auto": the GPU when one is found and passes its self-check, else the CPU.
//
// log receives one line saying which backend was chosen and why.
func openBackend(device string, prec cuda.Precision, log io.Writer) (backend.Backend, error) {
	switch device {
	case "cpu":
		return backend.NewCPU(), nil
	case "cuda":
		b, err := cuda.NewBackend(cuda.Options{Precision: prec})
		if err != nil {
			if errors.Is(err, cuda.ErrNoDriver) || errors.Is(err, cuda.ErrNoDevice) {
				return nil, fmt.Errorf("--device cuda: no usable GPU on this machine (%v); use --device cpu or auto, and see `litcache doctor`", err)
			}
			return nil, fmt.Errorf("--device cuda: %w", err)
		}
		if err := cuda.SelfCheck(b); err != nil {
			return nil, fmt.Errorf("--device cuda: %w", err)
		}
		fmt.Fprintf(log, "device: %s\n", b.Name())
		return b, nil
	case "auto", "":
		b, err := cuda.NewBackend(cuda.Options{Precision: prec})
		if err == nil {
			if err = cuda.SelfCheck(b); err == nil {
				fmt.Fprintf(log, "device: %s\n", b.Name())
				return b, nil
			}
		}
		cpu := backend.NewCPU()
		if !errors.Is(err, cuda.ErrNoDriver) && !errors.Is(err, cuda.ErrNoDevice) {
			fmt.Fprintf(log, "device: GPU unusable (%v); using %s\n", err, cpu.Name())
		}
		return cpu, nil
	default:
		return nil, fmt.Errorf("--device %q: want cpu, cuda or auto", device)
	}
}
