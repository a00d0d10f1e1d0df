// AdamW on float32 parameters (PyTorch torch.optim.AdamW formula, decoupled
// weight decay, bias corrections bc1 = 1-β1^t, bc2 = 1-β2^t).
extern "C" __global__ void adamw(float* param, const float* grad, float* m, float* v, long n, float lr,
                                 float beta1, float beta2, float eps, float wd, float bc1, float bc2) {
    GRID_STRIDE(i, n) {
        float p = param[i] * (1.f - lr * wd);
        float g = grad[i];
        float mi = beta1 * m[i] + (1.f - beta1) * g;
        float vi = beta2 * v[i] + (1.f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = p - lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    }
}
