// Elementwise and row-gather kernels. Letters: N rows, C channels, T tokens.

// x (n) float32 -> y (n) bf16
extern "C" __global__ void f32_to_bf16(bf16* y, const float* x, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = f2bf(x[i]);
}

// x (n) bf16 -> y (n) float32
extern "C" __global__ void bf16_to_f32(float* y, const bf16* x, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = bf2f(x[i]);
}

// y = act(x), n elements (y may be x)
extern "C" __global__ void activation(bf16* y, const bf16* x, long n, int act) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = f2bf(apply_act(bf2f(x[i]), act));
}

// out = a + b (residual), n elements
extern "C" __global__ void add(bf16* out, const bf16* a, const bf16* b, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = f2bf(bf2f(a[i]) + bf2f(b[i]));
}

// out (N,C) = x (N,C) + p[row mod T] (positional embeddings)
extern "C" __global__ void add_periodic(bf16* out, const bf16* x, const bf16* p, long N, int C, int T) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * C) return;
    long row = i / C;
    int c = (int)(i - row * C);
    out[i] = f2bf(bf2f(x[i]) + bf2f(p[(row % T) * C + c]));
}

// out (N,C) = table[ids[n]]
extern "C" __global__ void embedding(bf16* out, const bf16* table, const int* ids, long N, int C) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * C) return;
    long row = i / C;
    int c = (int)(i - row * C);
    out[i] = table[(long)ids[row] * C + c];
}

// out (R,C) = x[rows[r]]
extern "C" __global__ void gather_rows(bf16* out, const bf16* x, const int* rows, long R, int C) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= R * C) return;
    long r = i / C;
    int c = (int)(i - r * C);
    out[i] = x[(long)rows[r] * C + c];
}

// pixels (B,3,S,S) -> out (B*G*G, 3*P*P), G = S/P; each row ordered (channel, dy, dx)
extern "C" __global__ void patchify(bf16* out, const bf16* pixels, int B, int S, int P) {
    int G = S / P;
    long cols = 3L * P * P;
    long total = (long)B * G * G * cols;
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
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

// out (B,T+1,C): out[b,0] = tok, out[b,1:] = x (B,T,C)
extern "C" __global__ void prepend_row(bf16* out, const bf16* x, const bf16* tok, int B, int T, int C) {
    long total = (long)B * (T + 1) * C;
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    long row = i / C;
    int c = (int)(i - row * C);
    int b = (int)(row / (T + 1));
    int t = (int)(row - (long)b * (T + 1));
    out[i] = t == 0 ? tok[c] : x[((long)b * T + t - 1) * C + c];
}

// t *= alpha
extern "C" __global__ void scale(bf16* t, long n, float alpha) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) t[i] = f2bf(bf2f(t[i]) * alpha);
}
