package cuda

import (
	"errors"
	"fmt"
	"os"
)

// GPU describes one visible device.
type GPU struct {
	Ordinal  int
	Name     string
	Arch     string
	SMs      int
	TotalMem uint64
	FreeMem  uint64
}

// Report is what `litcache doctor` prints about CUDA.
type Report struct {
	Driver        string // path of libcuda, "" when absent
	DriverVersion string // e.g. "13.0"
	DriverErr     error
	GPUs          []GPU
	GPUErr        error
	Libraries     []LibraryReport
	Visible       string // CUDA_VISIBLE_DEVICES
}

// LibraryReport is one optional CUDA library.
type LibraryReport struct {
	Name    string
	Path    string
	Version string
	Err     error
}

// Probe inspects the machine's CUDA stack without failing: every missing
// piece is recorded in the report.
func Probe() Report {
	r := Report{Visible: os.Getenv("CUDA_VISIBLE_DEVICES")}
	d, err := LoadDriver()
	if err != nil {
		r.DriverErr = err
		if d == nil && errors.Is(err, ErrNoDevice) {
			r.GPUErr = err
		}
	} else {
		r.Driver = d.Lib.Path
		if v, err := d.Version(); err == nil {
			r.DriverVersion = fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
		}
		n, err := d.DeviceCount()
		if err != nil {
			r.GPUErr = err
		}
		for i := 0; i < n; i++ {
			dv, err := Open(i)
			if err != nil {
				r.GPUErr = err
				break
			}
			g := GPU{Ordinal: i, Name: dv.Name, Arch: dv.Arch(), SMs: dv.SMs, TotalMem: dv.TotalMem}
			g.FreeMem, _, _ = dv.MemInfo()
			dv.Close()
			r.GPUs = append(r.GPUs, g)
		}
		if n == 0 && r.GPUErr == nil {
			r.GPUErr = ErrNoDevice
		}
	}
	if nv, err := LoadNVRTC(); err != nil {
		r.Libraries = append(r.Libraries, LibraryReport{Name: "nvrtc", Err: err})
	} else {
		r.Libraries = append(r.Libraries, LibraryReport{Name: "nvrtc", Path: nv.Lib.Path, Version: nv.Version()})
	}
	if lt, err := LoadCublasLtLibrary(); err != nil {
		r.Libraries = append(r.Libraries, LibraryReport{Name: "cublasLt", Err: err})
	} else {
		v := lt.Version
		r.Libraries = append(r.Libraries, LibraryReport{Name: "cublasLt", Path: lt.Lib.Path,
			Version: fmt.Sprintf("%d.%d.%d", v/10000, (v%10000)/100, v%100)})
	}
	if nj, err := LoadNVJPEG(); err != nil {
		r.Libraries = append(r.Libraries, LibraryReport{Name: "nvjpeg", Err: err})
	} else {
		r.Libraries = append(r.Libraries, LibraryReport{Name: "nvjpeg", Path: nj.Lib.Path, Version: nj.Version()})
	}
	return r
}
