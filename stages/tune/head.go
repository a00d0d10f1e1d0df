package tune

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/litcache/litcache/internal/backend"
	"github.com/litcache/litcache/internal/clip"
	"github.com/litcache/litcache/internal/safetensors"
)

// ImageHead is an optional trainable linear map on the image side, out (B,E) =
// x (B,D) · Wᵀ + b. LiT locks the image side entirely (arXiv 2111.07991), so
// it is off by default; with it the cached features stay fixed and only this
// small head learns beside the text tower.
type ImageHead struct {
	be      backend.Backend
	w, b    backend.Tensor // (E,D), (E)
	dw, db  backend.Tensor
	in, out int
}

// Parameter names of the head in checkpoints.
const (
	headWeight = "image_head.weight"
	headBias   = "image_head.bias"
)

// NewImageHead makes a head from D to E: the identity when D = E (training
// starts from the plain LiT setting), otherwise W ~ N(0, 1/D) from seed; b = 0.
func NewImageHead(be backend.Backend, in, out int, seed uint64) *ImageHead {
	w := make([]float32, out*in)
	if in == out {
		for i := 0; i < in; i++ {
			w[i*in+i] = 1
		}
	} else {
		rng := rand.New(rand.NewPCG(seed, 0x1ea6))
		std := 1 / math.Sqrt(float64(in))
		for i := range w {
			w[i] = float32(rng.NormFloat64() * std)
		}
	}
	return newHead(be, w, make([]float32, out), in, out)
}

func newHead(be backend.Backend, w, b []float32, in, out int) *ImageHead {
	return &ImageHead{be: be, in: in, out: out,
		w: be.FromFloat32(w, out, in), b: be.FromFloat32(b, out),
		dw: be.Zeros(out, in), db: be.Zeros(out)}
}

// In and Out are the head's input (D) and output (E) widths.
func (h *ImageHead) In() int { return h.in }

// Out is the output width E.
func (h *ImageHead) Out() int { return h.out }

// Forward returns out (B,E) for x (B,D); the caller frees it.
func (h *ImageHead) Forward(x backend.Tensor, B int) backend.Tensor {
	out := h.be.Zeros(B, h.out)
	h.be.Linear(out, x, h.w, h.b, backend.ActNone)
	return out
}

// Backward accumulates dW, db from dout (B,E) and the forward's input x (B,D).
// The cached features are not trained, so no dx.
func (h *ImageHead) Backward(dout, x backend.Tensor) {
	h.be.LinearBackward(nil, h.dw, h.db, dout, x, h.w)
}

// Params lists the head's weight (decayed) and bias (not).
func (h *ImageHead) Params() []clip.Param {
	return []clip.Param{
		{Name: headWeight, Value: h.w, Grad: h.dw, Decay: true},
		{Name: headBias, Value: h.b, Grad: h.db},
	}
}

// ZeroGrad clears the head's gradients.
func (h *ImageHead) ZeroGrad() {
	h.be.Zero(h.dw)
	h.be.Zero(h.db)
}

// Save writes the head to a safetensors file (atomic).
func (h *ImageHead) Save(path string) error {
	err := safetensors.Write(path, []safetensors.Tensor{
		safetensors.F32(headWeight, []int{h.out, h.in}, h.be.ToFloat32(h.w, nil)),
		safetensors.F32(headBias, []int{h.out}, h.be.ToFloat32(h.b, nil)),
	}, map[string]string{"format": "litcache-image-head"})
	if err != nil {
		return fmt.Errorf("tune: save image head: %w", err)
	}
	return nil
}

// LoadImageHead reads a head written by Save.
func LoadImageHead(be backend.Backend, path string) (*ImageHead, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tune: load image head: %w", err)
	}
	defer f.Close()
	w, ws, err := f.Float32(headWeight)
	if err != nil {
		return nil, fmt.Errorf("tune: load image head %s: %w", path, err)
	}
	b, bs, err := f.Float32(headBias)
	if err != nil {
		return nil, fmt.Errorf("tune: load image head %s: %w", path, err)
	}
	if len(ws) != 2 || len(bs) != 1 || bs[0] != ws[0] {
		return nil, fmt.Errorf("tune: load image head %s: shapes %v and %v do not make a (E,D) weight and (E) bias", path, ws, bs)
	}
	return newHead(be, w, b, ws[1], ws[0]), nil
}
