package clip

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
)

// Param is one trainable tensor of a tower with its gradient.
type Param struct {
	// Name is the tensor's OpenCLIP state-dict name (e.g. "transformer.resblocks.0.ln_1.weight").
	// Value is stored in the towers' internal layout: every projection as a
	// Linear weight (O,I), so "text_projection" is (E,W), the transpose of
	// OpenCLIP's (W,E); all other tensors have OpenCLIP's shape.
	Name string
	// Value holds the weights; Grad accumulates their gradient (same shape).
	Value, Grad backend.Tensor
	// Decay is false for tensors with fewer than two dims (gains, biases), which
	// OpenCLIP's AdamW excludes from weight decay.
	Decay bool
}

// paramRef binds a tower's tensor field to its OpenCLIP name and shape, so
// that loading, random init, export and Params walk one list.
type paramRef struct {
	name  string
	shape []int // internal layout
	value *backend.Tensor
	grad  *backend.Tensor
	// fileShape is the shape OpenCLIP stores (nil: the same as shape).
	// transposed marks a 2-d tensor stored as the transpose of the internal
	// one (visual.proj and text_projection: OpenCLIP multiplies x @ proj).
	fileShape  []int
	transposed bool
}

// openclipShape is the tensor's shape in an OpenCLIP state dict.
func (r paramRef) openclipShape() []int {
	if r.fileShape != nil {
		return r.fileShape
	}
	return r.shape
}

func (r paramRef) size() int {
	n := 1
	for _, d := range r.shape {
		n *= d
	}
	return n
}

// paramSet is a tower's list of parameters in OpenCLIP state-dict order.
type paramSet []paramRef

func (ps *paramSet) add(name string, value, grad *backend.Tensor, shape ...int) {
	*ps = append(*ps, paramRef{name: name, shape: shape, value: value, grad: grad})
}

// alloc gives every parameter zeroed storage.
// addProjection registers an OpenCLIP projection (x @ proj, stored (I,O)) kept as a Linear weight (O,I).
func (ps *paramSet) addProjection(name string, value, grad *backend.Tensor, out, in int) {
	*ps = append(*ps, paramRef{name: name, shape: []int{out, in}, value: value, grad: grad,
		fileShape: []int{in, out}, transposed: true})
}

// addReshaped registers a tensor kept flattened internally (conv1's (W,3,P,P) as (W,3·P·P)).
func (ps *paramSet) addReshaped(name string, value, grad *backend.Tensor, fileShape []int, shape ...int) {
	*ps = append(*ps, paramRef{name: name, shape: shape, value: value, grad: grad, fileShape: fileShape})
}

func (ps paramSet) alloc(be backend.Backend) {
	for _, r := range ps {
		*r.value = be.Zeros(r.shape...)
	}
}

// allocGrads gives every parameter a zeroed gradient, once.
func (ps paramSet) allocGrads(be backend.Backend) {
	for _, r := range ps {
		if *r.grad == nil {
			*r.grad = be.Zeros(r.shape...)
		}
	}
}

// params lists the parameters with their gradients.
func (ps paramSet) params() []Param {
	out := make([]Param, len(ps))
	for i, r := range ps {
		out[i] = Param{Name: r.name, Value: *r.value, Grad: *r.grad, Decay: len(r.shape) >= 2}
	}
	return out
}

func (ps paramSet) find(name string) (paramRef, bool) {
	for _, r := range ps {
		if r.name == name {
			return r, true
		}
	}
	return paramRef{}, false
}

func (ps paramSet) free(be backend.Backend) {
	for _, r := range ps {
		be.Free(*r.value)
		be.Free(*r.grad)
		*r.value, *r.grad = nil, nil
	}
}

// shapeString prints a shape as PyTorch does: [192, 64].
func shapeString(s []int) string { return fmt.Sprint(s) }
