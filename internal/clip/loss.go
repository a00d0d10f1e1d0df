package clip

import (
	"fmt"
	"math"

	"github.com/litcache/litcache/internal/backend"
)

// ContrastiveLoss is CLIP's symmetric InfoNCE loss between image features
// img (B,E) and text embeddings text (B,E), pair b matching row b:
//
//	tn      = text / ‖text‖                      (rows)
//	logits  = exp(logitScale) · img · tnᵀ        (B,B), image → text
//	loss    = ½ (CE(logits, 0..B-1) + CE(logitsᵀ, 0..B-1))
//
// The image features are used as given: LiT passes the cache's features
// already L2-normalised (a locked tower's output does not move). When dImg or
// dText is not nil the gradient with respect to img or text (the unnormalised
// tower output) is ACCUMULATED into it. dLogitScale is ∂loss/∂logitScale.
func ContrastiveLoss(be backend.Backend, img, text backend.Tensor, logitScale float32, dImg, dText backend.Tensor) (loss float32, dLogitScale float32) {
	is, ts := img.Shape(), text.Shape()
	if len(is) != 2 || len(ts) != 2 || is[0] != ts[0] || is[1] != ts[1] {
		panic(fmt.Sprintf("clip: ContrastiveLoss: image %v and text %v must both be (B,E)", is, ts))
	}
	B, E := is[0], is[1]
	s := float32(math.Exp(float64(logitScale)))
	targets := make([]int32, B)
	for i := range targets {
		targets[i] = int32(i)
	}
	tn := be.Zeros(B, E)
	logits, logitsT := be.Zeros(B, B), be.Zeros(B, B)
	dl, dlT := be.Zeros(B, B), be.Zeros(B, B)
	defer func() {
		for _, t := range []backend.Tensor{tn, logits, logitsT, dl, dlT} {
			be.Free(t)
		}
	}()

	be.L2Normalize(tn, text)
	be.Gemm(false, true, s, img, tn, 0, logits)  // logits[i,j]  = s·img_i·tn_j
	be.Gemm(false, true, s, tn, img, 0, logitsT) // logitsT[i,j] = s·tn_i·img_j
	// Each direction's mean cross-entropy weighs ½; its gradient is accumulated scaled by ½.
	loss = 0.5*be.CrossEntropy(logits, targets, dl, 0.5) + 0.5*be.CrossEntropy(logitsT, targets, dlT, 0.5)

	// Logits are linear in s = exp(logitScale), so ∂logits/∂logitScale = logits.
	var ds float64
	for _, pair := range [][2]backend.Tensor{{dl, logits}, {dlT, logitsT}} {
		g, x := be.ToFloat32(pair[0], nil), be.ToFloat32(pair[1], nil)
		for i := range g {
			ds += float64(g[i]) * float64(x[i])
		}
	}
	dLogitScale = float32(ds)

	if dText != nil {
		dtn := be.Zeros(B, E)
		be.Gemm(true, false, s, dl, img, 1, dtn)   // dtn_j += s·Σ_i dl[i,j]·img_i
		be.Gemm(false, false, s, dlT, img, 1, dtn) // dtn_i += s·Σ_j dlT[i,j]·img_j
		be.L2NormalizeBackward(dText, dtn, text)
		be.Free(dtn)
	}
	if dImg != nil {
		be.Gemm(false, false, s, dl, tn, 1, dImg) // dimg_i += s·Σ_j dl[i,j]·tn_j
		be.Gemm(true, false, s, dlT, tn, 1, dImg) // dimg_j += s·Σ_i dlT[i,j]·tn_i
	}
	return loss, dLogitScale
}
