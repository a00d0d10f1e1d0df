// Backward kernels (float32 storage: training keeps float32 gradients).
// All ACCUMULATE into their gradient outputs, as backend.Backend specifies.

// dx += dout * act'(x)
extern "C" __global__ void activation_bwd(float* dx, const float* dout, const float* x, long n, int act) {
    GRID_STRIDE(i, n) {
        float v = x[i], d;
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
        dx[i] += dout[i] * d;
    }
}

// dx[rows[r]] += dout[r] (also the embedding backward with rows = ids)
extern "C" __global__ void scatter_add_rows(float* dx, const float* dout, const int* rows, long R, int C) {
    GRID_STRIDE(i, R * C) {
        long r = i / C;
        int c = (int)(i - r * C);
        atomicAdd(&dx[(long)rows[r] * C + c], dout[i]);
    }
}

// y = x/||x||: dx += (dout - y (y·dout)) / ||x||
extern "C" __global__ void l2normalize_bwd(float* dx, const float* dout, const float* x, int C) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    const float* xr = x + row * C;
    const float* g = dout + row * C;
    float ss = 0.f, xg = 0.f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        ss += xr[c] * xr[c];
        xg += xr[c] * g[c];
    }
    ss = block_sum(ss, sh);
    xg = block_sum(xg, sh);
    float inv = rsqrtf(fmaxf(ss, 1e-24f));
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        dx[row * C + c] += (g[c] - xr[c] * inv * inv * xg) * inv;
}

// Softmax backward for attention rows: ds = p ∘ (dp − Σ p∘dp) · scale, in place in dp.
extern "C" __global__ void attn_softmax_bwd(float* dp, const float* p, int T, float scale) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    const float* pr = p + row * T;
    float* d = dp + row * T;
    float s = 0.f;
    for (int k = threadIdx.x; k < T; k += blockDim.x) s += pr[k] * d[k];
    s = block_sum(s, sh);
    for (int k = threadIdx.x; k < T; k += blockDim.x) d[k] = pr[k] * (d[k] - s) * scale;
}

// dqkv (B*T, 3C) += dq, dk, dv each (B*H, T, D)
extern "C" __global__ void merge_heads_qkv_bwd(float* dqkv, const float* dq, const float* dk, const float* dv,
                                               int B, int T, int H, int D) {
    long C = (long)H * D;
    GRID_STRIDE(i, (long)B * T * C) {
        long bt = i / C;
        int c = (int)(i - bt * C);
        int b = (int)(bt / T), t = (int)(bt - (long)b * T);
        int h = c / D, d = c - h * D;
        long o = (((long)b * H + h) * T + t) * D + d;
        float* row = dqkv + bt * 3 * C;
        row[c] += dq[o];
        row[C + c] += dk[o];
        row[2 * C + c] += dv[o];
    }
}

// Σ x² into a double accumulator.
extern "C" __global__ void sum_squares(double* out, const float* x, long n) {
    __shared__ float sh[32];
    float s = 0.f;
    GRID_STRIDE(i, n) s += x[i] * x[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) atomicAdd(out, (double)s);
}
