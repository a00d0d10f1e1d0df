package clip

import (
	"fmt"

	"github.com/litcache/litcache/internal/backend"
)

// VisionTower is OpenCLIP's VisionTransformer (the ViT image tower):
//
//	patches = conv1(pixels)              stride = kernel = P, no bias
//	x = [class_embedding; patches] + positional_embedding
//	x = ln_pre(x); x = blocks(x)
//	emb = ln_post(x[:, 0]) · proj
//
// It is inference only: LiT keeps the image tower locked. Encode allocates
// its activations per call, so several goroutines may call it at once (with a
// backend safe for concurrent use, as the CPU backend is).
type VisionTower struct {
	be     backend.Backend
	cfg    Config
	conv1  linear         // (W, 3·P·P), no bias
	cls    backend.Tensor // (W)
	pos    backend.Tensor // (T,W), T = G²+1
	lnPre  layerNorm
	blocks []block
	lnPost layerNorm
	proj   linear // (E,W), OpenCLIP's visual.proj transposed
	ps     paramSet
	// unused gradients: the registry wants a slot for each tensor
	grads []backend.Tensor
}

func newVisionTower(be backend.Backend, cfg Config) *VisionTower {
	v := cfg.Vision
	W, P, T, F := v.Width, v.PatchSize, v.Tokens(), v.Hidden()
	vt := &VisionTower{be: be, cfg: cfg, blocks: make([]block, v.Layers), grads: make([]backend.Tensor, 4)}
	ps := &vt.ps
	ps.add("visual.class_embedding", &vt.cls, &vt.grads[0], W)
	ps.add("visual.positional_embedding", &vt.pos, &vt.grads[1], T, W)
	ps.addProjection("visual.proj", &vt.proj.w, &vt.grads[2], cfg.EmbedDim, W)
	ps.addReshaped("visual.conv1.weight", &vt.conv1.w, &vt.grads[3], []int{W, 3, P, P}, W, 3*P*P)
	vt.lnPre.register(ps, "visual.ln_pre", W)
	for i := range vt.blocks {
		vt.blocks[i].register(ps, fmt.Sprintf("visual.transformer.resblocks.%d", i), W, F)
	}
	vt.lnPost.register(ps, "visual.ln_post", W)
	return vt
}

// Config is the model config the tower was built with.
func (vt *VisionTower) Config() Config { return vt.cfg }

// Encode runs the tower on pixels (B,3,S,S), CLIP-normalised, row-major, and
// returns the image embeddings (B,E), projected and not normalised.
func (vt *VisionTower) Encode(pixels []float32, B int) []float32 {
	out := vt.encode(pixels, B, nil)
	emb := vt.be.ToFloat32(out, nil)
	vt.be.Free(out)
	return emb
}

// EncodeTensor runs the tower on pixels already on the tower's backend,
// (B,3,S,S) and CLIP-normalised — uploaded and normalised on the GPU by the
// cuda package's ImageUploader or ImageBatch, say — and returns the image
// embeddings (B,E). px stays the caller's.
func (vt *VisionTower) EncodeTensor(px backend.Tensor, B int) []float32 {
	S := vt.cfg.Vision.ImageSize
	if B <= 0 || px.Len() != B*3*S*S {
		panic(fmt.Sprintf("clip: vision: pixel tensor %v for %d images of 3×%d×%d", px.Shape(), B, S, S))
	}
	out := vt.encodeTensor(px, B, nil)
	emb := vt.be.ToFloat32(out, nil)
	vt.be.Free(out)
	return emb
}

// encode returns the (B,E) embeddings tensor; hook, when not nil, sees the
// hidden states under the fixture's names.
func (vt *VisionTower) encode(pixels []float32, B int, hook func(name string, t backend.Tensor)) backend.Tensor {
	S := vt.cfg.Vision.ImageSize
	if B <= 0 || len(pixels) != B*3*S*S {
		panic(fmt.Sprintf("clip: vision: %d pixel values for %d images of 3×%d×%d", len(pixels), B, S, S))
	}
	px := vt.be.FromFloat32(pixels, B, 3, S, S)
	defer vt.be.Free(px)
	return vt.encodeTensor(px, B, hook)
}

func (vt *VisionTower) encodeTensor(px backend.Tensor, B int, hook func(name string, t backend.Tensor)) backend.Tensor {
	be, v := vt.be, vt.cfg.Vision
	S, P, G, T, W, F := v.ImageSize, v.PatchSize, v.Grid(), v.Tokens(), v.Width, v.Hidden()
	var tmp []backend.Tensor
	alloc := func(shape ...int) backend.Tensor {
		t := be.Zeros(shape...)
		tmp = append(tmp, t)
		return t
	}
	defer func() {
		for _, t := range tmp {
			be.Free(t)
		}
	}()

	patches := alloc(B*G*G, 3*P*P)
	be.Patchify(patches, px, B, S, P)
	emb := alloc(B*G*G, W)
	vt.conv1.forward(be, emb, patches, backend.ActNone)
	x := alloc(B*T, W)
	be.PrependRow(x, emb, vt.cls, B, G*G)
	if f, ok := be.(fusedBackend); ok {
		f.AddLayerNorm(nil, x, x, vt.pos, vt.lnPre.g, vt.lnPre.b, T, LayerNormEps)
	} else {
		be.AddPeriodic(x, x, vt.pos, T)
		vt.lnPre.forward(be, x, x, nil, nil)
	}
	if hook != nil {
		hook("vision_hidden.0", x)
	}

	s := newBlockScratch(be.Zeros, B*T, W, F, false)
	defer s.free(be)
	d := seqDims{B: B, T: T, H: v.Heads(), causal: false, act: vt.cfg.Act()}
	for i := range vt.blocks {
		vt.blocks[i].forward(be, x, x, nil, s, d)
		if hook != nil {
			hook(fmt.Sprintf("vision_hidden.%d", i+1), x)
		}
	}

	// Pool the class token (row 0 of each image), then ln_post and the projection.
	rows := make([]int, B)
	for b := range rows {
		rows[b] = b * T
	}
	pooled := alloc(B, W)
	be.GatherRows(pooled, x, rows)
	if hook != nil {
		hook("vision_pooled", pooled)
	}
	vt.lnPost.forward(be, pooled, pooled, nil, nil)
	out := be.Zeros(B, vt.cfg.EmbedDim)
	vt.proj.forward(be, out, pooled, backend.ActNone)
	return out
}

// FLOPs is the multiply-add count ×2 of one image through the tower (matrix
// products and attention; layer norms and activations are left out).
func (v VisionConfig) FLOPs(embedDim int) float64 {
	T, W, F, P, G := float64(v.Tokens()), float64(v.Width), float64(v.Hidden()), float64(v.PatchSize), float64(v.Grid())
	f := 2 * G * G * 3 * P * P * W // patch embedding
	perBlock := 2*T*W*3*W + 2*T*W*W + 2*2*T*W*F + 2*2*T*T*W
	f += float64(v.Layers) * perBlock
	f += 2 * W * float64(embedDim)
	return f
}

// Free releases the tower's weights.
func (vt *VisionTower) Free() { vt.ps.free(vt.be) }
