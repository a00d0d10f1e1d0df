// Package towers holds the GPU checks that need the CLIP towers: clip-tiny
// parity on the CUDA backend against the fixture, GPU-vs-CPU gradients of the
// text tower, the DINOv2 and Swin fixtures' embeddings (internal/tower/towertest),
// and the ViT-L/14, DINOv2-B/14, Swin-T, attention and bf16 GEMM benchmarks. It has no
// code of its own; the tests skip on machines without a GPU (and fail there
// under LITCACHE_REQUIRE_GPU=1). `just gpu-check` builds them into .gpu/ for
// the prepared GPU check (bash .gpu/check.sh on the GPU machine); cuda/emu
// runs the same towers on the CPU emulator.
package towers
