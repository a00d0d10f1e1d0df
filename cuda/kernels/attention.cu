// Fused ("flash") attention forward in bf16, FlashAttention-2's loop order
// (Dao 2023, arXiv 2307.08691): q, k and v are read in place from the qkv
// projection (B*T, 3C), head h at columns h*D of each third; the T×T scores
// live only in registers, with the running row max and sum rescaling the
// output as key tiles go by; the output is written merged, (B*T, C).
//
// One block = 4 warps = 64 query rows of one (batch, head); each warp owns 16
// rows and runs mma.m16n8k16 (bf16 in, f32 accumulate). Key tiles of BC rows
// go through shared memory, rows beyond T zero-filled (a masked key's
// probability is 0, and 0 times a zero row is 0, never 0 times garbage).
// Needs D a multiple of 16, C a multiple of 8 and 16-byte aligned qkv rows.

#define FA_BR 64
#define FA_WARPS 4

// rows [r0, r0+R) of one head's D columns (row pitch `pitch` elements in
// global memory) into shared rows of LDS elements, 16 bytes per thread and step
template <int R, int D, int LDS>
__device__ __forceinline__ void fa_load_tile(bf16* dst, const bf16* src, long pitch, int r0, int T) {
    constexpr int CH = D / 8; // 16-byte chunks per row
    for (int i = threadIdx.x; i < R * CH; i += FA_WARPS * 32) {
        int r = i / CH, c = i - r * CH;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (r0 + r < T) v = *(const uint4*)(src + (long)(r0 + r) * pitch + c * 8);
        *(uint4*)(dst + r * LDS + c * 8) = v;
    }
}

template <int D, int BC>
__device__ void flash_attn_impl(bf16* out, const bf16* qkv, int T, int H, float scale_log2, int causal) {
    constexpr int LDS = D + 8; // +16 bytes per row: the fragment loads hit 32 distinct banks
    __shared__ __align__(16) bf16 sq[FA_BR * LDS];
    __shared__ __align__(16) bf16 sk[BC * LDS];
    __shared__ __align__(16) bf16 sv[BC * LDS];
    const int C = H * D;
    const long pitch = 3L * C;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H; // x: B·H can pass 65535, y could not
    const int q0 = blockIdx.y * FA_BR;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, tg = lane & 3;
    const bf16* base = qkv + (long)b * T * pitch + (long)h * D;

    fa_load_tile<FA_BR, D, LDS>(sq, base, pitch, q0, T);
    __syncthreads();
    unsigned qf[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        const bf16* r0 = sq + (warp * 16 + g) * LDS + kk * 16 + 2 * tg;
        qf[kk][0] = ld_b32(r0);
        qf[kk][1] = ld_b32(r0 + 8 * LDS);
        qf[kk][2] = ld_b32(r0 + 8);
        qf[kk][3] = ld_b32(r0 + 8 * LDS + 8);
    }
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    const int qa = q0 + warp * 16 + g, qb = qa + 8; // this thread's two query rows
    const int kend = causal ? min(T, q0 + FA_BR) : T;

    for (int k0 = 0; k0 < kend; k0 += BC) {
        __syncthreads(); // every warp is done with the previous tile
        fa_load_tile<BC, D, LDS>(sk, base + C, pitch, k0, T);
        fa_load_tile<BC, D, LDS>(sv, base + 2 * C, pitch, k0, T);
        __syncthreads();

        float s[BC / 8][4];
#pragma unroll
        for (int j = 0; j < BC / 8; j++) {
            s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                const bf16* kr = sk + (j * 8 + g) * LDS + kk * 16 + 2 * tg;
                unsigned kb[2] = {ld_b32(kr), ld_b32(kr + 8)};
                mma_bf16_16816(s[j], qf[kk], kb);
            }
        }
        // scale into the log2 domain, mask, row maxima over the tile
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int j = 0; j < BC / 8; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = k0 + j * 8 + 2 * tg + (e & 1);
                int q = e < 2 ? qa : qb;
                bool ok = key < T && (!causal || key <= q);
                float v = ok ? s[j][e] * scale_log2 : -INFINITY;
                s[j][e] = v;
                if (e < 2) mx0 = fmaxf(mx0, v); else mx1 = fmaxf(mx1, v);
            }
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        // a row with every key so far masked keeps max -inf: subtract 0 there
        float sub0 = mn0 == -INFINITY ? 0.f : mn0, sub1 = mn1 == -INFINITY ? 0.f : mn1;
        float a0 = exp2f(m0 - sub0), a1 = exp2f(m1 - sub1);
        m0 = mn0;
        m1 = mn1;
        float rs0 = 0.f, rs1 = 0.f;
#pragma unroll
        for (int j = 0; j < BC / 8; j++) {
            s[j][0] = exp2f(s[j][0] - sub0);
            s[j][1] = exp2f(s[j][1] - sub0);
            s[j][2] = exp2f(s[j][2] - sub1);
            s[j][3] = exp2f(s[j][3] - sub1);
            rs0 += s[j][0] + s[j][1];
            rs1 += s[j][2] + s[j][3];
        }
        l0 = l0 * a0 + rs0; // per-thread partial sums; the group's are added at the end
        l1 = l1 * a1 + rs1;
#pragma unroll
        for (int n = 0; n < D / 8; n++) {
            o[n][0] *= a0;
            o[n][1] *= a0;
            o[n][2] *= a1;
            o[n][3] *= a1;
        }
        // O += P·V; P's accumulator layout is the A fragment of the next mma
#pragma unroll
        for (int kk = 0; kk < BC / 16; kk++) {
            unsigned pa[4] = {pack_bf16x2(s[2 * kk][0], s[2 * kk][1]), pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                              pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int n = 0; n < D / 8; n++) {
                const bf16* vc = sv + (kk * 16 + 2 * tg) * LDS + n * 8 + g;
                unsigned vb[2] = {pack_raw16x2(vc[0], vc[LDS]), pack_raw16x2(vc[8 * LDS], vc[9 * LDS])};
                mma_bf16_16816(o[n], pa, vb);
            }
        }
    }
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    float i0 = l0 > 0.f ? 1.f / l0 : 0.f, i1 = l1 > 0.f ? 1.f / l1 : 0.f;
    bf16* ra = out + ((long)b * T + qa) * C + (long)h * D + 2 * tg;
    bf16* rb = ra + 8L * C;
#pragma unroll
    for (int n = 0; n < D / 8; n++) {
        if (qa < T) st_b32(ra + n * 8, pack_bf16x2(o[n][0] * i0, o[n][1] * i0));
        if (qb < T) st_b32(rb + n * 8, pack_bf16x2(o[n][2] * i1, o[n][3] * i1));
    }
}

// grid (B*H, ceil(T/64)), block 128; scale_log2 = log2(e)/sqrt(D). One
// kernel per head dimension (the fragments are sized at compile time).
extern "C" __global__ void __launch_bounds__(128) flash_attn_d16_bf16(bf16* out, const bf16* qkv, int T, int H, float scale_log2, int causal) {
    flash_attn_impl<16, 64>(out, qkv, T, H, scale_log2, causal);
}
extern "C" __global__ void __launch_bounds__(128) flash_attn_d32_bf16(bf16* out, const bf16* qkv, int T, int H, float scale_log2, int causal) {
    flash_attn_impl<32, 64>(out, qkv, T, H, scale_log2, causal);
}
extern "C" __global__ void __launch_bounds__(128) flash_attn_d64_bf16(bf16* out, const bf16* qkv, int T, int H, float scale_log2, int causal) {
    flash_attn_impl<64, 64>(out, qkv, T, H, scale_log2, causal);
}
extern "C" __global__ void __launch_bounds__(128) flash_attn_d80_bf16(bf16* out, const bf16* qkv, int T, int H, float scale_log2, int causal) {
    flash_attn_impl<80, 64>(out, qkv, T, H, scale_log2, causal);
}
extern "C" __global__ void __launch_bounds__(128) flash_attn_d96_bf16(bf16* out, const bf16* qkv, int T, int H, float scale_log2, int causal) {
    flash_attn_impl<96, 64>(out, qkv, T, H, scale_log2, causal);
}
extern "C" __global__ void __launch_bounds__(128) flash_attn_d128_bf16(bf16* out, const bf16* qkv, int T, int H, float scale_log2, int causal) {
    flash_attn_impl<128, 32>(out, qkv, T, H, scale_log2, causal);
}
