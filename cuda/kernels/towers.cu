// Kernels the non-CLIP image towers add (DINOv2, Swin): the additive
// attention bias of AttentionBias and the SwiGLU gate. Letters: B batch,
// H heads, T tokens, G bias groups (Swin: windows per image), F gate width.

// Scaled softmax of attention scores plus a bias: scores (B*H*T rows, pitch
// lds) float32 from the QKᵀ GEMM, bias (G,H,T,T) in T storage, batch entry b
// taking bias[b mod G]; probs rows of pitch ldp (storage T), columns T..ldp
// written as 0 so a padded probs matrix can feed the PV GEMM (as
// attn_softmax). Row index = (b*H + h)*T + q.
template <typename T> __device__ void attn_softmax_bias_impl(T* probs, const float* scores, const T* bias, int T_, int lds,
                                                             int ldp, int H, int G, float scale) {
    __shared__ float sh[32];
    long row = blockIdx.x;
    long bh = row / T_;
    int q = (int)(row - bh * T_);
    int b = (int)(bh / H), h = (int)(bh - (long)b * H);
    const float* a = scores + row * lds;
    const T* bs = bias + ((((long)(b % G) * H + h) * T_) + q) * T_;
    float m = -INFINITY;
    for (int k = threadIdx.x; k < T_; k += blockDim.x) m = fmaxf(m, a[k] * scale + ld(bs, k));
    m = block_max(m, sh);
    float s = 0.f;
    for (int k = threadIdx.x; k < T_; k += blockDim.x) s += __expf(a[k] * scale + ld(bs, k) - m);
    s = block_sum(s, sh);
    float inv = 1.f / s;
    for (int k = threadIdx.x; k < ldp; k += blockDim.x)
        st(probs, row * ldp + k, k < T_ ? __expf(a[k] * scale + ld(bs, k) - m) * inv : 0.f);
}
INSTANTIATE(attn_softmax_bias, (float* p, const float* s, const float* bias, int T, int lds, int ldp, int H, int G, float scale),
            (bf16* p, const float* s, const bf16* bias, int T, int lds, int ldp, int H, int G, float scale),
            (p, s, bias, T, lds, ldp, H, G, scale))

// out (N,F) = silu(x[:, :F]) * x[:, F:] for x (N,2F); silu(a) = a / (1 + e^-a).
template <typename T> __device__ void swiglu_impl(T* out, const T* x, long N, int F) {
    GRID_STRIDE(i, N * F) {
        long r = i / F;
        int c = (int)(i - r * F);
        float a = ld(x, r * 2 * F + c), g = ld(x, r * 2 * F + F + c);
        st(out, i, a / (1.f + __expf(-a)) * g);
    }
}
INSTANTIATE(swiglu, (float* o, const float* x, long N, int F), (bf16* o, const bf16* x, long N, int F), (o, x, N, F))
