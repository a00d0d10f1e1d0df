// The emulator's CUDA driver API, cuBLASLt and NVRTC, exported under their
// real names so that litcache loads this library in place of libcuda.so.1,
// libcublasLt and libnvrtc (LITCACHE_LIBCUDA, …) and runs unchanged:
//   - a current context per OS thread, as the real driver keeps it: a call
//     from a thread where the context is not current fails with
//     CUDA_ERROR_INVALID_CONTEXT;
//   - device memory from mmap with an inaccessible page after each
//     allocation (an overrun faults) and filled with 0xFF (NaN in float32 and
//     bf16) so that unwritten outputs show;
//   - streams as worker threads running their queue in order; events;
//     host-to-device copies from pageable memory taken at the call (the
//     driver stages them), from pinned memory when the stream reaches them;
//   - kernels run by the fiber scheduler of runtime.h, found by name in the
//     table the build generates;
//   - cuBLASLt matmuls computed naively in float32 from the descriptors.
// Test knobs: LITCACHE_EMU_FAULT=kernel (that kernel faults: a sticky
// CUDA_ERROR_ILLEGAL_ADDRESS; LITCACHE_EMU_FAULT_SKIP=n lets its first n
// launches run), LITCACHE_EMU_NO_ALGO=1 (cuBLASLt offers no
// algorithm), LITCACHE_EMU_STRICT=1 (none for leading dims or strides not a
// multiple of 16 bytes), LITCACHE_EMU_DELAY_US=n (each stream task waits n µs
// first, which widens host/stream races), LITCACHE_EMU_MEM_LIMIT=bytes (device
// memory beyond it is CUDA_ERROR_OUT_OF_MEMORY, and cuMemGetInfo reports it).
// Stream capture records a stream's tasks into a graph instead of running
// them (a synchronisation or a pageable host copy while capturing is an
// error, as on a GPU); cuGraphLaunch queues the recorded tasks again.
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <chrono>

// struct KernelInfo and the table come from the generated part of the unit.
extern KernelInfo emu_kernels[];
extern int emu_nkernels;

namespace emu {
dim3 cur_thread, cur_block, cur_bdim, cur_gdim;
Fiber* cur;
void* sched_sp;
int block_arrived;
std::vector<Warp> warps;
bool deadlocked;
} // namespace emu

#if defined(__x86_64__)
// void emu_switch(void** save, void* load): saves the callee-saved registers
// on the current stack, stores its pointer in *save, and resumes load.
asm(R"(
.text
.globl emu_switch
.type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size emu_switch, .-emu_switch
)");
#else
#error "the CUDA emulator's fiber switch is written for x86-64"
#endif

namespace emu {

static const size_t kStack = 256 << 10;
static std::vector<char*> stacks;
static void (*cur_glue)(void* const*);
static void* const* cur_params;

static void fiber_entry() {
    cur_glue(cur_params);
    cur->state = DONE;
    emu_switch(&cur->sp, sched_sp);
    abort(); // never resumed
}

static char* stack_for(size_t i) {
    while (stacks.size() <= i) {
        // a guard page under each stack: an overflow faults instead of corrupting
        char* m = (char*)mmap(nullptr, kStack + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        mprotect(m, 4096, PROT_NONE);
        stacks.push_back(m + 4096);
    }
    return stacks[i];
}

// run_block runs one block of n threads to completion; false on a deadlock.
static bool run_block(std::vector<Fiber>& fs, unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        Fiber& f = fs[i];
        f.state = RUNNABLE;
        f.tid = i;
        f.idx = dim3{i % cur_bdim.x, (i / cur_bdim.x) % cur_bdim.y, i / (cur_bdim.x * cur_bdim.y)};
        f.stack = stack_for(i);
        uint64_t* sp = (uint64_t*)(f.stack + kStack);
        *--sp = 0;                      // fiber_entry's (unused) return address: rsp ≡ 8 mod 16 at entry
        *--sp = (uint64_t)&fiber_entry; // where emu_switch's ret goes
        for (int r = 0; r < 6; r++) *--sp = 0;
        f.sp = sp;
    }
    unsigned nw = (n + 31) / 32;
    warps.assign(nw, Warp{});
    for (unsigned w = 0; w < nw; w++) warps[w].live = (int)std::min(32u, n - 32 * w);
    block_arrived = 0;
    unsigned live = n;
    while (live > 0) {
        bool progressed = false;
        for (unsigned i = 0; i < n; i++) {
            Fiber& f = fs[i];
            if (f.state != RUNNABLE) continue;
            cur = &f;
            cur_thread = f.idx;
            emu_switch(&sched_sp, f.sp);
            progressed = true;
            if (f.state == DONE) {
                live--;
                warps[i >> 5].live--;
            }
        }
        bool released = false;
        if (block_arrived > 0 && (unsigned)block_arrived == live) {
            for (unsigned i = 0; i < n; i++)
                if (fs[i].state == WAIT_BLOCK) fs[i].state = RUNNABLE;
            block_arrived = 0;
            released = true;
        }
        for (unsigned w = 0; w < nw; w++) {
            if (warps[w].arrived > 0 && warps[w].arrived == warps[w].live) {
                for (unsigned i = 32 * w; i < std::min(n, 32 * w + 32); i++)
                    if (fs[i].state == WAIT_WARP) fs[i].state = RUNNABLE;
                warps[w].arrived = 0;
                released = true;
            }
        }
        if (!progressed && !released && live > 0) return false;
    }
    return true;
}

} // namespace emu

// ---------------- driver state ----------------

typedef int CUresult;
enum {
    OK = 0, ERR_INVALID_VALUE = 1, ERR_OUT_OF_MEMORY = 2, ERR_INVALID_CONTEXT = 201, ERR_INVALID_HANDLE = 400,
    ERR_NOT_FOUND = 500, ERR_ILLEGAL_ADDRESS = 700, ERR_LAUNCH_FAILED = 719, ERR_CAPTURE_UNSUPPORTED = 900,
    ERR_CAPTURE_INVALIDATED = 901
};
static size_t device_bytes = 0; // guarded by mu
static const uintptr_t kCtx = 0xC0DE0000;
static thread_local uintptr_t tl_ctx = 0;
static std::mutex mu;          // guards the maps and the sticky error
static std::mutex exec_mu;     // one kernel or matmul at a time
static CUresult sticky = OK;
static std::string sticky_what;

struct Alloc {
    char* base;
    size_t mapped;
    size_t size;
};
static std::map<uintptr_t, Alloc> device_allocs;
static std::map<uintptr_t, size_t> pinned_allocs;

static bool in_pinned(const void* p, size_t n) {
    std::lock_guard<std::mutex> l(mu);
    auto it = pinned_allocs.upper_bound((uintptr_t)p);
    if (it == pinned_allocs.begin()) return false;
    --it;
    return (uintptr_t)p + n <= it->first + it->second;
}

static long env_long(const char* k) {
    const char* v = getenv(k);
    return v ? atol(v) : 0;
}

struct Event;
struct Stream {
    std::mutex m;
    std::condition_variable cv;
    std::deque<std::function<void()>> q;
    bool busy = false, quit = false;
    // while capturing, tasks go to capture instead of q
    std::vector<std::function<void()>>* capture = nullptr;
    bool capture_broken = false;
    std::thread worker;
    Stream() {
        worker = std::thread([this] { run(); });
    }
    void run() {
        long delay = env_long("LITCACHE_EMU_DELAY_US");
        for (;;) {
            std::function<void()> task;
            {
                std::unique_lock<std::mutex> l(m);
                cv.wait(l, [this] { return quit || !q.empty(); });
                if (q.empty() && quit) return;
                task = std::move(q.front());
                q.pop_front();
                busy = true;
            }
            if (delay > 0) usleep((useconds_t)delay);
            task();
            {
                std::lock_guard<std::mutex> l(m);
                busy = false;
            }
            cv.notify_all();
        }
    }
    void push(std::function<void()> f) {
        {
            std::lock_guard<std::mutex> l(m);
            if (capture) {
                capture->push_back(std::move(f));
                return;
            }
            q.push_back(std::move(f));
        }
        cv.notify_all();
    }
    bool capturing() {
        std::lock_guard<std::mutex> l(m);
        return capture != nullptr;
    }
    void drain() {
        std::unique_lock<std::mutex> l(m);
        cv.wait(l, [this] { return q.empty() && !busy; });
    }
    ~Stream() {
        {
            std::lock_guard<std::mutex> l(m);
            quit = true;
        }
        cv.notify_all();
        worker.join();
    }
};
static std::set<Stream*> streams;

struct Event {
    std::mutex m;
    std::condition_variable cv;
    uint64_t recorded = 0, completed = 0;
    double when_ms = 0;
};

static double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static CUresult need_ctx() {
    if (tl_ctx != kCtx) return ERR_INVALID_CONTEXT;
    std::lock_guard<std::mutex> l(mu);
    return sticky;
}
#define NEED_CTX()                   \
    do {                             \
        CUresult r_ = need_ctx();    \
        if (r_ != OK) return r_;     \
    } while (0)

static void set_sticky(CUresult r, const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    if (sticky == OK) {
        sticky = r;
        sticky_what = what;
        fprintf(stderr, "cuda emulator: %s\n", what.c_str());
    }
}

static Stream* stream_of(uintptr_t s) { return (Stream*)s; }

extern "C" {

CUresult cuInit(unsigned) { return OK; }
CUresult cuDriverGetVersion(int* v) {
    *v = 13000;
    return OK;
}
CUresult cuDeviceGetCount(int* n) {
    *n = 1;
    return OK;
}
CUresult cuDeviceGet(int* d, int ord) {
    if (ord != 0) return ERR_INVALID_VALUE;
    *d = 0;
    return OK;
}
CUresult cuDeviceGetName(char* name, int n, int) {
    snprintf(name, n, "litcache CUDA emulator");
    return OK;
}
CUresult cuDeviceGetAttribute(int* v, int attr, int) {
    switch (attr) {
    case 16: *v = 2; break;  // multiprocessors: few, so grid-stride grids stay small
    case 75: *v = 8; break;  // compute capability 8.0
    case 76: *v = 0; break;
    default: *v = 0;
    }
    return OK;
}
CUresult cuDeviceTotalMem_v2(size_t* b, int) {
    *b = (size_t)8 << 30;
    return OK;
}
CUresult cuDevicePrimaryCtxRetain(uintptr_t* ctx, int) {
    *ctx = kCtx;
    return OK;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return OK; }
CUresult cuCtxSetCurrent(uintptr_t ctx) {
    if (ctx != 0 && ctx != kCtx) return ERR_INVALID_CONTEXT;
    tl_ctx = ctx;
    return OK;
}
CUresult cuCtxSynchronize() {
    NEED_CTX();
    std::vector<Stream*> ss;
    {
        std::lock_guard<std::mutex> l(mu);
        ss.assign(streams.begin(), streams.end());
    }
    for (Stream* s : ss) s->drain();
    return need_ctx();
}
CUresult cuMemGetInfo_v2(size_t* f, size_t* t) {
    NEED_CTX();
    long limit = env_long("LITCACHE_EMU_MEM_LIMIT");
    std::lock_guard<std::mutex> l(mu);
    *t = limit > 0 ? (size_t)limit : (size_t)8 << 30;
    *f = device_bytes < *t ? *t - device_bytes : 0;
    return OK;
}
CUresult cuMemAlloc_v2(uintptr_t* p, size_t n) {
    NEED_CTX();
    if (n == 0) return ERR_INVALID_VALUE;
    long limit = env_long("LITCACHE_EMU_MEM_LIMIT");
    {
        std::lock_guard<std::mutex> l(mu);
        if (limit > 0 && device_bytes + n > (size_t)limit) return ERR_OUT_OF_MEMORY;
    }
    size_t page = 4096;
    size_t rounded = (n + 255) / 256 * 256;
    size_t mapped = (rounded + page - 1) / page * page + page;
    char* m = (char*)mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return ERR_OUT_OF_MEMORY;
    char* guard = m + mapped - page;
    mprotect(guard, page, PROT_NONE);
    char* ptr = guard - rounded; // 256-aligned, its end against the guard page
    memset(ptr, 0xFF, rounded);
    std::lock_guard<std::mutex> l(mu);
    device_allocs[(uintptr_t)ptr] = Alloc{m, mapped, n};
    device_bytes += n;
    *p = (uintptr_t)ptr;
    return OK;
}
CUresult cuMemFree_v2(uintptr_t p) {
    NEED_CTX();
    cuCtxSynchronize(); // as cudaFree: nothing queued may still use it
    std::lock_guard<std::mutex> l(mu);
    auto it = device_allocs.find(p);
    if (it == device_allocs.end()) return ERR_INVALID_VALUE;
    munmap(it->second.base, it->second.mapped);
    device_bytes -= it->second.size;
    device_allocs.erase(it);
    return OK;
}
CUresult cuMemAllocHost_v2(void** p, size_t n) {
    NEED_CTX();
    void* m = aligned_alloc(4096, (n + 4095) / 4096 * 4096);
    if (!m) return ERR_OUT_OF_MEMORY;
    std::lock_guard<std::mutex> l(mu);
    pinned_allocs[(uintptr_t)m] = n;
    *p = m;
    return OK;
}
CUresult cuMemFreeHost(void* p) {
    NEED_CTX();
    std::lock_guard<std::mutex> l(mu);
    if (!pinned_allocs.erase((uintptr_t)p)) return ERR_INVALID_VALUE;
    free(p);
    return OK;
}
CUresult cuMemcpyHtoD_v2(uintptr_t dst, const void* src, size_t n) {
    NEED_CTX();
    memcpy((void*)dst, src, n);
    return OK;
}
CUresult cuMemcpyDtoH_v2(void* dst, uintptr_t src, size_t n) {
    NEED_CTX();
    memcpy(dst, (const void*)src, n);
    return OK;
}
CUresult cuMemcpyHtoDAsync_v2(uintptr_t dst, const void* src, size_t n, uintptr_t s) {
    NEED_CTX();
    if (stream_of(s)->capturing() && !in_pinned(src, n)) {
        stream_of(s)->capture_broken = true; // a replay would copy the bytes of the capture's time
        return ERR_CAPTURE_UNSUPPORTED;
    }
    if (in_pinned(src, n)) {
        stream_of(s)->push([=] { memcpy((void*)dst, src, n); });
    } else {
        // pageable: the driver stages the bytes before returning
        auto staged = std::make_shared<std::vector<char>>((const char*)src, (const char*)src + n);
        stream_of(s)->push([=] { memcpy((void*)dst, staged->data(), n); });
    }
    return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void* dst, uintptr_t src, size_t n, uintptr_t s) {
    NEED_CTX();
    stream_of(s)->push([=] { memcpy(dst, (const void*)src, n); });
    if (!in_pinned(dst, n)) stream_of(s)->drain(); // pageable: synchronous
    return OK;
}
CUresult cuMemcpyDtoDAsync_v2(uintptr_t dst, uintptr_t src, size_t n, uintptr_t s) {
    NEED_CTX();
    stream_of(s)->push([=] { memmove((void*)dst, (const void*)src, n); });
    return OK;
}
CUresult cuMemsetD8Async(uintptr_t dst, unsigned char v, size_t n, uintptr_t s) {
    NEED_CTX();
    stream_of(s)->push([=] { memset((void*)dst, v, n); });
    return OK;
}
CUresult cuStreamCreate(uintptr_t* s, unsigned) {
    NEED_CTX();
    Stream* st = new Stream();
    std::lock_guard<std::mutex> l(mu);
    streams.insert(st);
    *s = (uintptr_t)st;
    return OK;
}
CUresult cuStreamDestroy_v2(uintptr_t s) {
    NEED_CTX();
    Stream* st = stream_of(s);
    st->drain();
    {
        std::lock_guard<std::mutex> l(mu);
        streams.erase(st);
    }
    delete st;
    return OK;
}
CUresult cuStreamSynchronize(uintptr_t s) {
    NEED_CTX();
    if (stream_of(s)->capturing()) {
        stream_of(s)->capture_broken = true;
        return ERR_CAPTURE_UNSUPPORTED;
    }
    stream_of(s)->drain();
    return need_ctx();
}

// ---- graphs: stream capture and replay ----
struct Graph {
    std::vector<std::function<void()>> tasks;
};
CUresult cuStreamBeginCapture_v2(uintptr_t s, int) {
    NEED_CTX();
    Stream* st = stream_of(s);
    std::lock_guard<std::mutex> l(st->m);
    if (st->capture) return ERR_INVALID_VALUE;
    st->capture = new std::vector<std::function<void()>>();
    st->capture_broken = false;
    return OK;
}
CUresult cuStreamEndCapture(uintptr_t s, uintptr_t* g) {
    NEED_CTX();
    Stream* st = stream_of(s);
    std::lock_guard<std::mutex> l(st->m);
    if (!st->capture) return ERR_INVALID_VALUE;
    Graph* gr = new Graph();
    gr->tasks = std::move(*st->capture);
    delete st->capture;
    st->capture = nullptr;
    if (st->capture_broken) {
        delete gr;
        *g = 0;
        return ERR_CAPTURE_INVALIDATED;
    }
    *g = (uintptr_t)gr;
    return OK;
}
CUresult cuGraphInstantiateWithFlags(uintptr_t* exec, uintptr_t g, unsigned long long) {
    NEED_CTX();
    if (!g) return ERR_INVALID_VALUE;
    Graph* e = new Graph(*(Graph*)g);
    *exec = (uintptr_t)e;
    return OK;
}
CUresult cuGraphLaunch(uintptr_t exec, uintptr_t s) {
    NEED_CTX();
    for (auto& t : ((Graph*)exec)->tasks) stream_of(s)->push(t);
    return OK;
}
CUresult cuGraphExecDestroy(uintptr_t exec) {
    NEED_CTX();
    delete (Graph*)exec;
    return OK;
}
CUresult cuGraphDestroy(uintptr_t g) {
    NEED_CTX();
    delete (Graph*)g;
    return OK;
}
CUresult cuEventCreate(uintptr_t* e, unsigned) {
    NEED_CTX();
    *e = (uintptr_t) new Event();
    return OK;
}
CUresult cuEventDestroy_v2(uintptr_t e) {
    NEED_CTX();
    delete (Event*)e;
    return OK;
}
CUresult cuEventRecord(uintptr_t e, uintptr_t s) {
    NEED_CTX();
    Event* ev = (Event*)e;
    uint64_t gen;
    {
        std::lock_guard<std::mutex> l(ev->m);
        gen = ++ev->recorded;
    }
    stream_of(s)->push([=] {
        std::lock_guard<std::mutex> l(ev->m);
        if (ev->completed < gen) ev->completed = gen;
        ev->when_ms = now_ms();
        ev->cv.notify_all();
    });
    return OK;
}
CUresult cuStreamWaitEvent(uintptr_t s, uintptr_t e, unsigned) {
    NEED_CTX();
    Event* ev = (Event*)e;
    uint64_t gen;
    {
        std::lock_guard<std::mutex> l(ev->m);
        gen = ev->recorded;
    }
    stream_of(s)->push([=] {
        std::unique_lock<std::mutex> l(ev->m);
        ev->cv.wait(l, [&] { return ev->completed >= gen; });
    });
    return OK;
}
CUresult cuEventSynchronize(uintptr_t e) {
    NEED_CTX();
    Event* ev = (Event*)e;
    std::unique_lock<std::mutex> l(ev->m);
    uint64_t gen = ev->recorded;
    ev->cv.wait(l, [&] { return ev->completed >= gen; });
    l.unlock();
    return need_ctx();
}
CUresult cuEventElapsedTime(float* ms, uintptr_t a, uintptr_t b) {
    NEED_CTX();
    *ms = (float)(((Event*)b)->when_ms - ((Event*)a)->when_ms);
    return OK;
}
CUresult cuModuleLoadData(uintptr_t* m, const void* image) {
    NEED_CTX();
    if (memcmp((const char*)image + 1, "ELF", 3) != 0) return ERR_INVALID_VALUE;
    *m = 1;
    return OK;
}
CUresult cuModuleUnload(uintptr_t) {
    NEED_CTX();
    return OK;
}
CUresult cuModuleGetFunction(uintptr_t* f, uintptr_t, const char* name) {
    NEED_CTX();
    for (int i = 0; i < emu_nkernels; i++) {
        if (strcmp(emu_kernels[i].name, name) == 0) {
            *f = (uintptr_t)&emu_kernels[i];
            return OK;
        }
    }
    return ERR_NOT_FOUND;
}

static void run_kernel(KernelInfo* k, dim3 grid, dim3 block, std::vector<std::vector<char>>* params) {
    std::lock_guard<std::mutex> l(exec_mu);
    const char* fault = getenv("LITCACHE_EMU_FAULT");
    static long fault_seen = 0; // launches of the faulting kernel so far (exec_mu held)
    if (fault && strcmp(fault, k->name) == 0 && fault_seen++ >= env_long("LITCACHE_EMU_FAULT_SKIP")) {
        set_sticky(ERR_ILLEGAL_ADDRESS, std::string("kernel ") + k->name + " faulted (LITCACHE_EMU_FAULT)");
        return;
    }
    std::vector<void*> ptrs(params->size());
    for (size_t i = 0; i < params->size(); i++) ptrs[i] = (*params)[i].data();
    unsigned n = block.x * block.y * block.z;
    std::vector<emu::Fiber> fs(n);
    emu::cur_bdim = block;
    emu::cur_gdim = grid;
    emu::cur_glue = k->glue;
    emu::cur_params = ptrs.data();
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                emu::cur_block = dim3{x, y, z};
                if (!emu::run_block(fs, n)) {
                    char buf[256];
                    snprintf(buf, sizeof buf, "kernel %s: deadlock in block (%u,%u,%u): a barrier some threads never reach",
                             k->name, x, y, z);
                    set_sticky(ERR_LAUNCH_FAILED, buf);
                    return;
                }
            }
}

CUresult cuLaunchKernel(uintptr_t f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, uintptr_t s, void** params, void** extra) {
    NEED_CTX();
    KernelInfo* k = (KernelInfo*)f;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || bx * by * bz > 1024 || shmem > 0 || extra)
        return ERR_INVALID_VALUE;
    auto copied = std::make_shared<std::vector<std::vector<char>>>();
    for (int i = 0; i < k->nparams; i++) {
        const char* p = (const char*)params[i];
        copied->emplace_back(p, p + k->sizes[i]); // the driver copies the values at the launch
    }
    dim3 grid{gx, gy, gz}, block{bx, by, bz};
    stream_of(s)->push([=] { run_kernel(k, grid, block, copied.get()); });
    return OK;
}

static const char* err_name(int r) {
    switch (r) {
    case 0: return "CUDA_SUCCESS";
    case 1: return "CUDA_ERROR_INVALID_VALUE";
    case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
    case 201: return "CUDA_ERROR_INVALID_CONTEXT";
    case 400: return "CUDA_ERROR_INVALID_HANDLE";
    case 500: return "CUDA_ERROR_NOT_FOUND";
    case 700: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case 719: return "CUDA_ERROR_LAUNCH_FAILED";
    case 900: return "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED";
    case 901: return "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED";
    }
    return "CUDA_ERROR_UNKNOWN";
}
static const char* err_text(int r) {
    switch (r) {
    case 201: return "invalid device context";
    case 700: return "an illegal memory access was encountered";
    case 719: return "unspecified launch failure";
    case 1: return "invalid argument";
    case 2: return "out of memory";
    case 900: return "operation not permitted when stream is capturing";
    }
    return err_name(r);
}
CUresult cuGetErrorName(int r, const char** s) {
    *s = err_name(r);
    return OK;
}
CUresult cuGetErrorString(int r, const char** s) {
    *s = err_text(r);
    return OK;
}

// ---------------- cuBLASLt ----------------

struct MatmulDesc {
    int compute, scale, transa = 0, transb = 0, epilogue = 1;
    uintptr_t bias = 0;
};
struct Layout {
    int type;
    uint64_t rows, cols;
    int64_t ld;
    int batch = 1;
    int64_t stride = 0;
};
enum { BLAS_OK = 0, BLAS_NOT_INITIALIZED = 1, BLAS_INVALID_VALUE = 7, BLAS_EXECUTION_FAILED = 13, BLAS_NOT_SUPPORTED = 15 };

static int blas_need_ctx() { return tl_ctx == kCtx ? BLAS_OK : BLAS_EXECUTION_FAILED; }

int cublasLtCreate(uintptr_t* h) {
    if (blas_need_ctx()) return BLAS_NOT_INITIALIZED;
    *h = 1;
    return BLAS_OK;
}
uint64_t cublasLtGetVersion() { return 130100; }
int cublasLtMatmulDescCreate(uintptr_t* d, int compute, int scale) {
    MatmulDesc* m = new MatmulDesc();
    m->compute = compute;
    m->scale = scale;
    *d = (uintptr_t)m;
    return BLAS_OK;
}
int cublasLtMatmulDescSetAttribute(uintptr_t d, int attr, const void* buf, size_t size) {
    MatmulDesc* m = (MatmulDesc*)d;
    switch (attr) {
    case 3: m->transa = *(const int*)buf; break;
    case 4: m->transb = *(const int*)buf; break;
    case 7: m->epilogue = *(const int*)buf; break;
    case 8: m->bias = *(const uintptr_t*)buf; break;
    default: return BLAS_INVALID_VALUE;
    }
    (void)size;
    return BLAS_OK;
}
int cublasLtMatrixLayoutCreate(uintptr_t* l, int type, uint64_t rows, uint64_t cols, int64_t ld) {
    if (ld < (int64_t)rows) return BLAS_INVALID_VALUE;
    Layout* x = new Layout();
    x->type = type;
    x->rows = rows;
    x->cols = cols;
    x->ld = ld;
    *l = (uintptr_t)x;
    return BLAS_OK;
}
int cublasLtMatrixLayoutSetAttribute(uintptr_t l, int attr, const void* buf, size_t) {
    Layout* x = (Layout*)l;
    if (attr == 5) x->batch = *(const int*)buf;
    else if (attr == 6) x->stride = *(const int64_t*)buf;
    else return BLAS_INVALID_VALUE;
    return BLAS_OK;
}
int cublasLtMatmulPreferenceCreate(uintptr_t* p) {
    *p = 1;
    return BLAS_OK;
}
int cublasLtMatmulPreferenceSetAttribute(uintptr_t, int, const void*, size_t) { return BLAS_OK; }

static int elem_size(int type) { return type == 0 ? 4 : 2; }
static bool aligned16(const Layout* x) {
    int e = elem_size(x->type);
    return (x->ld * e) % 16 == 0 && (x->batch <= 1 || (x->stride * e) % 16 == 0);
}

int cublasLtMatmulAlgoGetHeuristic(uintptr_t, uintptr_t, uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t d, uintptr_t,
                                   int requested, void* results, int* count) {
    if (blas_need_ctx()) return BLAS_EXECUTION_FAILED;
    *count = 0;
    if (env_long("LITCACHE_EMU_NO_ALGO")) return BLAS_OK;
    if (env_long("LITCACHE_EMU_STRICT")) {
        for (uintptr_t l : {a, b, c, d})
            if (!aligned16((Layout*)l)) return BLAS_OK;
    }
    if (requested > 0) {
        memset(results, 0, 96);
        *count = 1;
    }
    return BLAS_OK;
}

static float load(int type, const char* base, int64_t i) {
    if (type == 0) return ((const float*)base)[i];
    return emu::bf(((const unsigned short*)base)[i]);
}
static void store(int type, char* base, int64_t i, float v) {
    if (type == 0) {
        ((float*)base)[i] = v;
        return;
    }
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) u = (u >> 16) | 0x40u;
    else u = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    ((unsigned short*)base)[i] = (unsigned short)u;
}

int cublasLtMatmul(uintptr_t, uintptr_t desc, const void* alpha, uintptr_t A, uintptr_t ad, uintptr_t B, uintptr_t bd,
                   const void* beta, uintptr_t C, uintptr_t cd, uintptr_t D, uintptr_t dd, const void*, uintptr_t, size_t,
                   uintptr_t s) {
    if (blas_need_ctx()) return BLAS_EXECUTION_FAILED;
    MatmulDesc m = *(MatmulDesc*)desc;
    Layout la = *(Layout*)ad, lb = *(Layout*)bd, lc = *(Layout*)cd, ldd = *(Layout*)dd;
    uint64_t M = ldd.rows, N = ldd.cols;
    uint64_t am = m.transa ? la.cols : la.rows, ak = m.transa ? la.rows : la.cols;
    uint64_t bk = m.transb ? lb.cols : lb.rows, bn = m.transb ? lb.rows : lb.cols;
    if (am != M || bn != N || ak != bk || lc.rows != M || lc.cols != N) return BLAS_INVALID_VALUE;
    if (la.batch != ldd.batch || lb.batch != ldd.batch) return BLAS_INVALID_VALUE;
    uint64_t K = ak;
    float al = *(const float*)alpha, be = *(const float*)beta;
    bool bias = m.epilogue == 4 || m.epilogue == 36, gelu = m.epilogue == 32 || m.epilogue == 36;
    if (bias && m.bias == 0) return BLAS_INVALID_VALUE;
    stream_of(s)->push([=] {
        std::lock_guard<std::mutex> l(exec_mu);
        for (int z = 0; z < ldd.batch; z++) {
            const char* a = (const char*)A + z * la.stride * elem_size(la.type);
            const char* b = (const char*)B + z * lb.stride * elem_size(lb.type);
            const char* c = (const char*)C + z * lc.stride * elem_size(lc.type);
            char* d = (char*)D + z * ldd.stride * elem_size(ldd.type);
            // op(A) as M rows of K floats and op(B) as N rows of K: contiguous dot products
            std::vector<float> ar(M * K), br(N * K);
            for (uint64_t i = 0; i < M; i++)
                for (uint64_t k = 0; k < K; k++)
                    ar[i * K + k] = load(la.type, a, m.transa ? (int64_t)(k + i * la.ld) : (int64_t)(i + k * la.ld));
            for (uint64_t j = 0; j < N; j++)
                for (uint64_t k = 0; k < K; k++)
                    br[j * K + k] = load(lb.type, b, m.transb ? (int64_t)(j + k * lb.ld) : (int64_t)(k + j * lb.ld));
            for (uint64_t j = 0; j < N; j++) {
                const float* y = &br[j * K];
                for (uint64_t i = 0; i < M; i++) {
                    const float* x = &ar[i * K];
                    float acc = 0.f;
                    for (uint64_t k = 0; k < K; k++) acc += x[k] * y[k];
                    float v = al * acc;
                    if (be != 0.f) v += be * load(lc.type, c, (int64_t)(i + j * lc.ld));
                    if (bias) v += load(ldd.type, (const char*)m.bias, (int64_t)i);
                    if (gelu) v = 0.5f * v * (1.f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
                    store(ldd.type, d, (int64_t)(i + j * ldd.ld), v);
                }
            }
        }
    });
    return BLAS_OK;
}
const char* cublasLtGetStatusString(int s) {
    switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

// ---------------- NVRTC ----------------
// The kernels are compiled into this library already; "compiling" hands back
// a token image that cuModuleLoadData accepts.

int nvrtcVersion(int* major, int* minor) {
    *major = 99;
    *minor = 0;
    return 0;
}
int nvrtcCreateProgram(uintptr_t* prog, const char*, const char*, int, const void*, const void*) {
    *prog = 1;
    return 0;
}
int nvrtcCompileProgram(uintptr_t, int, const void*) { return 0; }
int nvrtcGetProgramLogSize(uintptr_t, size_t* n) {
    *n = 1;
    return 0;
}
int nvrtcGetProgramLog(uintptr_t, char* log) {
    log[0] = 0;
    return 0;
}
static const char kImage[16] = "\x7f" "ELF-emulated";
int nvrtcGetCUBINSize(uintptr_t, size_t* n) {
    *n = sizeof kImage;
    return 0;
}
int nvrtcGetCUBIN(uintptr_t, char* out) {
    memcpy(out, kImage, sizeof kImage);
    return 0;
}
int nvrtcGetPTXSize(uintptr_t, size_t* n) { return nvrtcGetCUBINSize(0, n); }
int nvrtcGetPTX(uintptr_t, char* out) { return nvrtcGetCUBIN(0, out); }
int nvrtcDestroyProgram(uintptr_t*) { return 0; }
const char* nvrtcGetErrorString(int) { return "NVRTC_ERROR (emulator)"; }
int nvrtcGetNumSupportedArchs(int* n) {
    *n = 1;
    return 0;
}
int nvrtcGetSupportedArchs(int* a) {
    a[0] = 80;
    return 0;
}

} // extern "C"
