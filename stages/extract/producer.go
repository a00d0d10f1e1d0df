package extract

import (
	"strings"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/imageproc"
	"github.com/litcache/litcache/store"
)

// producerOf is the store.Producer of this run's rows: the backend's kind
// and precision from its Name ("cpu/float32 (openblas)", "cuda/bf16
// (NVIDIA H200, sm_90)") and the JPEG decoder the decode stage uses
// (imageproc.DecodeRGB: libjpeg-turbo when it loads, else image/jpeg).
// Rows of two producers differ past rounding, so the cache records it.
func producerOf(be backend.Backend) store.Producer {
	name := be.Name()
	kind, rest, _ := strings.Cut(name, "/")
	prec, _, _ := strings.Cut(rest, " ")
	p := store.Producer{Backend: kind, Precision: prec, Decoder: "go", Detail: name}
	if path, ok := imageproc.TurboJPEG(); ok {
		p.Decoder = "libjpeg-turbo"
		p.Detail += "; jpeg " + path
	}
	return p
}
