// LiT training kernels (cuda/lit*.go): the text tower's step with
// activations of type T (bf16 or float) and float32 gradients, statistics,
// master weights and Adam moments; the fused InfoNCE loss; reductions
// without contended atomics. Letters: B batch rows, U encoded captions,
// Tt tokens run (a multiple of 8), Tf the caption table's width, W width,
// E embed dim, D image feature dim, N = U·Tt rows, K caption table rows,
// G blocks of a two-stage reduction.

// ---- embeddings ----

// x (U·Tt, W) = tok[ids[caps[u], t]] + pos[t]: each encoded caption's
// tokens read from the resident caption table ids (K, Tf). n = U·Tt·W.
template <typename T> __device__ void lit_embed_impl(T* x, const T* tok, const T* pos, const int* ids, const int* caps,
                                                     int Tf, int Tt, int W, long n) {
    GRID_STRIDE(i, n) {
        long row = i / W;
        int c = (int)(i - row * W);
        long u = row / Tt;
        int t = (int)(row - u * Tt);
        int id = ids[(long)caps[u] * Tf + t];
        st(x, i, ld(tok, (long)id * W + c) + ld(pos, (long)t * W + c));
    }
}
INSTANTIATE(lit_embed,
            (float* x, const float* tok, const float* pos, const int* ids, const int* caps, int Tf, int Tt, int W, long n),
            (bf16* x, const bf16* tok, const bf16* pos, const int* ids, const int* caps, int Tf, int Tt, int W, long n),
            (x, tok, pos, ids, caps, Tf, Tt, W, n))

// dtok[id] += dx[u, t] for the tokens up to each caption's pooled position
// pool[caps[u]]: later positions get exactly zero gradient (causal attention
// and end-of-text pooling), so skipping them changes nothing and keeps the
// padding id's row free of thousands of atomic adds of zero. Different
// tokens land on different rows; the atomics that meet (the start token of
// every caption) are U per address at most.
template <typename T> __device__ void lit_embed_bwd_impl(float* dtok, const T* dx, const int* ids, const int* caps,
                                                         const int* pool, int Tf, int Tt, int W, long n) {
    GRID_STRIDE(i, n) {
        long row = i / W;
        int c = (int)(i - row * W);
        long u = row / Tt;
        int t = (int)(row - u * Tt);
        int k = caps[u];
        if (t > pool[k]) continue;
        int id = ids[(long)k * Tf + t];
        atomicAdd(&dtok[(long)id * W + c], ld(dx, i));
    }
}
INSTANTIATE(lit_embed_bwd,
            (float* dtok, const float* dx, const int* ids, const int* caps, const int* pool, int Tf, int Tt, int W, long n),
            (float* dtok, const bf16* dx, const int* ids, const int* caps, const int* pool, int Tf, int Tt, int W, long n),
            (dtok, dx, ids, caps, pool, Tf, Tt, W, n))

// ---- end-of-text pooling ----

// pooled (U,W) = x[u·Tt + pool[caps[u]]]. n = U·W.
template <typename T> __device__ void lit_pool_gather_impl(T* out, const T* x, const int* caps, const int* pool, int Tt,
                                                           int W, long n) {
    GRID_STRIDE(i, n) {
        long u = i / W;
        int c = (int)(i - u * W);
        out[i] = x[(u * Tt + pool[caps[u]]) * W + c];
    }
}
INSTANTIATE(lit_pool_gather,
            (float* out, const float* x, const int* caps, const int* pool, int Tt, int W, long n),
            (bf16* out, const bf16* x, const int* caps, const int* pool, int Tt, int W, long n),
            (out, x, caps, pool, Tt, W, n))

// dx[u·Tt + pool[caps[u]]] = dpooled[u]: each caption owns its row, so a
// plain store into the zeroed dx. n = U·W.
template <typename T> __device__ void lit_pool_scatter_impl(T* dx, const T* dpooled, const int* caps, const int* pool,
                                                            int Tt, int W, long n) {
    GRID_STRIDE(i, n) {
        long u = i / W;
        int c = (int)(i - u * W);
        dx[(u * Tt + pool[caps[u]]) * W + c] = dpooled[i];
    }
}
INSTANTIATE(lit_pool_scatter,
            (float* dx, const float* dpooled, const int* caps, const int* pool, int Tt, int W, long n),
            (bf16* dx, const bf16* dpooled, const int* caps, const int* pool, int Tt, int W, long n),
            (dx, dpooled, caps, pool, Tt, W, n))

// ---- the image side: rows of the resident cache ----
// The table is float16 (f32rows = 0) or float32 (f32rows = 1).

__device__ __forceinline__ float ldrow(const void* rows, long i, int f32rows) {
    return f32rows ? ((const float*)rows)[i] : h2f(((const unsigned short*)rows)[i]);
}

// out (B,E) = rows[idx[b]] / ‖rows[idx[b]]‖; one block per row.
template <typename T> __device__ void lit_rows_norm_impl(T* out, const void* rows, int f32rows, const int* idx, int E) {
    __shared__ float sh[32];
    long b = blockIdx.x, r = (long)idx[b] * E;
    float s = 0.f;
    for (int c = threadIdx.x; c < E; c += blockDim.x) {
        float v = ldrow(rows, r + c, f32rows);
        s += v * v;
    }
    float inv = rsqrtf(fmaxf(block_sum(s, sh), 1e-24f));
    for (int c = threadIdx.x; c < E; c += blockDim.x) st(out, b * E + c, ldrow(rows, r + c, f32rows) * inv);
}
INSTANTIATE(lit_rows_norm, (float* out, const void* rows, int f32rows, const int* idx, int E),
            (bf16* out, const void* rows, int f32rows, const int* idx, int E), (out, rows, f32rows, idx, E))

// out (B,D) = rows[idx[b]], not normalised (the image head's input). n = B·D.
template <typename T> __device__ void lit_rows_gather_impl(T* out, const void* rows, int f32rows, const int* idx, int D, long n) {
    GRID_STRIDE(i, n) {
        long b = i / D;
        int c = (int)(i - b * D);
        st(out, i, ldrow(rows, (long)idx[b] * D + c, f32rows));
    }
}
INSTANTIATE(lit_rows_gather, (float* out, const void* rows, int f32rows, const int* idx, int D, long n),
            (bf16* out, const void* rows, int f32rows, const int* idx, int D, long n), (out, rows, f32rows, idx, D, n))

// tn (B,E) = emb[u] / ‖emb[u]‖ with u = rowcap[b] (b itself when rowcap is
// null): the text embeddings of the batch rows, normalised, from the
// encoded captions; one block per row.
template <typename T> __device__ void lit_text_norm_impl(T* tn, const float* emb, const int* rowcap, int E) {
    __shared__ float sh[32];
    long b = blockIdx.x;
    long u = rowcap ? rowcap[b] : b;
    const float* e = emb + u * E;
    float s = 0.f;
    for (int c = threadIdx.x; c < E; c += blockDim.x) s += e[c] * e[c];
    float inv = rsqrtf(fmaxf(block_sum(s, sh), 1e-24f));
    for (int c = threadIdx.x; c < E; c += blockDim.x) st(tn, b * E + c, e[c] * inv);
}
INSTANTIATE(lit_text_norm, (float* tn, const float* emb, const int* rowcap, int E),
            (bf16* tn, const float* emb, const int* rowcap, int E), (tn, emb, rowcap, E))

// dst[rowcap[b]] += src[b] (dst (U,E) zeroed first): the gradients of batch
// rows sharing a caption summed onto it. n = B·E.
extern "C" __global__ void lit_scatter_rows(float* dst, const float* src, const int* rowcap, int E, long n) {
    GRID_STRIDE(i, n) {
        long b = i / E;
        int c = (int)(i - b * E);
        atomicAdd(&dst[(long)rowcap[b] * E + c], src[i]);
    }
}

// y = x/‖x‖ per row: dx += (dout − y (y·dout)) / ‖x‖, x of the activation type; one block per row.
template <typename T> __device__ void lit_l2norm_bwd_impl(float* dx, const float* dout, const T* x, int C) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    float ss = 0.f, xg = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = ld(x, row * C + c);
        ss += v * v;
        xg += v * dout[row * C + c];
    }
    ss = block_sum(ss, sh);
    xg = block_sum(xg, sh);
    float inv = rsqrtf(fmaxf(ss, 1e-24f));
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        dx[row * C + c] += (dout[row * C + c] - ld(x, row * C + c) * inv * inv * xg) * inv;
}
INSTANTIATE(lit_l2norm_bwd, (float* dx, const float* dout, const float* x, int C),
            (float* dx, const float* dout, const bf16* x, int C), (dx, dout, x, C))

// ---- the fused InfoNCE loss ----
// G (B,B) float32 holds the raw dot products img_i·tn_j; the logits are
// s·G with s = exp(*ls), ls the logit-scale master weight on the device (no
// host round trip). The loss is ½·mean_i CE(row i, i) + ½·mean_j CE(col j, j).

// One pass over G: each block takes R rows, writes their log-sum-exp and,
// for every column, the (max, sum of exp) over its R rows; lit_nce_colmerge
// combines the column partials.
extern "C" __global__ void lit_nce_stats(float* rowLse, float* colM, float* colS, const float* G, const float* ls, int B,
                                         int R) {
    __shared__ float sh[32];
    float s = expf(*ls);
    int r0 = blockIdx.x * R, r1 = min(B, r0 + R);
    for (int i = r0; i < r1; i++) {
        const float* g = G + (long)i * B;
        float m = -INFINITY;
        for (int j = threadIdx.x; j < B; j += blockDim.x) m = fmaxf(m, s * g[j]);
        m = block_max(m, sh);
        float sum = 0.f;
        for (int j = threadIdx.x; j < B; j += blockDim.x) sum += __expf(s * g[j] - m);
        sum = block_sum(sum, sh);
        if (threadIdx.x == 0) rowLse[i] = m + logf(sum);
    }
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        float cm = -INFINITY, cs = 0.f;
        for (int i = r0; i < r1; i++) {
            float v = s * G[(long)i * B + j];
            if (v > cm) {
                cs = cs * __expf(cm - v) + 1.f;
                cm = v;
            } else {
                cs += __expf(v - cm);
            }
        }
        colM[(long)blockIdx.x * B + j] = cm;
        colS[(long)blockIdx.x * B + j] = cs;
    }
}

// colLse (B) from the partials of nchunks row blocks.
extern "C" __global__ void lit_nce_colmerge(float* colLse, const float* colM, const float* colS, int B, int nchunks) {
    GRID_STRIDE(j, B) {
        float m = -INFINITY;
        for (int c = 0; c < nchunks; c++) m = fmaxf(m, colM[(long)c * B + j]);
        float s = 0.f;
        for (int c = 0; c < nchunks; c++) s += colS[(long)c * B + j] * __expf(colM[(long)c * B + j] - m);
        colLse[j] = m + logf(s);
    }
}

// The gradient, one block per row i: dlogit = (softmax_row + softmax_col −
// 2·I)/(2B); dG (B,B) = s·dlogit (the gradient with respect to G, so the
// text and image gradients are GEMMs with dG); part[i] = Σ_j dlogit·logit,
// row i's share of ∂loss/∂ls (the logits are linear in s = exp(ls)).
template <typename T> __device__ void lit_nce_grad_impl(T* dG, float* part, const float* G, const float* rowLse,
                                                        const float* colLse, const float* ls, int B) {
    __shared__ float sh[32];
    float s = expf(*ls), w = 0.5f / B;
    long i = blockIdx.x;
    float lr = rowLse[i], acc = 0.f;
    for (int j = threadIdx.x; j < B; j += blockDim.x) {
        float l = s * G[i * B + j];
        float d = (__expf(l - lr) + __expf(l - colLse[j]) - (j == i ? 2.f : 0.f)) * w;
        st(dG, i * B + j, s * d);
        acc += d * l;
    }
    acc = block_sum(acc, sh);
    if (threadIdx.x == 0) part[i] = acc;
}
INSTANTIATE(lit_nce_grad,
            (float* dG, float* part, const float* G, const float* rowLse, const float* colLse, const float* ls, int B),
            (bf16* dG, float* part, const float* G, const float* rowLse, const float* colLse, const float* ls, int B),
            (dG, part, G, rowLse, colLse, ls, B))

// One block: *loss = Σ_i (rowLse[i] + colLse[i] − 2·s·G[i,i]) / (2B); with
// part (not null), *dls += Σ part (the logit scale's gradient).
extern "C" __global__ void lit_nce_finish(float* loss, float* dls, const float* rowLse, const float* colLse, const float* G,
                                          const float* part, const float* ls, int B) {
    __shared__ float sh[32];
    float s = expf(*ls);
    float l = 0.f, d = 0.f;
    for (int i = threadIdx.x; i < B; i += blockDim.x) {
        l += rowLse[i] + colLse[i] - 2.f * s * G[(long)i * B + i];
        if (part) d += part[i];
    }
    l = block_sum(l, sh);
    d = block_sum(d, sh);
    if (threadIdx.x == 0) {
        *loss = l * 0.5f / B;
        if (part) *dls += d;
    }
}

// ---- backward helpers ----

// dx = dout · act'(x), written (not accumulated): the MLP's pre-activation gradient.
template <typename T> __device__ void lit_act_bwd_impl(T* dx, const T* dout, const T* x, long n, int act) {
    GRID_STRIDE(i, n) {
        float v = ld(x, i), d;
        if (act == 1) {
            float cdf = 0.5f * (1.f + erff(v * 0.70710678118654752f));
            float pdf = 0.39894228040143268f * __expf(-0.5f * v * v);
            d = cdf + v * pdf;
        } else if (act == 2) {
            float s = 1.f / (1.f + __expf(-1.702f * v));
            d = s + 1.702f * v * s * (1.f - s);
        } else {
            d = 1.f;
        }
        st(dx, i, ld(dout, i) * d);
    }
}
INSTANTIATE(lit_act_bwd, (float* dx, const float* dout, const float* x, long n, int act),
            (bf16* dx, const bf16* dout, const bf16* x, long n, int act), (dx, dout, x, n, act))

// Attention softmax backward, one block per row of T_ probabilities at a
// pitch ≥ T_ (every array): ds = p ∘ (dp − Σ p∘dp) · scale, dp
// float32 from the dO·Vᵀ GEMM, ds of the activation type for the next
// GEMMs (masked entries have p = 0; the pitch's tail is written 0).
template <typename T> __device__ void lit_softmax_bwd_impl(T* ds, const float* dp, const T* p, int T_, int pitch, float scale) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    float s = 0.f;
    for (int k = threadIdx.x; k < T_; k += blockDim.x) s += ld(p, row * pitch + k) * dp[row * pitch + k];
    s = block_sum(s, sh);
    for (int k = threadIdx.x; k < pitch; k += blockDim.x) {
        float v = 0.f;
        if (k < T_) v = ld(p, row * pitch + k) * (dp[row * pitch + k] - s) * scale;
        st(ds, row * pitch + k, v);
    }
}
INSTANTIATE(lit_softmax_bwd, (float* ds, const float* dp, const float* p, int T, int pitch, float scale),
            (bf16* ds, const float* dp, const bf16* p, int T, int pitch, float scale), (ds, dp, p, T, pitch, scale))

// heads (B·H, Tp, D) = x (B·T, C) split by head, rows at a pitch of Tp ≥ T
// (rows T..Tp are not written): the attention output's gradient.
template <typename T> __device__ void lit_split_heads1_impl(T* heads, const T* x, int B, int T_, int H, int D, int Tp) {
    long C = (long)H * D;
    GRID_STRIDE(i, (long)B * T_ * C) {
        long bt = i / C;
        int c = (int)(i - bt * C);
        int b = (int)(bt / T_), t = (int)(bt - (long)b * T_);
        int h = c / D, d = c - h * D;
        heads[(((long)b * H + h) * Tp + t) * D + d] = x[i];
    }
}
INSTANTIATE(lit_split_heads1, (float* heads, const float* x, int B, int T, int H, int D, int Tp),
            (bf16* heads, const bf16* x, int B, int T, int H, int D, int Tp), (heads, x, B, T, H, D, Tp))

// dqkv (B·T, 3C) = dq, dk, dv each (B·H, Tp, D), written (not accumulated).
template <typename T> __device__ void lit_merge_qkv_impl(T* dqkv, const T* dq, const T* dk, const T* dv, int B, int T_,
                                                         int H, int D, int Tp) {
    long C = (long)H * D;
    GRID_STRIDE(i, (long)B * T_ * C) {
        long bt = i / C;
        int c = (int)(i - bt * C);
        int b = (int)(bt / T_), t = (int)(bt - (long)b * T_);
        int h = c / D, d = c - h * D;
        long o = (((long)b * H + h) * Tp + t) * D + d;
        T* row = dqkv + bt * 3 * C;
        row[c] = dq[o];
        row[C + c] = dk[o];
        row[2 * C + c] = dv[o];
    }
}
INSTANTIATE(lit_merge_qkv,
            (float* dqkv, const float* dq, const float* dk, const float* dv, int B, int T, int H, int D, int Tp),
            (bf16* dqkv, const bf16* dq, const bf16* dk, const bf16* dv, int B, int T, int H, int D, int Tp),
            (dqkv, dq, dk, dv, B, T, H, D, Tp))

// ---- column reductions (bias gradients, the positional embedding's) ----
// Two stages instead of one thread per column looping over every row (a
// handful of blocks on a 132-SM GPU) or atomics: grid (ceil(C/256), G),
// block g sums its share of the R rows for 256 columns, reading whole
// coalesced row segments; lit_colsum_finish adds the G partials.

// part (G, C): part[g, c] = Σ over block g's rows of x[r, c].
template <typename T> __device__ void lit_colsum_impl(float* part, const T* x, long R, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    long per = (R + gridDim.y - 1) / gridDim.y;
    long r0 = (long)blockIdx.y * per, r1 = min(R, r0 + per);
    if (c >= C) return;
    float s = 0.f;
    for (long r = r0; r < r1; r++) s += ld(x, r * C + c);
    part[(long)blockIdx.y * C + c] = s;
}
INSTANTIATE(lit_colsum, (float* part, const float* x, long R, int C), (float* part, const bf16* x, long R, int C),
            (part, x, R, C))

// out (C) += Σ_g part[g, c].
extern "C" __global__ void lit_colsum_finish(float* out, const float* part, int G, int C) {
    GRID_STRIDE(c, C) {
        float s = 0.f;
        for (int g = 0; g < G; g++) s += part[(long)g * C + c];
        out[c] += s;
    }
}

// a (C) += Σ_g part[g, c], b (C) += Σ_g part[g, C + c] for part (G, 2C):
// the LayerNorm gain and bias gradients; either may be null.
extern "C" __global__ void lit_colsum2_finish(float* a, float* b, const float* part, int G, int C) {
    GRID_STRIDE(c, C) {
        float sa = 0.f, sb = 0.f;
        for (int g = 0; g < G; g++) {
            sa += part[(long)g * 2 * C + c];
            sb += part[(long)g * 2 * C + C + c];
        }
        if (a) a[c] += sa;
        if (b) b[c] += sb;
    }
}

// LayerNorm backward without atomics. Block g of the grid takes a run of
// rows; each thread owns up to 4 columns (blockDim.x·4 ≥ C), keeps its
// columns' gain and bias gradient sums in registers over the block's rows
// and writes them once to part (G, 2C) (then lit_colsum2_finish): one
// write per block and column where the old kernel made one atomic add per
// row and column, all rows on the same C addresses. dx (when not null)
// accumulates: dx += (dn − mean(dn) − norm·mean(dn·norm))·rstd, dn = dout·gamma.
template <typename T> __device__ void lit_ln_bwd_impl(T* dx, float* part, const T* dout, const T* x, const T* gamma,
                                                      const float* mean, const float* rstd, long N, int C) {
    __shared__ float sh[32], sh2[32];
    float dg[4] = {0.f, 0.f, 0.f, 0.f}, db[4] = {0.f, 0.f, 0.f, 0.f};
    long per = (N + gridDim.x - 1) / gridDim.x;
    long r0 = (long)blockIdx.x * per, r1 = min(N, r0 + per);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (long row = r0; row < r1; row++) {
        float mu = mean[row], rs = rstd[row];
        float nv[4], dn[4], s1 = 0.f, s2 = 0.f;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            int c = threadIdx.x + k * blockDim.x;
            nv[k] = 0.f;
            dn[k] = 0.f;
            if (c < C) {
                float g = ld(dout, row * C + c);
                nv[k] = (ld(x, row * C + c) - mu) * rs;
                dn[k] = g * ld(gamma, c);
                s1 += dn[k];
                s2 += dn[k] * nv[k];
                dg[k] += g * nv[k];
                db[k] += g;
            }
        }
        // both row sums in one block reduction
        s1 = warp_sum(s1);
        s2 = warp_sum(s2);
        __syncthreads();
        if (lane == 0) {
            sh[warp] = s1;
            sh2[warp] = s2;
        }
        __syncthreads();
        s1 = 0.f;
        s2 = 0.f;
        for (int w = 0; w < nw; w++) {
            s1 += sh[w];
            s2 += sh2[w];
        }
        s1 /= C;
        s2 /= C;
        if (dx) {
#pragma unroll
            for (int k = 0; k < 4; k++) {
                int c = threadIdx.x + k * blockDim.x;
                if (c < C) st(dx, row * C + c, ld(dx, row * C + c) + (dn[k] - s1 - nv[k] * s2) * rs);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < 4; k++) {
        int c = threadIdx.x + k * blockDim.x;
        if (c < C) {
            part[(long)blockIdx.x * 2 * C + c] = dg[k];
            part[(long)blockIdx.x * 2 * C + C + c] = db[k];
        }
    }
}
INSTANTIATE(lit_ln_bwd,
            (float* dx, float* part, const float* dout, const float* x, const float* gamma, const float* mean,
             const float* rstd, long N, int C),
            (bf16* dx, float* part, const bf16* dout, const bf16* x, const bf16* gamma, const float* mean,
             const float* rstd, long N, int C),
            (dx, part, dout, x, gamma, mean, rstd, N, C))

// ---- the optimizer ----

// AdamW over the flat parameter buffer (torch.optim.AdamW's formula, as the
// adamw kernel), with what changes between steps read from device memory so
// that a captured CUDA graph replays it: hyper = {lr, 1−β1^t, 1−β2^t}. The
// first ndecay elements decay (the weights), the rest do not (gains,
// biases, logit_scale). With clip > 0 the gradient is scaled by
// min(1, clip/(√sumsq + 1e-6)) first (torch's clip_grad_norm_). Element
// clamp_i (logit_scale) is clamped to [0, clamp_hi] after its update
// (OpenCLIP), and p16, when not null, receives the bf16 copy the next
// step's forward reads.
extern "C" __global__ void lit_adamw(float* p, bf16* p16, const float* g, float* m, float* v, long n, long ndecay,
                                     const float* hyper, const double* sumsq, float beta1, float beta2, float eps, float wd,
                                     float clip, long clamp_i, float clamp_hi) {
    float lr = hyper[0], bc1 = hyper[1], bc2 = hyper[2];
    float coef = 1.f;
    if (clip > 0.f) {
        float c = clip / ((float)sqrt(*sumsq) + 1e-6f);
        if (c < 1.f) coef = c;
    }
    GRID_STRIDE(i, n) {
        float gi = g[i] * coef;
        float pi = p[i];
        if (i < ndecay) pi *= 1.f - lr * wd;
        float mi = beta1 * m[i] + (1.f - beta1) * gi;
        float vi = beta2 * v[i] + (1.f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        pi -= lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
        if (i == clamp_i) pi = fminf(fmaxf(pi, 0.f), clamp_hi);
        p[i] = pi;
        if (p16) p16[i] = f2bf(pi);
    }
}

// ---- zero-shot scoring ----

// pred (R,P), val (R,P): the P ≤ 8 largest entries of each row of sims
// (R,K), best first, ties to the lower index (evaluate's rule). One warp
// per row: each lane keeps the best P of its strided columns, lane 0 merges
// the 32 lists.
extern "C" __global__ void lit_topk(int* pred, float* val, const float* sims, int R, int K, int P) {
    __shared__ float sv[4][32][8];
    __shared__ int si[4][32][8];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    long row = (long)blockIdx.x * 4 + warp;
    float bv[8];
    int bi[8];
    for (int q = 0; q < 8; q++) {
        bv[q] = -INFINITY;
        bi[q] = 0x7fffffff;
    }
    if (row < R) {
        const float* s = sims + row * K;
        for (int j = lane; j < K; j += 32) {
            float x = s[j];
            if (!(x > bv[P - 1])) continue; // a later index never displaces an equal value
            int q = P - 1;
            while (q > 0 && x > bv[q - 1]) {
                bv[q] = bv[q - 1];
                bi[q] = bi[q - 1];
                q--;
            }
            bv[q] = x;
            bi[q] = j;
        }
    }
    for (int q = 0; q < 8; q++) {
        sv[warp][lane][q] = bv[q];
        si[warp][lane][q] = bi[q];
    }
    __syncwarp();
    if (lane == 0 && row < R) {
        int head[32];
        for (int l = 0; l < 32; l++) head[l] = 0;
        for (int q = 0; q < P; q++) {
            int best = -1;
            for (int l = 0; l < 32; l++) {
                if (head[l] >= P) continue;
                float x = sv[warp][l][head[l]];
                int ix = si[warp][l][head[l]];
                if (best < 0 || x > sv[warp][best][head[best]] ||
                    (x == sv[warp][best][head[best]] && ix < si[warp][best][head[best]]))
                    best = l;
            }
            pred[row * P + q] = si[warp][best][head[best]];
            val[row * P + q] = sv[warp][best][head[best]];
            head[best]++;
        }
    }
}
