// The backend's own GEMM, for shapes, types or alignments cuBLASLt has no
// algorithm for: the same contract as a cuBLASLt matmul (column-major,
// D = alpha·op(A)·op(B) + beta·D, bias per row of D, tanh-GELU epilogue,
// strided batches), so the backend can switch to it without changing its
// call. 16×16 output tiles through shared memory, float32 accumulation;
// correctness, not speed: it runs only where the library declines.
//
// A is (M,K) column-major with leading dim lda when !transA, (K,M) when
// transA; B is (K,N) / (N,K) likewise; D (M,N) with ldd. grid (ceil(N/16),
// ceil(M/16), batch), block (16,16).

#define GT 16

__device__ __forceinline__ float gelu_tanh(float x) {
    return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

template <typename TI, typename TO>
__device__ void gemm_ref_impl(TO* D, const TI* A, const TI* B, const TO* bias, int M, int N, int K, int lda, int ldb,
                              int ldd, long strideA, long strideB, long strideD, int transA, int transB, float alpha,
                              float beta, int gelu) {
    __shared__ float sa[GT][GT + 1];
    __shared__ float sb[GT][GT + 1];
    const TI* a = A + blockIdx.z * strideA;
    const TI* bm = B + blockIdx.z * strideB;
    TO* d = D + blockIdx.z * strideD;
    int tx = threadIdx.x, ty = threadIdx.y;
    int i = blockIdx.y * GT + ty; // row of D
    int j = blockIdx.x * GT + tx; // column of D
    float acc = 0.f;
    for (int k0 = 0; k0 < K; k0 += GT) {
        // sa[ty][tx] = op(A)[blockIdx.y*GT + ty][k0 + tx]; sb[ty][tx] = op(B)[k0 + ty][blockIdx.x*GT + tx]
        int ar = blockIdx.y * GT + ty, ak = k0 + tx;
        float av = 0.f;
        if (ar < M && ak < K) av = ld(a, transA ? (long)ak + (long)ar * lda : (long)ar + (long)ak * lda);
        int bk = k0 + ty, bc = blockIdx.x * GT + tx;
        float bv = 0.f;
        if (bk < K && bc < N) bv = ld(bm, transB ? (long)bc + (long)bk * ldb : (long)bk + (long)bc * ldb);
        sa[ty][tx] = av;
        sb[ty][tx] = bv;
        __syncthreads();
        for (int k = 0; k < GT; k++) acc += sa[ty][k] * sb[k][tx];
        __syncthreads();
    }
    if (i < M && j < N) {
        long o = (long)i + (long)j * ldd;
        float v = alpha * acc;
        if (beta != 0.f) v += beta * ld(d, o);
        if (bias) v += ld(bias, i);
        if (gelu) v = gelu_tanh(v);
        st(d, o, v);
    }
}

extern "C" __global__ void gemm_ref_f32(float* D, const float* A, const float* B, const float* bias, int M, int N, int K,
                                        int lda, int ldb, int ldd, long strideA, long strideB, long strideD, int transA,
                                        int transB, float alpha, float beta, int gelu) {
    gemm_ref_impl<float, float>(D, A, B, bias, M, N, K, lda, ldb, ldd, strideA, strideB, strideD, transA, transB, alpha, beta, gelu);
}

extern "C" __global__ void gemm_ref_bf16(bf16* D, const bf16* A, const bf16* B, const bf16* bias, int M, int N, int K,
                                         int lda, int ldb, int ldd, long strideA, long strideB, long strideD, int transA,
                                         int transB, float alpha, float beta, int gelu) {
    gemm_ref_impl<bf16, bf16>(D, A, B, bias, M, N, K, lda, ldb, ldd, strideA, strideB, strideD, transA, transB, alpha, beta, gelu);
}

// bf16 inputs, float32 output (the attention scores)
extern "C" __global__ void gemm_ref_bf16_f32(float* D, const bf16* A, const bf16* B, const float* bias, int M, int N,
                                             int K, int lda, int ldb, int ldd, long strideA, long strideB, long strideD,
                                             int transA, int transB, float alpha, float beta, int gelu) {
    gemm_ref_impl<bf16, float>(D, A, B, bias, M, N, K, lda, ldb, ldd, strideA, strideB, strideD, transA, transB, alpha, beta, gelu);
}
