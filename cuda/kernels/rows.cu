// Row-wise kernels: one block per row. Letters: N rows, C channels.

// LayerNorm over C: out = (x-mean)*rstd*gamma + beta; mean, rstd (N) float32 when not null.
extern "C" __global__ void layernorm(bf16* out, const bf16* x, const bf16* gamma, const bf16* beta,
                                     float* mean_out, float* rstd_out, int C, float eps) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    const bf16* xr = x + row * C;
    float s = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) s += bf2f(xr[c]);
    float mean = block_sum(s, sh) / C;
    float v = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float d = bf2f(xr[c]) - mean;
        v += d * d;
    }
    float rstd = rsqrtf(block_sum(v, sh) / C + eps);
    bf16* o = out + row * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        o[c] = f2bf((bf2f(xr[c]) - mean) * rstd * bf2f(gamma[c]) + bf2f(beta[c]));
    if (threadIdx.x == 0) {
        if (mean_out) mean_out[row] = mean;
        if (rstd_out) rstd_out[row] = rstd;
    }
}

// Scaled, optionally causal softmax over attention scores in place:
// att (B*H, T, T) float32 rows; row index = (bh*T + q); keys after q masked when causal.
extern "C" __global__ void attn_softmax(float* att, bf16* probs_bf16, int T, float scale, int causal) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    int q = (int)(row % T);
    float* a = att + row * T;
    int lim = causal ? q + 1 : T;
    float m = -INFINITY;
    for (int k = threadIdx.x; k < lim; k += blockDim.x) m = fmaxf(m, a[k] * scale);
    m = block_max(m, sh);
    float s = 0.f;
    for (int k = threadIdx.x; k < lim; k += blockDim.x) s += __expf(a[k] * scale - m);
    s = block_sum(s, sh);
    float inv = 1.f / s;
    for (int k = threadIdx.x; k < T; k += blockDim.x) {
        float p = k < lim ? __expf(a[k] * scale - m) * inv : 0.f;
        a[k] = p;
        if (probs_bf16) probs_bf16[row * T + k] = f2bf(p);
    }
}

// Row L2 normalisation: out = x / ||x||.
extern "C" __global__ void l2normalize(bf16* out, const bf16* x, int C) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    const bf16* xr = x + row * C;
    float s = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = bf2f(xr[c]);
        s += v * v;
    }
    float inv = rsqrtf(fmaxf(block_sum(s, sh), 1e-24f));
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[row * C + c] = f2bf(bf2f(xr[c]) * inv);
}

// Softmax cross-entropy per row of logits (N,M) float32 against targets; loss (N) per row;
// dlogits (N,M) += scale*(softmax - onehot)/N when not null.
extern "C" __global__ void cross_entropy(const float* logits, const int* targets, float* loss,
                                         float* dlogits, int N, int M, float scale) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    const float* l = logits + row * M;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < M; j += blockDim.x) m = fmaxf(m, l[j]);
    m = block_max(m, sh);
    float s = 0.f;
    for (int j = threadIdx.x; j < M; j += blockDim.x) s += __expf(l[j] - m);
    s = block_sum(s, sh);
    int t = targets[row];
    if (threadIdx.x == 0) loss[row] = logf(s) + m - l[t];
    if (dlogits) {
        float inv = 1.f / s;
        for (int j = threadIdx.x; j < M; j += blockDim.x) {
            float p = __expf(l[j] - m) * inv - (j == t ? 1.f : 0.f);
            dlogits[row * M + j] += scale * p / N;
        }
    }
}
