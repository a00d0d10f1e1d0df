package extract

import (
	"strings"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/store"
)

// producerOf is the store.Producer of this run's rows: the backend's kind
// and precision from its Name ("cpu/float32 (openblas)", "cuda/bf16
// (NVIDIA H200, sm_90)") and the JPEG decoder the run uses: on the CPU
// imageproc.DecodeRGB's (libjpeg-turbo when it loads, else image/jpeg:
// "go"), on the GPU decode path "nvjpeg" (its version in the detail). Rows
// of two producers differ past rounding, so the cache records it.
//
// The GPU decode path's rule: its producer is "nvjpeg" although some
// images are decoded on the CPU — PNGs, CMYK JPEGs, JPEGs cut short, any
// nvJPEG refuses (gpuDecodable, nvjpegInput). Which images take the CPU
// depends on each image's bytes alone, so every nvjpeg worker decodes a
// given image the same way and its rows agree with every other nvjpeg
// worker's: the per-image fallback is part of what "nvjpeg" means, not a
// mix of producers. The CPU fallback's own decoder is part of the name
// when it is image/jpeg ("nvjpeg+go"), because that changes the fallback
// images' rows. An nvjpeg worker beside a libjpeg-turbo one is a mix.
func producerOf(be backend.Backend, dc decodeChoice) store.Producer {
	name := be.Name()
	kind, rest, _ := strings.Cut(name, "/")
	prec, _, _ := strings.Cut(rest, " ")
	p := store.Producer{Backend: kind, Precision: prec, Decoder: "go", Detail: name}
	path, turbo := imageproc.TurboJPEG()
	if turbo {
		p.Decoder = "libjpeg-turbo"
		p.Detail += "; jpeg " + path
	}
	if dc.mode == decodeNVJPEG {
		cpu := p.Decoder
		p.Decoder = "nvjpeg"
		if !turbo {
			p.Decoder = "nvjpeg+go"
		}
		p.Detail += "; nvjpeg " + dc.version + ", CPU fallback " + cpu
	}
	return p
}
