package cli

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/cpu"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "show what this machine offers litcache: CPU features, OpenBLAS, libjpeg-turbo, CUDA GPU and libraries",
		Description: `Every accelerator is optional and found at run time. doctor says which were
found (with versions and paths) and which backend each stage will use.

Example:
   litcache doctor`,
		Action: func(c *cli.Context) error {
			writeDoctor(c.App.Writer)
			return nil
		},
	}
}

func writeDoctor(w io.Writer) {
	fmt.Fprintf(w, "litcache %s (%s %s/%s)\n\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	line := func(name, status string) { fmt.Fprintf(w, "%-14s %s\n", name, status) }

	var feats []string
	for _, f := range []struct {
		ok   bool
		name string
	}{
		{cpu.X86.HasAVX2, "AVX2"}, {cpu.X86.HasFMA, "FMA"}, {cpu.X86.HasAVX512F, "AVX-512F"},
		{cpu.X86.HasAVX512BW, "AVX-512BW"}, {cpu.ARM64.HasASIMD, "NEON"}, {cpu.ARM64.HasSVE, "SVE"},
	} {
		if f.ok {
			feats = append(feats, f.name)
		}
	}
	line("cpu", fmt.Sprintf("%d cores; %s", runtime.NumCPU(), strings.Join(feats, " ")))
	line("openblas", openBLASStatus())
	if path, ok := imageproc.TurboJPEG(); ok {
		line("libjpeg-turbo", path)
	} else {
		line("libjpeg-turbo", "not found — pure-Go JPEG decoding (apt install libturbojpeg0: decode+preprocess measured 2.0x faster, NOTES.md)")
	}
	line("cpu backend", backend.NewCPU().Name())
	fmt.Fprintln(w)

	r := cuda.Probe()
	if r.DriverErr != nil {
		line("cuda driver", "not found — "+r.DriverErr.Error())
	} else {
		line("cuda driver", fmt.Sprintf("CUDA %s (%s)", r.DriverVersion, r.Driver))
	}
	if len(r.GPUs) == 0 {
		msg := "none"
		if r.GPUErr != nil {
			msg += " — " + r.GPUErr.Error()
		}
		line("gpu", msg)
	}
	for _, g := range r.GPUs {
		line(fmt.Sprintf("gpu %d", g.Ordinal), fmt.Sprintf("%s, compute capability %s, %d SMs, %.1f GiB (%.1f GiB free)",
			g.Name, g.Arch, g.SMs, float64(g.TotalMem)/(1<<30), float64(g.FreeMem)/(1<<30)))
	}
	if r.Visible != "" {
		line("visible", "CUDA_VISIBLE_DEVICES="+r.Visible)
	}
	for _, l := range r.Libraries {
		if l.Err != nil {
			line(l.Name, "not found — "+l.Err.Error())
			continue
		}
		v := l.Path
		if l.Version != "" {
			v = l.Version + " (" + l.Path + ")"
		}
		line(l.Name, v)
	}
	fmt.Fprintln(w)
	device := "cpu: --device auto finds no usable GPU"
	if len(r.GPUs) > 0 {
		device = "--device auto: GPU --gpu N ($LOCAL_RANK, else 0) once its self-check against the CPU passes, else the CPU; --device cpu forces the CPU"
	}
	line("stages use", device)
}

// openBLASStatus says whether OpenBLAS is found and what it changes on this
// CPU. The figures are `litcache bench matmul` on the project's AMD EPYC
// (AVX-512) machine, shared with other work, in the runs NOTES.md logs:
// litcache's AVX-512 GEMM at 1.3–4.2x OpenBLAS 0.3.21's sgemm, the portable
// Go GEMM at 0.04–0.07x. They were not measured on this CPU.
func openBLASStatus() string {
	gemm := backend.NewCPUWith(backend.CPUOptions{DisableBLAS: true}).Name()
	info, err := backend.OpenBLASInfo()
	used := err == nil && backend.NewCPU().BLAS() != ""
	switch {
	case used:
		return info + " — used for matrix work"
	case err == nil:
		return info + " — found, not used: litcache's own AVX-512 GEMM runs instead (1.3-4.2x OpenBLAS 0.3.21's sgemm where measured, NOTES.md; litcache bench matmul measures this machine)"
	case strings.Contains(gemm, "avx512"):
		return "not found — not needed on this CPU: litcache's own AVX-512 GEMM runs (1.3-4.2x OpenBLAS 0.3.21's sgemm where measured, NOTES.md)"
	case strings.Contains(gemm, "avx2"):
		return "not found — optional on this CPU: litcache's AVX2 GEMM about matches OpenBLAS per core (NOTES.md); apt install libopenblas0 to use it instead"
	}
	return "not found — the portable Go GEMM runs here (no AVX2+FMA), measured at 0.006-0.14x OpenBLAS sgemm: apt install libopenblas0 (" + err.Error() + ")"
}
