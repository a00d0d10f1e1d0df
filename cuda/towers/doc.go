// Package towers holds the GPU checks that need the CLIP towers: clip-tiny
// parity on the CUDA backend against the fixture, GPU-vs-CPU gradients of the
// text tower, and the ViT-L/14 and bf16 GEMM benchmarks. It has no code of
// its own; the tests skip on machines without a GPU. Build them for a GPU
// machine with ../shared/scripts/gpu-build.sh (`just gpu`).
package towers
