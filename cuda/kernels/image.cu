// Image preprocessing on the GPU: the eval transform's resize (Pillow's
// antialiased bicubic, fixed point, exactly as internal/imageproc computes it)
// and ToTensor+Normalize, from uint8 RGB to the tower's input. The resize
// taps and weights come from the host (imageproc's own coefficient code), so
// the two sides share one definition and the integer arithmetic here gives
// the same bytes as the CPU.
//
// Images are HWC uint8 RGB; rowLen = width*3.

#define PRECISION_BITS 22

__device__ __forceinline__ unsigned char clip8(int v) {
    v >>= PRECISION_BITS;
    return (unsigned char)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass (ImagingResampleHorizontal_8bpc): rows y0..y0+rows of src
// (pitch srcPitch bytes, region starting at column x0) → dst (rows of
// nOut*3 bytes). Output column xx reads n[xx] pixels from start[xx] with
// weights k[xx*ksize ..]. grid-stride over rows*nOut*3.
extern "C" __global__ void resize_h_u8(unsigned char* dst, const unsigned char* src, long srcPitch, int x0, int y0,
                                       int rows, const int* start, const int* n, const int* k, int ksize, int nOut) {
    long total = (long)rows * nOut * 3;
    GRID_STRIDE(i, total) {
        long y = i / (nOut * 3);
        int r = (int)(i - y * nOut * 3);
        int xx = r / 3, c = r - xx * 3;
        const unsigned char* p = src + (y0 + y) * srcPitch + (long)(x0 + start[xx]) * 3 + c;
        const int* w = k + (long)xx * ksize;
        int acc = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < n[xx]; t++) acc += (int)p[t * 3] * w[t];
        dst[i] = clip8(acc);
    }
}

// Vertical pass (ImagingResampleVertical_8bpc): output row yy of dst (rowLen
// bytes) from rows start[yy]-tmpRow0 .. of tmp. grid-stride over nOut*rowLen.
extern "C" __global__ void resize_v_u8(unsigned char* dst, const unsigned char* tmp, int rowLen, int tmpRow0,
                                       const int* start, const int* n, const int* k, int ksize, int nOut) {
    long total = (long)nOut * rowLen;
    GRID_STRIDE(i, total) {
        int yy = (int)(i / rowLen);
        int x = (int)(i - (long)yy * rowLen);
        const unsigned char* p = tmp + (long)(start[yy] - tmpRow0) * rowLen + x;
        const int* w = k + (long)yy * ksize;
        int acc = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < n[yy]; t++) acc += (int)p[(long)t * rowLen] * w[t];
        dst[i] = clip8(acc);
    }
}

// ToTensor + Normalize: px (B,S,S,3) uint8 → out (B,3,S,S) through a lookup
// table lut[c*256 + v] = (v/255 - mean[c]) / std[c] computed on the host in
// float32 (the CPU's own table), so the values are the CPU's before rounding
// to the storage type.
template <typename T> __device__ void normalize_u8_impl(T* out, const unsigned char* px, const float* lut, int B, int S) {
    long plane = (long)S * S;
    GRID_STRIDE(i, (long)B * 3 * plane) {
        long b = i / (3 * plane);
        long r = i - b * 3 * plane;
        int c = (int)(r / plane);
        long yx = r - c * plane;
        st(out, i, lut[c * 256 + px[(b * plane + yx) * 3 + c]]);
    }
}
INSTANTIATE(normalize_u8, (float* o, const unsigned char* px, const float* lut, int B, int S),
            (bf16* o, const unsigned char* px, const float* lut, int B, int S), (o, px, lut, B, S))
