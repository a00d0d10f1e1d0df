package extract

import (
	"errors"
	"fmt"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
)

// decodeMode is where images are decoded and preprocessed, and in what form
// the views reach the tower.
type decodeMode int

const (
	// decodeHost: the CPU decodes and preprocesses into float32 views, the
	// tower takes them from the host (the CPU backend).
	decodeHost decodeMode = iota
	// decodeUpload: the CPU decodes and resizes into uint8 views, which go
	// to the GPU through pinned double-buffered memory and are normalised
	// there (the CUDA backend with --decode cpu).
	decodeUpload
	// decodeNVJPEG: nvJPEG decodes on the GPU and the GPU resizes and
	// normalises; what nvJPEG does not take is decoded on the CPU, image by
	// image, and its views copied in (the CUDA backend with --decode gpu).
	decodeNVJPEG
)

// Decode settings (Config.Decode, --decode).
const (
	DecodeAuto = "auto" // nvJPEG when the backend is CUDA and nvJPEG loads, else the CPU
	DecodeCPU  = "cpu"
	DecodeGPU  = "gpu"
)

// decodeChoice is the decode mode of a run, the nvJPEG decoder it uses
// (decodeNVJPEG only) and the line that says what was chosen and why.
type decodeChoice struct {
	mode    decodeMode
	jpeg    *cuda.JPEGDecoder
	version string // nvJPEG's
	why     string
}

// chooseDecode resolves want (Config.Decode) for a run on be:
//
//	cpu   the CPU decodes; on a CUDA backend the views go up as uint8
//	gpu   nvJPEG, or an error naming what is missing (a CUDA backend,
//	      nvJPEG, a preprocessing without EXIF rotation)
//	auto  gpu where it can, else cpu, saying why
func chooseDecode(want string, be backend.Backend, pre imageproc.Preprocessor) (decodeChoice, error) {
	if want == "" {
		want = DecodeAuto
	}
	g, isCUDA := be.(*cuda.Backend)
	cpu := decodeChoice{mode: decodeHost}
	if isCUDA {
		cpu.mode = decodeUpload
	}
	switch want {
	case DecodeCPU:
		cpu.why = "--decode cpu"
		return cpu, nil
	case DecodeGPU, DecodeAuto:
	default:
		return decodeChoice{}, fmt.Errorf("extract: decode %q: want cpu, gpu or auto", want)
	}
	var why string
	var d *cuda.JPEGDecoder
	var err error
	switch {
	case !isCUDA:
		why = fmt.Sprintf("the backend is %s, not CUDA", be.Name())
	case pre.ApplyEXIF:
		why = "the preprocessing applies EXIF orientation, which the GPU path does not"
	default:
		d, err = g.NewJPEGDecoder()
		if err != nil {
			why = "nvJPEG unusable: " + err.Error()
			if errors.Is(err, cuda.ErrNoNVJPEG) {
				why = "no nvJPEG: " + err.Error()
			}
		}
	}
	if d == nil {
		if want == DecodeGPU {
			hint := "use --decode cpu"
			if !isCUDA {
				hint = "it needs --device cuda; or use --decode cpu"
			}
			return decodeChoice{}, fmt.Errorf("extract: --decode gpu: %s (%s)", why, hint)
		}
		cpu.why = "--decode auto: " + why
		return cpu, nil
	}
	nj, _ := cuda.LoadNVJPEG()
	return decodeChoice{mode: decodeNVJPEG, jpeg: d, version: nj.Version(), why: "--decode " + want}, nil
}

// describe is the run's decode line: "decode: nvJPEG 12.8.0 on the GPU
// (--decode auto)", "decode: CPU (libjpeg-turbo), uint8 views normalised on
// the GPU (--decode cpu)".
func (c decodeChoice) describe() string {
	cpu := "image/jpeg"
	if _, ok := imageproc.TurboJPEG(); ok {
		cpu = "libjpeg-turbo"
	}
	switch c.mode {
	case decodeNVJPEG:
		return fmt.Sprintf("decode: nvJPEG %s on the GPU, resize and normalisation on the GPU; PNG and JPEGs nvJPEG does not take on the CPU (%s) (%s)", c.version, cpu, c.why)
	case decodeUpload:
		return fmt.Sprintf("decode: CPU (%s), uint8 views normalised on the GPU (%s)", cpu, c.why)
	}
	return fmt.Sprintf("decode: CPU (%s) (%s)", cpu, c.why)
}
