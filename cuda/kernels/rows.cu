// Row-wise kernels: one block per row, float32 statistics.
// Letters: N rows, C channels, T tokens.

// LayerNorm over C: out = (x-mean)*rstd*gamma + beta; mean, rstd (N) float32 when not null.
template <typename T> __device__ void layernorm_impl(T* out, const T* x, const T* gamma, const T* beta,
                                                     float* mean_out, float* rstd_out, int C, float eps) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    const T* xr = x + row * C;
    float s = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += ld(xr, c);
    float mean = block_sum(s, sh) / C;
    float v = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float d = ld(xr, c) - mean;
        v += d * d;
    }
    float rstd = rsqrtf(block_sum(v, sh) / C + eps);
    T* o = out + row * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        st(o, c, (ld(xr, c) - mean) * rstd * ld(gamma, c) + ld(beta, c));
    if (threadIdx.x == 0) {
        if (mean_out) mean_out[row] = mean;
        if (rstd_out) rstd_out[row] = rstd;
    }
}
INSTANTIATE(layernorm,
            (float* o, const float* x, const float* g, const float* b, float* m, float* r, int C, float eps),
            (bf16* o, const bf16* x, const bf16* g, const bf16* b, float* m, float* r, int C, float eps),
            (o, x, g, b, m, r, C, eps))

// Scaled, optionally causal softmax of attention scores: scores (B*H*T rows,
// pitch lds) float32 from the QKᵀ GEMM, probabilities written to probs (rows
// of pitch ldp, storage T). Row index = (bh*T + q); keys after q are masked
// when causal; columns T..ldp of probs are written as 0, so a padded probs
// matrix can feed the PV GEMM.
template <typename T> __device__ void attn_softmax_impl(T* probs, const float* scores, int T_, int lds, int ldp,
                                                        float scale, int causal) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    int q = (int)(row % T_);
    const float* a = scores + row * lds;
    int lim = causal ? q + 1 : T_;
    float m = -INFINITY;
    for (int k = threadIdx.x; k < lim; k += blockDim.x) m = fmaxf(m, a[k] * scale);
    m = block_max(m, sh);
    float s = 0.f;
    for (int k = threadIdx.x; k < lim; k += blockDim.x) s += __expf(a[k] * scale - m);
    s = block_sum(s, sh);
    float inv = 1.f / s;
    for (int k = threadIdx.x; k < ldp; k += blockDim.x)
        st(probs, row * ldp + k, k < lim ? __expf(a[k] * scale - m) * inv : 0.f);
}
INSTANTIATE(attn_softmax, (float* p, const float* s, int T, int lds, int ldp, float scale, int causal),
            (bf16* p, const float* s, int T, int lds, int ldp, float scale, int causal), (p, s, T, lds, ldp, scale, causal))

// Residual add fused with LayerNorm: sum = x + r[row mod period]; out =
// (sum-mean)*rstd*gamma + beta over C. sum_out (may be x, or null: not
// written) keeps the residual stream; one pass reads x and r once instead of
// an Add pass and a LayerNorm pass (3+2 row traffic → 2 or 3). Rows are
// staged in shared memory (C <= 8192 floats).
template <typename T> __device__ void add_layernorm_impl(T* sum_out, T* out, const T* x, const T* r, const T* gamma,
                                                         const T* beta, int C, int period, float eps) {
    __shared__ float sh[32];
    __shared__ float row_buf[8192];
    long row = blockIdx.x;
    const T* xr = x + row * C;
    const T* rr = r + (row % period) * C;
    float s = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = ld(xr, c) + ld(rr, c);
        if (sum_out) {
            st(sum_out, row * C + c, v);
            v = ld(sum_out, row * C + c); // the stream as stored (bf16-rounded), as an Add then a LayerNorm would see it
        }
        row_buf[c] = v;
        s += v;
    }
    float mean = block_sum(s, sh) / C;
    float var = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float d = row_buf[c] - mean;
        var += d * d;
    }
    float rstd = rsqrtf(block_sum(var, sh) / C + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        st(out, row * C + c, (row_buf[c] - mean) * rstd * ld(gamma, c) + ld(beta, c));
}
INSTANTIATE(add_layernorm,
            (float* s, float* o, const float* x, const float* r, const float* g, const float* b, int C, int period, float eps),
            (bf16* s, bf16* o, const bf16* x, const bf16* r, const bf16* g, const bf16* b, int C, int period, float eps),
            (s, o, x, r, g, b, C, period, eps))

// Row L2 normalisation: out = x / ||x||.
template <typename T> __device__ void l2normalize_impl(T* out, const T* x, int C) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    const T* xr = x + row * C;
    float s = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = ld(xr, c);
        s += v * v;
    }
    float inv = rsqrtf(fmaxf(block_sum(s, sh), 1e-24f));
    for (int c = threadIdx.x; c < C; c += blockDim.x) st(out, row * C + c, ld(xr, c) * inv);
}
INSTANTIATE(l2normalize, (float* o, const float* x, int C), (bf16* o, const bf16* x, int C), (o, x, C))

// Softmax cross-entropy per row of logits (N,M) against targets: loss (N)
// float32 per row; dlogits (N,M) += scale*(softmax - onehot)/N when not null.
template <typename T> __device__ void cross_entropy_impl(const T* logits, const int* targets, float* loss,
                                                         T* dlogits, int N, int M, float scale) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    const T* l = logits + row * M;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < M; j += blockDim.x) m = fmaxf(m, ld(l, j));
    m = block_max(m, sh);
    float s = 0.f;
    for (int j = threadIdx.x; j < M; j += blockDim.x) s += __expf(ld(l, j) - m);
    s = block_sum(s, sh);
    int t = targets[row];
    if (threadIdx.x == 0) loss[row] = logf(s) + m - ld(l, t);
    if (dlogits) {
        float inv = 1.f / s;
        for (int j = threadIdx.x; j < M; j += blockDim.x) {
            float p = __expf(ld(l, j) - m) * inv - (j == t ? 1.f : 0.f);
            long i = row * M + j;
            st(dlogits, i, ld(dlogits, i) + scale * p / N);
        }
    }
}
INSTANTIATE(cross_entropy,
            (const float* l, const int* t, float* loss, float* dl, int N, int M, float scale),
            (const bf16* l, const int* t, float* loss, bf16* dl, int N, int M, float scale),
            (l, t, loss, dl, N, M, scale))
