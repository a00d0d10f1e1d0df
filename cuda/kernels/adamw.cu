// AdamW on float32 master weights (PyTorch torch.optim.AdamW formula), with the
// bf16 copy of the weights the forward pass reads refreshed in the same pass.
extern "C" __global__ void adamw(float* param, bf16* param_bf16, const float* grad, float* m, float* v,
                                 long n, float lr, float beta1, float beta2, float eps, float wd,
                                 float bc1, float bc2) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float p = param[i] * (1.f - lr * wd);
    float g = grad[i];
    float mi = beta1 * m[i] + (1.f - beta1) * g;
    float vi = beta2 * v[i] + (1.f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    p -= lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    param[i] = p;
    if (param_bf16) param_bf16[i] = f2bf(p);
}
