// CUDA C++ on the CPU, for litcache's kernel tests (cuda/emu). The kernel
// sources compile unchanged against this header: each CUDA thread of a block
// is a fiber on one OS thread, __syncthreads and the warp collectives
// (shuffles, mma.m16n8k16) are barriers between fibers, and blocks run one
// after another. A barrier some threads never reach is reported as a
// deadlock instead of hanging.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <vector>

#define LITCACHE_EMU 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x, y, z;
};
struct uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }

namespace emu {

enum { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };

struct Fiber {
    void* sp;
    char* stack;
    int state;
    unsigned tid; // linear thread index
    dim3 idx;
};

struct Warp {
    uint64_t val[32];
    unsigned mma_a[32][4], mma_b[32][2];
    int arrived, live;
};

// The state of the block being run (kernels run one at a time).
extern dim3 cur_thread, cur_block, cur_bdim, cur_gdim;
extern Fiber* cur;
extern void* sched_sp;
extern int block_arrived;
extern std::vector<Warp> warps;
extern bool deadlocked;

extern "C" void emu_switch(void** save, void* load);

inline void yield() { emu_switch(&cur->sp, sched_sp); }
inline unsigned lane() { return cur->tid & 31; }
inline Warp& warp() { return warps[cur->tid >> 5]; }

inline void sync_block() {
    cur->state = WAIT_BLOCK;
    block_arrived++;
    yield();
}
inline void sync_warp() {
    cur->state = WAIT_WARP;
    warp().arrived++;
    yield();
}

template <typename T> inline uint64_t bits(T v) {
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    return u;
}
template <typename T> inline T unbits(uint64_t u) {
    T v;
    memcpy(&v, &u, sizeof v);
    return v;
}
template <typename T> inline T shfl_from(T v, unsigned src) {
    Warp& w = warp();
    w.val[lane()] = bits(v);
    sync_warp();
    T r = unbits<T>(w.val[src & 31]);
    sync_warp();
    return r;
}

inline float bf(unsigned short h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// mma.m16n8k16 .bf16 with f32 accumulation, fragments as the PTX ISA lays
// them out (see mma_bf16_16816 in prelude.cuh).
inline void mma_bf16_16816(float* d, const unsigned* a, const unsigned* b) {
    Warp& w = warp();
    unsigned l = lane();
    for (int i = 0; i < 4; i++) w.mma_a[l][i] = a[i];
    w.mma_b[l][0] = b[0];
    w.mma_b[l][1] = b[1];
    sync_warp();
    auto A = [&](int r, int k) {
        int g = r & 7, t = (k & 7) >> 1;
        int reg = (r >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0);
        unsigned v = w.mma_a[4 * g + t][reg];
        return bf((unsigned short)((k & 1) ? v >> 16 : v & 0xffff));
    };
    auto B = [&](int k, int n) {
        int t = (k & 7) >> 1;
        unsigned v = w.mma_b[4 * n + t][k >= 8 ? 1 : 0];
        return bf((unsigned short)((k & 1) ? v >> 16 : v & 0xffff));
    };
    int g = l >> 2, t = l & 3;
    float out[4];
    for (int e = 0; e < 4; e++) {
        int r = g + (e >= 2 ? 8 : 0), c = 2 * t + (e & 1);
        float acc = d[e];
        for (int k = 0; k < 16; k++) acc += A(r, k) * B(k, c);
        out[e] = acc;
    }
    sync_warp(); // every lane has read the fragments before any lane writes new ones
    for (int e = 0; e < 4; e++) d[e] = out[e];
}

} // namespace emu

#define threadIdx (emu::cur_thread)
#define blockIdx (emu::cur_block)
#define blockDim (emu::cur_bdim)
#define gridDim (emu::cur_gdim)

inline void __syncthreads() { emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::sync_warp(); }
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int m) { return emu::shfl_from(v, emu::lane() ^ (unsigned)m); }
template <typename T> inline T __shfl_sync(unsigned, T v, int src) { return emu::shfl_from(v, (unsigned)src); }
template <typename T> inline T __shfl_down_sync(unsigned, T v, unsigned d) {
    unsigned s = emu::lane() + d;
    return emu::shfl_from(v, s < 32 ? s : emu::lane());
}
inline void emu_mma_bf16_16816(float* d, const unsigned* a, const unsigned* b) { emu::mma_bf16_16816(d, a, b); }

inline unsigned __float_as_uint(float f) { return (unsigned)emu::bits(f); }
inline int __float_as_int(float f) { return (int)(unsigned)emu::bits(f); }
inline float __uint_as_float(unsigned u) { return emu::unbits<float>(u); }
inline float __int_as_float(int i) { return emu::unbits<float>((unsigned)i); }
inline float __expf(float x) { return expf(x); }
inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
// Kernels run one block at a time on one OS thread: a plain add is atomic.
inline float atomicAdd(float* p, float v) {
    float o = *p;
    *p = o + v;
    return o;
}
inline double atomicAdd(double* p, double v) {
    double o = *p;
    *p = o + v;
    return o;
}
inline int atomicAdd(int* p, int v) {
    int o = *p;
    *p = o + v;
    return o;
}
