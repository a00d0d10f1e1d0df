// The emulator's nvJPEG: the entry points cuda/nvjpeg.go binds, exported
// under their real names (LITCACHE_LIBNVJPEG points at this library). The
// JPEG is decoded on the host by libjpeg-turbo (dlopen'd, with the defaults
// the CPU decoder uses: accurate integer IDCT, fancy upsampling), so the
// emulated GPU's RGB equals imageproc's bytes; the rows reach device memory
// by a task on the given stream, in stream order, as the real decoder's
// output does. What this proves is the wiring of the GPU decode path (which
// image goes where, per-image fallbacks, stream order), never nvJPEG's own
// arithmetic: that is measured on a GPU (TestNVJPEGMatchesCPU).
// Like the real library it has no RGB output for CMYK/YCCK JPEGs
// (NVJPEG_STATUS_JPEG_NOT_SUPPORTED). Test knob: a JPEG carrying the
// comment segment "litcache-emu: refuse" is refused the same way, so tests
// can make nvJPEG turn down an image the pipeline's screening let through.
#include <dlfcn.h>

namespace nvj {
enum { SUCCESS = 0, NOT_INITIALIZED = 1, INVALID_PARAMETER = 2, BAD_JPEG = 3, NOT_SUPPORTED = 4, EXECUTION_FAILED = 6 };
const int kMaxComponent = 4, kOutputRGBI = 5;
struct Image {
    unsigned char* channel[kMaxComponent];
    size_t pitch[kMaxComponent];
};
// TurboJPEG (turbojpeg.h), bound at the first handle.
typedef void* tjhandle;
struct Turbo {
    tjhandle (*init)();
    int (*destroy)(tjhandle);
    int (*header3)(tjhandle, const unsigned char*, unsigned long, int*, int*, int*, int*);
    int (*decompress2)(tjhandle, const unsigned char*, unsigned long, unsigned char*, int, int, int, int, int);
    bool ok = false;
};
static Turbo turbo;
static std::once_flag turbo_once;
static void load_turbo() {
    void* lib = nullptr;
    const char* env = getenv("LITCACHE_TURBOJPEG");
    for (const char* name : {env, "libturbojpeg.so.0", "libturbojpeg.so"}) {
        if (name && (lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
    }
    if (!lib) return;
    turbo.init = (tjhandle (*)())dlsym(lib, "tjInitDecompress");
    turbo.destroy = (int (*)(tjhandle))dlsym(lib, "tjDestroy");
    turbo.header3 = (int (*)(tjhandle, const unsigned char*, unsigned long, int*, int*, int*, int*))dlsym(lib, "tjDecompressHeader3");
    turbo.decompress2 = (int (*)(tjhandle, const unsigned char*, unsigned long, unsigned char*, int, int, int, int, int))dlsym(lib, "tjDecompress2");
    turbo.ok = turbo.init && turbo.destroy && turbo.header3 && turbo.decompress2;
}
struct Handle {
    std::mutex m; // a TurboJPEG handle is not safe for concurrent use
    tjhandle tj;
};
const int tjcsCMYK = 3, tjcsYCCK = 4, tjpfRGB = 0;

static bool refused(const unsigned char* d, size_t n) {
    static const char tag[] = "litcache-emu: refuse";
    size_t k = sizeof tag - 1;
    for (size_t i = 0; i + 4 + k <= n; i++)
        if (d[i] == 0xFF && d[i + 1] == 0xFE && memcmp(d + i + 4, tag, k) == 0) return true;
    return false;
}

static int info(Handle* h, const unsigned char* d, size_t n, int* comps, int* w, int* ht) {
    int sub = 0, cs = 0;
    std::lock_guard<std::mutex> l(h->m);
    if (turbo.header3(h->tj, d, (unsigned long)n, w, ht, &sub, &cs) != 0) return BAD_JPEG;
    *comps = (cs == tjcsCMYK || cs == tjcsYCCK) ? 4 : (cs == 2 /* TJCS_GRAY */ ? 1 : 3);
    return SUCCESS;
}

// decode decodes on the host now and queues the copy into dst on stream s.
static int decode(Handle* h, const unsigned char* d, size_t n, int fmt, const Image* dst, uintptr_t s) {
    if (fmt != kOutputRGBI || !dst || !dst->channel[0]) return INVALID_PARAMETER;
    int comps = 0, w = 0, ht = 0;
    if (int r = info(h, d, n, &comps, &w, &ht); r != SUCCESS) return r;
    if (comps == 4 || refused(d, n)) return NOT_SUPPORTED;
    auto rgb = std::make_shared<std::vector<unsigned char>>((size_t)w * ht * 3);
    {
        std::lock_guard<std::mutex> l(h->m);
        if (turbo.decompress2(h->tj, d, (unsigned long)n, rgb->data(), w, w * 3, ht, tjpfRGB, 0) != 0) return BAD_JPEG;
    }
    unsigned char* out = dst->channel[0];
    size_t pitch = dst->pitch[0];
    if (pitch < (size_t)w * 3) return INVALID_PARAMETER;
    stream_of(s)->push([=] {
        for (int y = 0; y < ht; y++) memcpy(out + y * pitch, rgb->data() + (size_t)y * w * 3, (size_t)w * 3);
    });
    return SUCCESS;
}
} // namespace nvj

extern "C" {
int nvjpegCreateSimple(uintptr_t* handle) {
    std::call_once(nvj::turbo_once, nvj::load_turbo);
    if (!nvj::turbo.ok) {
        fprintf(stderr, "cuda emulator: nvJPEG needs libjpeg-turbo (libturbojpeg.so.0), not found\n");
        return nvj::NOT_INITIALIZED;
    }
    auto* h = new nvj::Handle();
    h->tj = nvj::turbo.init();
    if (!h->tj) {
        delete h;
        return nvj::NOT_INITIALIZED;
    }
    *handle = (uintptr_t)h;
    return nvj::SUCCESS;
}
int nvjpegDestroy(uintptr_t handle) {
    auto* h = (nvj::Handle*)handle;
    nvj::turbo.destroy(h->tj);
    delete h;
    return nvj::SUCCESS;
}
int nvjpegJpegStateCreate(uintptr_t, uintptr_t* state) {
    *state = (uintptr_t) new int(0); // the batch size of the last initialise
    return nvj::SUCCESS;
}
int nvjpegJpegStateDestroy(uintptr_t state) {
    delete (int*)state;
    return nvj::SUCCESS;
}
int nvjpegGetImageInfo(uintptr_t handle, const unsigned char* d, size_t n, int* comps, int* sub, int* ws, int* hs) {
    if (!d || n == 0) return nvj::INVALID_PARAMETER;
    int w = 0, h = 0;
    if (int r = nvj::info((nvj::Handle*)handle, d, n, comps, &w, &h); r != nvj::SUCCESS) return r;
    *sub = 0;
    for (int c = 0; c < nvj::kMaxComponent; c++) {
        ws[c] = c < *comps ? w : 0;
        hs[c] = c < *comps ? h : 0;
    }
    return nvj::SUCCESS;
}
int nvjpegDecode(uintptr_t handle, uintptr_t, const unsigned char* d, size_t n, int fmt, nvj::Image* dst, uintptr_t s) {
    if (need_ctx() != OK) return nvj::EXECUTION_FAILED;
    return nvj::decode((nvj::Handle*)handle, d, n, fmt, dst, s);
}
int nvjpegDecodeBatchedInitialize(uintptr_t, uintptr_t state, int batch, int, int fmt) {
    if (batch <= 0 || fmt != nvj::kOutputRGBI) return nvj::INVALID_PARAMETER;
    *(int*)state = batch;
    return nvj::SUCCESS;
}
int nvjpegDecodeBatched(uintptr_t handle, uintptr_t state, const unsigned char* const* d, const size_t* n, nvj::Image* dst, uintptr_t s) {
    if (need_ctx() != OK) return nvj::EXECUTION_FAILED;
    // As the real call: one image it cannot decode fails the whole batch.
    for (int i = 0; i < *(int*)state; i++)
        if (int r = nvj::decode((nvj::Handle*)handle, d[i], n[i], nvj::kOutputRGBI, &dst[i], s); r != nvj::SUCCESS) return r;
    return nvj::SUCCESS;
}
int nvjpegGetProperty(int, int* v) {
    *v = 0; // the emulator: version 0.0.0
    return nvj::SUCCESS;
}
} // extern "C"
