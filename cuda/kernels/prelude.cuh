// Prelude prepended to every litcache kernel source. NVRTC gets no include
// path, so bf16 is handled by bit manipulation here instead of cuda_bf16.h.
typedef unsigned short bf16;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

__device__ __forceinline__ float bf2f(bf16 x) { return __uint_as_float(((unsigned)x) << 16); }

// IEEE float16 bits → float, exactly (normals, subnormals, infinities, NaN):
// the cache's stored embeddings, read without cuda_fp16.h.
__device__ __forceinline__ float h2f(unsigned short h) {
    unsigned s = ((unsigned)h & 0x8000u) << 16, e = ((unsigned)h >> 10) & 0x1fu, m = (unsigned)h & 0x3ffu;
    if (e == 31) return __uint_as_float(s | 0x7f800000u | (m << 13));
    if (e != 0) return __uint_as_float(s | ((e + 112u) << 23) | (m << 13));
    if (m == 0) return __uint_as_float(s);
    e = 113u;
    while (!(m & 0x400u)) {
        m <<= 1;
        e--;
    }
    return __uint_as_float(s | (e << 23) | ((m & 0x3ffu) << 13));
}

// round to nearest even, NaN kept quiet
__device__ __forceinline__ bf16 f2bf(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// block-wide sum for blockDim.x a multiple of 32 (≤ 1024); all threads get the result
__device__ __forceinline__ float block_sum(float v, float* shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = (threadIdx.x < nw) ? shared[threadIdx.x] : 0.f;
    if (warp == 0) v = warp_sum(v);
    if (threadIdx.x == 0) shared[0] = v;
    __syncthreads();
    return shared[0];
}

__device__ __forceinline__ float block_max(float v, float* shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = (threadIdx.x < nw) ? shared[threadIdx.x] : -INFINITY;
    if (warp == 0) v = warp_max(v);
    if (threadIdx.x == 0) shared[0] = v;
    __syncthreads();
    return shared[0];
}

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float quick_gelu(float x) { return x / (1.f + __expf(-1.702f * x)); }

// act: 0 none, 1 gelu (erf), 2 quick_gelu — backend.Act's values
__device__ __forceinline__ float apply_act(float x, int act) {
    return act == 1 ? gelu_erf(x) : (act == 2 ? quick_gelu(x) : x);
}

// Typed loads and stores: kernels are templates over the storage type
// (float or bf16) and compute in float32.
__device__ __forceinline__ float ld(const float* p, long i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16* p, long i) { return bf2f(p[i]); }
__device__ __forceinline__ void st(float* p, long i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16* p, long i, float v) { p[i] = f2bf(v); }

#define GRID_STRIDE(i, n) for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long)blockDim.x * gridDim.x)

// INSTANTIATE(name, params, args) defines name_f32 and name_bf16 calling name##_impl<T>.
#define INSTANTIATE(name, params_f32, params_bf16, args) \
    extern "C" __global__ void name##_f32 params_f32 { name##_impl<float> args; } \
    extern "C" __global__ void name##_bf16 params_bf16 { name##_impl<bf16> args; }

// ---- tensor-core helpers (sm_80+) ----
// A kernel that uses them is only launched where the device has them; the
// emulator (cuda/emu, LITCACHE_EMU) provides warp-collective equivalents.

// two floats → one register of two bf16, the lower index in the lower half
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi) {
    return (unsigned)f2bf(lo) | ((unsigned)f2bf(hi) << 16);
}
__device__ __forceinline__ unsigned pack_raw16x2(bf16 lo, bf16 hi) { return (unsigned)lo | ((unsigned)hi << 16); }
// 32-bit load of two adjacent bf16 (4-byte aligned)
__device__ __forceinline__ unsigned ld_b32(const bf16* p) { return *(const unsigned*)p; }
__device__ __forceinline__ void st_b32(bf16* p, unsigned v) { *(unsigned*)p = v; }

// d (16x8 f32) += a (16x16 bf16, row) · b (16x8 bf16, col), one warp:
// lane = 4·g + t holds a = {A[g][2t..], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]},
// b = {B[2t..][g], B[2t+8..][g]}, d = {D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]}
// (PTX ISA, mma.m16n8k16 fragment layouts for .bf16).
__device__ __forceinline__ void mma_bf16_16816(float* d, const unsigned* a, const unsigned* b) {
#ifdef LITCACHE_EMU
    emu_mma_bf16_16816(d, a, b);
#else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}
