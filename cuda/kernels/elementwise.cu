// Elementwise and row-gather kernels, each for float (_f32) and bf16 (_bf16)
// storage. Letters: N rows, C channels, T tokens, B batch, H heads, D head dim.

extern "C" __global__ void f32_to_bf16(bf16* y, const float* x, long n) {
    GRID_STRIDE(i, n) y[i] = f2bf(x[i]);
}

extern "C" __global__ void bf16_to_f32(float* y, const bf16* x, long n) {
    GRID_STRIDE(i, n) y[i] = bf2f(x[i]);
}

// y = act(x) (y may be x)
template <typename T> __device__ void activation_impl(T* y, const T* x, long n, int act) {
    GRID_STRIDE(i, n) st(y, i, apply_act(ld(x, i), act));
}
INSTANTIATE(activation, (float* y, const float* x, long n, int act), (bf16* y, const bf16* x, long n, int act), (y, x, n, act))

// out = a + b
template <typename T> __device__ void add_impl(T* out, const T* a, const T* b, long n) {
    GRID_STRIDE(i, n) st(out, i, ld(a, i) + ld(b, i));
}
INSTANTIATE(add, (float* o, const float* a, const float* b, long n), (bf16* o, const bf16* a, const bf16* b, long n), (o, a, b, n))

// out (N,C) = x (N,C) + p[row mod T]
template <typename T> __device__ void add_periodic_impl(T* out, const T* x, const T* p, long N, int C, int T_) {
    GRID_STRIDE(i, N * C) {
        long row = i / C;
        int c = (int)(i - row * C);
        st(out, i, ld(x, i) + ld(p, (row % T_) * C + c));
    }
}
INSTANTIATE(add_periodic, (float* o, const float* x, const float* p, long N, int C, int T), (bf16* o, const bf16* x, const bf16* p, long N, int C, int T), (o, x, p, N, C, T))

// out (N,C) = table[ids[n]]
template <typename T> __device__ void embedding_impl(T* out, const T* table, const int* ids, long N, int C) {
    GRID_STRIDE(i, N * C) {
        long row = i / C;
        int c = (int)(i - row * C);
        out[i] = table[(long)ids[row] * C + c];
    }
}
INSTANTIATE(embedding, (float* o, const float* t, const int* ids, long N, int C), (bf16* o, const bf16* t, const int* ids, long N, int C), (o, t, ids, N, C))

// out (R,C) = x[rows[r]]
template <typename T> __device__ void gather_rows_impl(T* out, const T* x, const int* rows, long R, int C) {
    GRID_STRIDE(i, R * C) {
        long r = i / C;
        int c = (int)(i - r * C);
        out[i] = x[(long)rows[r] * C + c];
    }
}
INSTANTIATE(gather_rows, (float* o, const float* x, const int* rows, long R, int C), (bf16* o, const bf16* x, const int* rows, long R, int C), (o, x, rows, R, C))

// pixels (B,3,S,S) -> out (B*G*G, 3*P*P), G = S/P, rows ordered (channel, dy, dx)
template <typename T> __device__ void patchify_impl(T* out, const T* pixels, int B, int S, int P) {
    int G = S / P;
    long cols = 3L * P * P;
    GRID_STRIDE(i, (long)B * G * G * cols) {
        long row = i / cols;
        int col = (int)(i - row * cols);
        int b = (int)(row / (G * G));
        int g = (int)(row - (long)b * G * G);
        int gy = g / G, gx = g - gy * G;
        int ch = col / (P * P);
        int r = col - ch * P * P;
        int dy = r / P, dx = r - dy * P;
        out[i] = pixels[(((long)b * 3 + ch) * S + gy * P + dy) * S + gx * P + dx];
    }
}
INSTANTIATE(patchify, (float* o, const float* px, int B, int S, int P), (bf16* o, const bf16* px, int B, int S, int P), (o, px, B, S, P))

// out (B,T+1,C): out[b,0] = tok, out[b,1:] = x (B,T,C)
template <typename T> __device__ void prepend_row_impl(T* out, const T* x, const T* tok, int B, int T_, int C) {
    GRID_STRIDE(i, (long)B * (T_ + 1) * C) {
        long row = i / C;
        int c = (int)(i - row * C);
        int b = (int)(row / (T_ + 1));
        int t = (int)(row - (long)b * (T_ + 1));
        out[i] = t == 0 ? tok[c] : x[((long)b * T_ + t - 1) * C + c];
    }
}
INSTANTIATE(prepend_row, (float* o, const float* x, const float* tok, int B, int T, int C), (bf16* o, const bf16* x, const bf16* tok, int B, int T, int C), (o, x, tok, B, T, C))

// t *= alpha
template <typename T> __device__ void scale_impl(T* t, long n, float alpha) {
    GRID_STRIDE(i, n) st(t, i, ld(t, i) * alpha);
}
INSTANTIATE(scale, (float* t, long n, float a), (bf16* t, long n, float a), (t, n, a))

// qkv (B*T, 3C) -> q, k, v each (B*H, Tp, D), C = H*D: head rows at a pitch
// of Tp >= T (the attention pads T to a multiple of 8 so that every batched
// GEMM stride is 16-byte aligned; rows T..Tp are never read)
template <typename T> __device__ void split_heads_impl(T* q, T* k, T* v, const T* qkv, int B, int T_, int H, int D, int Tp) {
    long C = (long)H * D;
    GRID_STRIDE(i, (long)B * T_ * C) {
        long bt = i / C;
        int c = (int)(i - bt * C);
        int b = (int)(bt / T_), t = (int)(bt - (long)b * T_);
        int h = c / D, d = c - h * D;
        long o = (((long)b * H + h) * Tp + t) * D + d;
        const T* row = qkv + bt * 3 * C;
        q[o] = row[c];
        k[o] = row[C + c];
        v[o] = row[2 * C + c];
    }
}
INSTANTIATE(split_heads, (float* q, float* k, float* v, const float* qkv, int B, int T, int H, int D, int Tp),
            (bf16* q, bf16* k, bf16* v, const bf16* qkv, int B, int T, int H, int D, int Tp), (q, k, v, qkv, B, T, H, D, Tp))

// heads (B*H, Tp, D) -> out (B*T, C), head rows at a pitch of Tp >= T
template <typename T> __device__ void merge_heads_impl(T* out, const T* heads, int B, int T_, int H, int D, int Tp) {
    long C = (long)H * D;
    GRID_STRIDE(i, (long)B * T_ * C) {
        long bt = i / C;
        int c = (int)(i - bt * C);
        int b = (int)(bt / T_), t = (int)(bt - (long)b * T_);
        int h = c / D, d = c - h * D;
        out[i] = heads[(((long)b * H + h) * Tp + t) * D + d];
    }
}
INSTANTIATE(merge_heads, (float* o, const float* hd, int B, int T, int H, int D, int Tp),
            (bf16* o, const bf16* hd, int B, int T, int H, int D, int Tp), (o, hd, B, T, H, D, Tp))

// x (B*T, C) -> heads (B*H, T, D)
template <typename T> __device__ void split_heads1_impl(T* heads, const T* x, int B, int T_, int H, int D) {
    long C = (long)H * D;
    GRID_STRIDE(i, (long)B * T_ * C) {
        long bt = i / C;
        int c = (int)(i - bt * C);
        int b = (int)(bt / T_), t = (int)(bt - (long)b * T_);
        int h = c / D, d = c - h * D;
        heads[(((long)b * H + h) * T_ + t) * D + d] = x[i];
    }
}
INSTANTIATE(split_heads1, (float* hd, const float* x, int B, int T, int H, int D), (bf16* hd, const bf16* x, int B, int T, int H, int D), (hd, x, B, T, H, D))
