// api.cu — the C ABI of sageattn.h: status mapping, device and memory helpers, and sa_attention, which resolves a
// sa_params into the kernels' geometry, carves the workspace and enqueues the pre-pass and the attention kernel.
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include "heuristics.h"
#include "hopper_layout.h"
#include "kernels.h"
#include "kv_cache.h"
#include "sageattn.h"
#include "generated/abi_checks.h"

namespace {

thread_local std::string last_error;

int32_t fail(int32_t status, const std::string& message) {
  last_error = message;
  return status;
}

int32_t status_of(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return SA_OK;
    case cudaErrorMemoryAllocation: return SA_ERR_OUT_OF_MEMORY;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorSystemDriverMismatch: return SA_ERR_NO_DEVICE;
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorInvalidPtx: return SA_ERR_UNSUPPORTED;
    case cudaErrorLaunchFailure:
    case cudaErrorIllegalAddress:
    case cudaErrorMisalignedAddress:
    case cudaErrorLaunchOutOfResources:
    case cudaErrorInvalidConfiguration:
    case cudaErrorIllegalInstruction: return SA_ERR_KERNEL_FAILED;
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorDevicesUnavailable:
    case cudaErrorHardwareStackError:
    case cudaErrorContextIsDestroyed:
    case cudaErrorDeviceUninitialized: return SA_ERR_DEVICE_LOST;
    case cudaErrorInvalidValue: return SA_ERR_INVALID_ARGUMENT;
    default: return SA_ERR_CUDA;
  }
}

// Maps a CUDA error to a status and records "what: cudaErrorName (description)" as the thread's message.
int32_t check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return SA_OK;
  cudaGetLastError();  // a non-sticky error must not resurface at the next launch check
  return fail(status_of(e), std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

#define SA_TRY(expr, what)                         \
  do {                                             \
    const int32_t st_ = check((expr), (what));     \
    if (st_ != SA_OK) return st_;                  \
  } while (0)

cudaStream_t as_stream(uint64_t s) { return reinterpret_cast<cudaStream_t>(static_cast<uintptr_t>(s)); }

struct DeviceLimits {
  int ccMajor = 0, ccMinor = 0, smemOptin = 0, sms = 0;
};

int32_t current_limits(DeviceLimits& out) {
  static thread_local int cachedDevice = -1;
  static thread_local DeviceLimits cached;
  int dev = 0;
  SA_TRY(cudaGetDevice(&dev), "cudaGetDevice");
  if (dev != cachedDevice) {
    SA_TRY(cudaDeviceGetAttribute(&cached.ccMajor, cudaDevAttrComputeCapabilityMajor, dev), "cudaDeviceGetAttribute");
    SA_TRY(cudaDeviceGetAttribute(&cached.ccMinor, cudaDevAttrComputeCapabilityMinor, dev), "cudaDeviceGetAttribute");
    SA_TRY(cudaDeviceGetAttribute(&cached.smemOptin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "cudaDeviceGetAttribute");
    SA_TRY(cudaDeviceGetAttribute(&cached.sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    cachedDevice = dev;
  }
  out = cached;
  return SA_OK;
}

// (b, h, n, d) element strides from strides in the layout's order.
void logical_strides(const int64_t (&st)[4], int32_t layout, int64_t& sb, int64_t& sh, int64_t& sn, int64_t& sd) {
  sb = st[0];
  sd = st[3];
  if (layout == SA_HND) {
    sh = st[1];
    sn = st[2];
  } else {
    sn = st[1];
    sh = st[2];
  }
}

sa::TensorRef tensor_ref(uint64_t ptr, const int64_t (&st)[4], int32_t layout, int32_t dtype, int32_t headDim) {
  sa::TensorRef t{};
  t.ptr = ptr;
  t.dtype = dtype;
  logical_strides(st, layout, t.sb, t.sh, t.sn, t.sd);
  const uint64_t vecBytes = dtype == SA_F32 ? 16 : 8;
  t.vec4 = t.sd == 1 && headDim % 4 == 0 && t.sn % 4 == 0 && t.sh % 4 == 0 && t.sb % 4 == 0 && ptr % vecBytes == 0;
  return t;
}

// The library's own stream-ordered pool per device. It keeps freed memory (release threshold: no limit) the way
// torch's caching allocator does: the default pool returns it to the driver at every synchronisation, and the next
// call's allocations then map fresh pages. sa_mem_info trims it.
constexpr int kMaxDevices = 64;
std::mutex poolLock;
cudaMemPool_t pools[kMaxDevices] = {};

int32_t device_pool(cudaMemPool_t& out) {
  int dev = 0;
  SA_TRY(cudaGetDevice(&dev), "cudaGetDevice");
  if (dev < 0 || dev >= kMaxDevices) return fail(SA_ERR_UNSUPPORTED, "device ordinal over " + std::to_string(kMaxDevices));
  std::lock_guard<std::mutex> hold(poolLock);
  if (pools[dev] == nullptr) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.handleTypes = cudaMemHandleTypeNone;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = dev;
    cudaMemPool_t pool = nullptr;
    SA_TRY(cudaMemPoolCreate(&pool, &props), "cudaMemPoolCreate");
    uint64_t keepAll = UINT64_MAX;
    SA_TRY(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keepAll), "cudaMemPoolSetAttribute");
    pools[dev] = pool;
  }
  out = pools[dev];
  return SA_OK;
}

// Copies a generated layout table (sizeof, then offsets) into out[0 .. cap); returns the number of values written.
template <size_t N>
int32_t copy_layout(const int64_t (&values)[N], int64_t* out, int32_t cap) {
  int32_t n = 0;
  for (; out != nullptr && n < cap && n < int32_t(N); n++) out[n] = values[n];
  return n;
}

constexpr uint64_t kAlign = 256;
uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

// Byte offsets of the workspace regions; total is the size.
struct WorkspacePlan {
  uint64_t kpart, qi, ki, vh, qs, ks, qm, vpart, vs, total;
};

int32_t resolve(const sa_params* p, sa::Geometry& g, WorkspacePlan& plan) {
  if (p == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "sa_params is null");
  if (p->batch <= 0 || p->heads_q <= 0 || p->heads_kv <= 0 || p->seqlen_q <= 0 || p->seqlen_k <= 0 || p->head_dim <= 0)
    return fail(SA_ERR_INVALID_ARGUMENT, "batch, heads, sequence lengths and head_dim must be positive");
  if (p->heads_q % p->heads_kv != 0) return fail(SA_ERR_INVALID_ARGUMENT, "heads_q must be a multiple of heads_kv");
  if (p->head_dim > 256) return fail(SA_ERR_UNSUPPORTED, "head_dim over 256");
  if (p->dtype < SA_F32 || p->dtype > SA_BF16 || p->out_dtype < SA_F32 || p->out_dtype > SA_BF16)
    return fail(SA_ERR_INVALID_ARGUMENT, "unknown dtype");
  if (p->layout != SA_HND && p->layout != SA_NHD) return fail(SA_ERR_INVALID_ARGUMENT, "unknown layout");
  const bool varlen = p->cu_seqlens_q != 0 || p->cu_seqlens_k != 0;
  if (varlen) {
    if (p->cu_seqlens_q == 0 || p->cu_seqlens_k == 0) return fail(SA_ERR_INVALID_ARGUMENT, "varlen needs both cu_seqlens_q and cu_seqlens_k");
    if (p->batch != 1) return fail(SA_ERR_INVALID_ARGUMENT, "varlen needs batch 1");
    if (p->num_seqs <= 0 || p->max_seqlen_q < 0 || p->max_seqlen_k < 0)
      return fail(SA_ERR_INVALID_ARGUMENT, "varlen needs num_seqs > 0 and max_seqlen_q/k >= 0");
  }
  g.B = p->batch;
  g.Hq = p->heads_q;
  g.Hkv = p->heads_kv;
  g.Nq = p->seqlen_q;
  g.Nk = p->seqlen_k;
  g.D = p->head_dim;
  g.DP = sa::padded_head_dim(p->head_dim);
  g.group = p->heads_q / p->heads_kv;
  g.S = varlen ? p->num_seqs : p->batch;
  g.maxQ = varlen ? p->max_seqlen_q : p->seqlen_q;
  g.maxK = varlen ? p->max_seqlen_k : p->seqlen_k;
  g.cuQ = reinterpret_cast<const int32_t*>(p->cu_seqlens_q);
  g.cuK = reinterpret_cast<const int32_t*>(p->cu_seqlens_k);
  g.rowsQ = varlen ? int64_t(g.Nq) + int64_t(sa::kQBlock) * g.S : g.B * sa::round_up(g.Nq, sa::kQBlock);
  g.rowsK = varlen ? int64_t(g.Nk) + int64_t(sa::kKRowPad) * g.S : g.B * sa::round_up(g.Nk, sa::kKRowPad);
  g.qSlots = varlen ? sa::ceil_div(g.Nq, sa::kQBlock) + g.S : g.B * sa::ceil_div(g.Nq, sa::kQBlock);
  g.kSlots = varlen ? sa::ceil_div(g.Nk, sa::kKBlock) + g.S : g.B * sa::ceil_div(g.Nk, sa::kKBlock);
  // A bit this library does not define (a caller built against a newer header, or a typo) is refused, not ignored:
  // ignoring it would run some other computation than the one asked for.
  // sa::kKnownFlags: generated/abi_checks.h, from core's SA_FLAGS.
  if (p->flags & ~sa::kKnownFlags) {
    char bits[16];
    std::snprintf(bits, sizeof bits, "0x%x", unsigned(p->flags & ~sa::kKnownFlags));
    return fail(SA_ERR_INVALID_ARGUMENT, std::string("unknown flag bits ") + bits);
  }
  const uint32_t granularity = p->flags & (SA_QK_WARP | SA_QK_ROW | SA_QK_THREAD);
  if (granularity & (granularity - 1))
    return fail(SA_ERR_INVALID_ARGUMENT, "more than one of SA_QK_WARP, SA_QK_ROW and SA_QK_THREAD");
  const uint32_t pvBits = p->flags & (SA_PV_F32 | SA_PV_INT8 | SA_PV_FP8);
  if (pvBits & (pvBits - 1)) return fail(SA_ERR_INVALID_ARGUMENT, "more than one of SA_PV_F32, SA_PV_INT8 and SA_PV_FP8");
  g.qShift = (p->flags & (SA_QK_ROW | SA_QK_THREAD)) ? 0 : (p->flags & SA_QK_WARP) ? sa::kQWarpShift : sa::kQBlockShift;
  g.kShift = (p->flags & SA_QK_ROW) ? sa::kKRowShift : (p->flags & SA_QK_THREAD) ? sa::kKThreadShift : sa::kKBlockShift;
  g.kThread = (p->flags & SA_QK_THREAD) != 0;
  if (int64_t(g.S) * g.Hq > 65535 || sa::ceil_div(g.maxQ, sa::kQBlock) > 65535 || sa::ceil_div(g.maxK, sa::kKBlock) > 65535)
    return fail(SA_ERR_LIMIT_EXCEEDED, "sequences × heads over 65535, or a sequence over 8M tokens");

  uint64_t at = 0;
  auto region = [&](uint64_t bytes) {
    const uint64_t start = at;
    at = align_up(at + bytes);
    return start;
  };
  plan.kpart = region(uint64_t(g.S) * g.Hkv * sa::kmean_chunks(g.maxK) * g.DP * sizeof(float));
  plan.qi = region(uint64_t(g.Hq) * g.rowsQ * g.DP);
  plan.ki = region(uint64_t(g.Hkv) * g.rowsK * g.DP);
  plan.vh = region(uint64_t(g.Hkv) * g.rowsK * g.DP * 2);
  plan.qs = region((uint64_t(g.Hq) * g.qSlots << (sa::kQBlockShift - g.qShift)) * sizeof(float));
  plan.ks = region((uint64_t(g.Hkv) * g.kSlots << (sa::kKBlockShift - g.kShift)) * sizeof(float));
  plan.qm = region((p->flags & SA_RETURN_LSE) ? uint64_t(g.Hq) * g.rowsQ * sizeof(float) : 0);
  // "int8" and "fp8" P·V: V's chunk maxima and channel scales (its 8-bit tiles take vh's bytes, half of them).
  const bool pvInt8 = (p->flags & (SA_PV_INT8 | SA_PV_FP8)) != 0;
  plan.vpart = region(pvInt8 ? uint64_t(g.S) * g.Hkv * sa::kmean_chunks(g.maxK) * g.DP * sizeof(float) : 0);
  plan.vs = region(pvInt8 ? uint64_t(g.S) * g.Hkv * g.DP * sizeof(float) : 0);
  plan.total = at;
  return SA_OK;
}

// The cache a sa_kv_params describes, after checking its shape fields (not the call's tensors).
int32_t resolve_cache(const sa_kv_params* p, sa::KvCache& c) {
  if (p == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "sa_kv_params is null");
  const sa_params& b = p->base;
  if (b.batch <= 0 || b.heads_kv <= 0 || b.head_dim <= 0 || p->capacity <= 0 || p->length < 0 || p->length > p->capacity)
    return fail(SA_ERR_INVALID_ARGUMENT, "batch, heads_kv, head_dim and capacity must be positive, 0 <= length <= capacity");
  if (b.head_dim > 256) return fail(SA_ERR_UNSUPPORTED, "head_dim over 256");
  if (p->capacity > (1 << 30)) return fail(SA_ERR_LIMIT_EXCEEDED, "capacity over 2^30 rows");
  if (int64_t(b.batch) * b.heads_kv > 65535) return fail(SA_ERR_LIMIT_EXCEEDED, "batch × heads_kv over 65535");
  c = sa::kv_cache_at(p->cache, b.batch, b.heads_kv, b.head_dim, sa::padded_head_dim(b.head_dim), p->capacity,
                     (b.flags & SA_KV_VALUES_INT8) != 0);
  return SA_OK;
}

// The current device's limits, for any call that launches: refuses compute capability under 8.0 and clears a stale
// non-sticky error so that it is not reported as this call's.
int32_t usable_device(DeviceLimits& lim) {
  const int32_t st = current_limits(lim);
  if (st != SA_OK) return st;
  if (lim.ccMajor < 8)
    return fail(SA_ERR_UNSUPPORTED, "compute capability " + std::to_string(lim.ccMajor) + "." + std::to_string(lim.ccMinor) + " is under 8.0");
  cudaGetLastError();  // a stale non-sticky error from someone else's call must not be reported as ours
  return SA_OK;
}

// The attend call's shape checks, and the device's limits (the split-K plan depends on its SM count).
int32_t resolve_attend(const sa_kv_params* p, sa::KvCache& c, DeviceLimits& lim) {
  int32_t st = resolve_cache(p, c);
  if (st != SA_OK) return st;
  const sa_params& b = p->base;
  if (b.heads_q <= 0 || b.heads_q % b.heads_kv != 0) return fail(SA_ERR_INVALID_ARGUMENT, "heads_q must be a positive multiple of heads_kv");
  if (b.seqlen_q <= 0) return fail(SA_ERR_INVALID_ARGUMENT, "seqlen_q must be positive");
  if (b.flags & (SA_QK_WARP | SA_QK_ROW | SA_QK_THREAD)) return fail(SA_ERR_UNSUPPORTED, "the KV cache quantizes Q and K per block only");
  if (b.flags & (SA_PV_INT8 | SA_PV_FP8))
    return fail(SA_ERR_UNSUPPORTED, "the KV cache sums P·V in f16 or f32 (SA_PV_INT8 and SA_PV_FP8 are for sa_attention)");
  if (int64_t(b.heads_q / b.heads_kv) * b.seqlen_q > int64_t(16) * sa::kMaxGroups)
    return fail(SA_ERR_LIMIT_EXCEEDED, "heads_q / heads_kv × seqlen_q over " + std::to_string(16 * sa::kMaxGroups) + " rows per kv head");
  if ((st = usable_device(lim)) != SA_OK) return st;
  if (sa::decode_smem_bytes(c.DP, c.vInt8) > lim.smemOptin)
    return fail(SA_ERR_UNSUPPORTED, "head dim " + std::to_string(b.head_dim) + " needs " + std::to_string(sa::decode_smem_bytes(c.DP, c.vInt8)) +
                                        " bytes of shared memory for decode, the device allows " + std::to_string(lim.smemOptin));
  return SA_OK;
}

}  // namespace

extern "C" {

SA_API const char* sa_status_string(int32_t status) {
  switch (status) {
    case SA_OK: return "ok";
    case SA_ERR_INVALID_ARGUMENT: return "invalid argument";
    case SA_ERR_NO_DEVICE: return "no CUDA device";
    case SA_ERR_OUT_OF_MEMORY: return "out of device memory";
    case SA_ERR_KERNEL_FAILED: return "kernel failed";
    case SA_ERR_UNSUPPORTED: return "unsupported";
    case SA_ERR_WORKSPACE_TOO_SMALL: return "workspace too small";
    case SA_ERR_LIMIT_EXCEEDED: return "limit exceeded";
    case SA_ERR_DEVICE_LOST: return "device lost";
    case SA_ERR_CUDA: return "CUDA error";
    default: return "unknown status";
  }
}

SA_API int32_t sa_last_error(char* buf, int32_t cap) {
  if (buf != nullptr && cap > 0) {
    const size_t n = last_error.size() < size_t(cap - 1) ? last_error.size() : size_t(cap - 1);
    std::memcpy(buf, last_error.data(), n);
    buf[n] = '\0';
  }
  return static_cast<int32_t>(last_error.size());
}

SA_API int32_t sa_version(void) { return SA_VERSION; }

// sizeof(sa_params), then its fields' offsets in core's SA_PARAMS order (generated/abi_checks.h, where static_asserts
// pin each one to core's schema).
SA_API int32_t sa_params_layout(int64_t* out, int32_t cap) { return copy_layout(sa::kParamsLayout, out, cap); }

SA_API int32_t sa_device_count(int32_t* count) {
  if (count == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "count is null");
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  *count = e == cudaSuccess ? n : 0;
  if (e == cudaSuccess && n == 0) return fail(SA_ERR_NO_DEVICE, "cudaGetDeviceCount: no CUDA device");
  return check(e, "cudaGetDeviceCount");
}

SA_API int32_t sa_set_device(int32_t device) { return check(cudaSetDevice(device), "cudaSetDevice"); }

SA_API int32_t sa_device_query(int32_t device, char* name, int32_t name_cap, int32_t* ints, uint64_t* mem) {
  cudaDeviceProp prop{};
  SA_TRY(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  if (name != nullptr && name_cap > 0) {
    std::strncpy(name, prop.name, size_t(name_cap - 1));
    name[name_cap - 1] = '\0';
  }
  if (ints != nullptr) {
    ints[0] = prop.multiProcessorCount;
    ints[1] = prop.major;
    ints[2] = prop.minor;
    ints[3] = static_cast<int32_t>(prop.sharedMemPerBlockOptin);
  }
  if (mem != nullptr) {
    int previous = 0;
    SA_TRY(cudaGetDevice(&previous), "cudaGetDevice");
    SA_TRY(cudaSetDevice(device), "cudaSetDevice");
    size_t freeBytes = 0, totalBytes = 0;
    const cudaError_t e = cudaMemGetInfo(&freeBytes, &totalBytes);
    cudaSetDevice(previous);
    SA_TRY(e, "cudaMemGetInfo");
    mem[0] = totalBytes;
    mem[1] = freeBytes;
  }
  return SA_OK;
}

SA_API int32_t sa_stream_create(uint64_t* stream) {
  if (stream == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "stream is null");
  cudaStream_t s = nullptr;
  SA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  *stream = reinterpret_cast<uintptr_t>(s);
  return SA_OK;
}

SA_API int32_t sa_stream_synchronize(uint64_t stream) {
  return check(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
}

SA_API int32_t sa_stream_destroy(uint64_t stream) { return check(cudaStreamDestroy(as_stream(stream)), "cudaStreamDestroy"); }

SA_API int32_t sa_malloc(uint64_t bytes, uint64_t stream, uint64_t* ptr) {
  if (ptr == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "ptr is null");
  *ptr = 0;
  if (bytes == 0) return SA_OK;
  cudaMemPool_t pool = nullptr;
  const int32_t st = device_pool(pool);
  if (st != SA_OK) return st;
  void* p = nullptr;
  const cudaError_t e = cudaMallocFromPoolAsync(&p, bytes, pool, as_stream(stream));
  if (e != cudaSuccess) {
    check(e, "cudaMallocFromPoolAsync");
    last_error += " allocating " + std::to_string(bytes) + " bytes";
    return status_of(e);
  }
  *ptr = reinterpret_cast<uintptr_t>(p);
  return SA_OK;
}

SA_API int32_t sa_free(uint64_t ptr, uint64_t stream) {
  if (ptr == 0) return SA_OK;
  return check(cudaFreeAsync(reinterpret_cast<void*>(static_cast<uintptr_t>(ptr)), as_stream(stream)), "cudaFreeAsync");
}

SA_API int32_t sa_mem_info(uint64_t* free_total) {
  if (free_total == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "free_total is null");
  cudaMemPool_t pool = nullptr;
  const int32_t st = device_pool(pool);
  if (st != SA_OK) return st;
  SA_TRY(cudaMemPoolTrimTo(pool, 0), "cudaMemPoolTrimTo");
  size_t f = 0, t = 0;
  SA_TRY(cudaMemGetInfo(&f, &t), "cudaMemGetInfo");
  free_total[0] = f;
  free_total[1] = t;
  return SA_OK;
}

SA_API int32_t sa_memcpy_htod(uint64_t dst, const void* src, uint64_t bytes, uint64_t stream) {
  if (bytes == 0) return SA_OK;
  return check(cudaMemcpyAsync(reinterpret_cast<void*>(static_cast<uintptr_t>(dst)), src, bytes, cudaMemcpyHostToDevice,
                               as_stream(stream)),
               "cudaMemcpyAsync host→device");
}

SA_API int32_t sa_memcpy_dtoh(void* dst, uint64_t src, uint64_t bytes, uint64_t stream) {
  if (bytes == 0) return SA_OK;
  return check(cudaMemcpyAsync(dst, reinterpret_cast<const void*>(static_cast<uintptr_t>(src)), bytes, cudaMemcpyDeviceToHost,
                               as_stream(stream)),
               "cudaMemcpyAsync device→host");
}

SA_API int32_t sa_memcpy_dtod(uint64_t dst, uint64_t src, uint64_t bytes, uint64_t stream) {
  if (bytes == 0) return SA_OK;
  return check(cudaMemcpyAsync(reinterpret_cast<void*>(static_cast<uintptr_t>(dst)),
                               reinterpret_cast<const void*>(static_cast<uintptr_t>(src)), bytes, cudaMemcpyDeviceToDevice,
                               as_stream(stream)),
               "cudaMemcpyAsync device→device");
}

SA_API int32_t sa_workspace_size(const sa_params* p, uint64_t* bytes) {
  if (bytes == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "bytes is null");
  sa::Geometry g{};
  WorkspacePlan plan{};
  const int32_t st = resolve(p, g, plan);
  if (st != SA_OK) return st;
  *bytes = plan.total;
  return SA_OK;
}

SA_API int32_t sa_attention(const sa_params* p) {
  sa::Geometry g{};
  WorkspacePlan plan{};
  int32_t st = resolve(p, g, plan);
  if (st != SA_OK) return st;
  if (p->q == 0 || p->k == 0 || p->v == 0 || p->o == 0) return fail(SA_ERR_INVALID_ARGUMENT, "q, k, v and o must be device addresses");
  if ((p->flags & SA_RETURN_LSE) && p->lse == 0) return fail(SA_ERR_INVALID_ARGUMENT, "SA_RETURN_LSE without an lse address");
  if (p->workspace == 0 || p->workspace % kAlign != 0) return fail(SA_ERR_INVALID_ARGUMENT, "workspace must be a 256-byte aligned device address");
  if (p->workspace_size < plan.total)
    return fail(SA_ERR_WORKSPACE_TOO_SMALL, "workspace holds " + std::to_string(p->workspace_size) + " bytes, needs " + std::to_string(plan.total));
  DeviceLimits lim;
  if ((st = usable_device(lim)) != SA_OK) return st;
  // Hopper (9.0 exactly: sm_90a code runs nowhere else) takes the wgmma kernel for the head dims it has.
  const bool hopper = lim.ccMajor == 9 && lim.ccMinor == 0 && sa::hopper_head_dim(g.DP) && !sa::force_sm80();
  const bool pvFp8 = (p->flags & SA_PV_FP8) != 0;
  const bool pvInt8 = (p->flags & SA_PV_INT8) != 0 || pvFp8;  // V in a byte per value (v_quantize.cu): int8 or e4m3
  if (pvInt8 && !hopper)
    return fail(SA_ERR_UNSUPPORTED, "SA_PV_INT8 and SA_PV_FP8 run on the Hopper kernel only: compute capability 9.0, a head dim of at most 128, "
                                    "SAGEATTN_CUDA_KERNEL not sm80 (this call: " + std::to_string(lim.ccMajor) + "." +
                                    std::to_string(lim.ccMinor) + ", head dim " + std::to_string(g.D) +
                                    (sa::force_sm80() ? ", the sm80 kernel forced)" : ")"));
  // On Hopper f32 accumulation is the faster as well as the more accurate (NOTES.md), so it is what SA_PV_AUTO gets.
  const bool pvF32 = (p->flags & SA_PV_F32) != 0 || ((p->flags & SA_PV_AUTO) != 0 && hopper);
  const sa::PvMode pv = pvFp8 ? sa::kPvFp8 : pvInt8 ? sa::kPvInt8 : pvF32 ? sa::kPvF32 : sa::kPvF16Block;
  const int smemNeeded = hopper ? sa::attention_sm90_smem_bytes(g.DP, pv) : sa::attention_smem_bytes(g.DP);
  if (smemNeeded > lim.smemOptin)
    return fail(SA_ERR_UNSUPPORTED, "head dim " + std::to_string(g.D) + " needs " + std::to_string(smemNeeded) +
                                        " bytes of shared memory, the device allows " + std::to_string(lim.smemOptin));
  char* base = reinterpret_cast<char*>(static_cast<uintptr_t>(p->workspace));
  sa::Workspace w{};
  w.kpart = reinterpret_cast<float*>(base + plan.kpart);
  w.qi = reinterpret_cast<int8_t*>(base + plan.qi);
  w.ki = reinterpret_cast<int8_t*>(base + plan.ki);
  w.vh = reinterpret_cast<uint16_t*>(base + plan.vh);
  w.qs = reinterpret_cast<float*>(base + plan.qs);
  w.ks = reinterpret_cast<float*>(base + plan.ks);
  w.qm = reinterpret_cast<float*>(base + plan.qm);
  w.vi = reinterpret_cast<int8_t*>(base + plan.vh);
  w.vpart = reinterpret_cast<float*>(base + plan.vpart);
  w.vs = reinterpret_cast<float*>(base + plan.vs);
  const sa::TensorRef q = tensor_ref(p->q, p->q_strides, p->layout, p->dtype, p->head_dim);
  const sa::TensorRef k = tensor_ref(p->k, p->k_strides, p->layout, p->dtype, p->head_dim);
  const sa::TensorRef v = tensor_ref(p->v, p->v_strides, p->layout, p->dtype, p->head_dim);
  const sa::TensorRef o = tensor_ref(p->o, p->o_strides, p->layout, p->out_dtype, p->head_dim);
  const bool lse = (p->flags & SA_RETURN_LSE) != 0;
  const cudaStream_t stream = as_stream(p->stream);
  // The Hopper kernel reads V through a tensor map: the caller's own V where it is f16 in rows the driver can describe
  // (no pre-pass pass over V at all), else the pre-pass's f16 rows. "int8" P·V reads v_quantize.cu's tiles instead.
  CUtensorMap vMap{};
  bool vDirect = false;
  if (hopper && !pvInt8) {
    if (p->dtype == SA_F16 && v.sd == 1 && g.D == g.DP && v.sn > 0 && v.sh > 0 && v.sb > 0) {
      const sa::VSource mine{v.ptr,
                             {uint64_t(g.D), uint64_t(g.Nk), uint64_t(g.Hkv), uint64_t(g.B)},
                             {uint64_t(v.sn) * 2, uint64_t(v.sh) * 2, uint64_t(v.sb) * 2}};
      vDirect = sa::attention_sm90_v_map(g.DP, mine, &vMap);
    }
    const uint64_t rowBytes = uint64_t(g.DP) * 2;
    const sa::VSource rows{reinterpret_cast<uintptr_t>(w.vh),
                           {uint64_t(g.DP), uint64_t(g.rowsK), uint64_t(g.Hkv), 1},
                           {rowBytes, rowBytes * g.rowsK, rowBytes * g.rowsK * g.Hkv}};
    if (!vDirect && !sa::attention_sm90_v_map(g.DP, rows, &vMap))
      return fail(SA_ERR_CUDA, "the driver cannot describe the workspace's V rows as a tensor map (cuTensorMapEncodeTiled)");
  }
  if ((p->flags & SA_KERNEL_ONLY) == 0) {
    SA_TRY(sa::launch_prepass(g, q, k, v, w, p->sm_scale, (p->flags & SA_NO_SMOOTH_K) == 0, lse, hopper, !vDirect && !pvInt8,
                              !hopper && pv == sa::kPvF16Block, stream),
           "pre-pass launch");
    if (pvInt8) {
      SA_TRY(sa::launch_v_absmax(g, v, w.vpart, stream), "V maxima launch");
      SA_TRY(sa::launch_v_quantize(g, v, w, pvFp8, stream), "V quantization launch");
    }
  }
  float* lseOut = lse ? reinterpret_cast<float*>(static_cast<uintptr_t>(p->lse)) : nullptr;
  const bool causal = (p->flags & SA_CAUSAL) != 0;
  SA_TRY(hopper ? sa::launch_attention_sm90(g, w, o, lseOut, causal, pv, vMap, vDirect, stream)
                : sa::launch_attention(g, w, o, lseOut, causal, pvF32, stream),
         "attention launch");
  return SA_OK;
}

// sizeof(sa_kv_params), then the offsets of base, cache, capacity and length (generated/abi_checks.h).
SA_API int32_t sa_kv_params_layout(int64_t* out, int32_t cap) { return copy_layout(sa::kKvParamsLayout, out, cap); }

SA_API int32_t sa_kv_cache_size(const sa_kv_params* p, uint64_t* bytes) {
  if (bytes == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "bytes is null");
  sa::KvCache c{};
  const int32_t st = resolve_cache(p, c);
  if (st != SA_OK) return st;
  *bytes = sa::kv_regions(c.B, c.Hkv, c.DP, c.capacity, c.vInt8).total;
  return SA_OK;
}

SA_API int32_t sa_kv_init(const sa_kv_params* p) {
  sa::KvCache c{};
  const int32_t st = resolve_cache(p, c);
  if (st != SA_OK) return st;
  if (p->cache == 0) return fail(SA_ERR_INVALID_ARGUMENT, "cache must be a device address");
  return check(cudaMemsetAsync(reinterpret_cast<void*>(static_cast<uintptr_t>(p->cache)), 0, sa::kv_regions(c.B, c.Hkv, c.DP, c.capacity, c.vInt8).total,
                               as_stream(p->base.stream)),
               "cudaMemsetAsync (kv cache)");
}

SA_API int32_t sa_kv_append(const sa_kv_params* p) {
  sa::KvCache c{};
  int32_t st = resolve_cache(p, c);
  if (st != SA_OK) return st;
  const sa_params& b = p->base;
  const int n = b.seqlen_k;
  if (p->cache == 0 || b.k == 0 || b.v == 0) return fail(SA_ERR_INVALID_ARGUMENT, "cache, k and v must be device addresses");
  if (n <= 0 || int64_t(p->length) + n > p->capacity)
    return fail(SA_ERR_INVALID_ARGUMENT, "appending " + std::to_string(n) + " rows to " + std::to_string(p->length) + " of capacity " +
                                             std::to_string(p->capacity));
  if (b.dtype < SA_F32 || b.dtype > SA_BF16) return fail(SA_ERR_INVALID_ARGUMENT, "unknown dtype");
  if (b.layout != SA_HND && b.layout != SA_NHD) return fail(SA_ERR_INVALID_ARGUMENT, "unknown layout");
  DeviceLimits lim;
  if ((st = usable_device(lim)) != SA_OK) return st;
  const sa::TensorRef k = tensor_ref(b.k, b.k_strides, b.layout, b.dtype, b.head_dim);
  const sa::TensorRef v = tensor_ref(b.v, b.v_strides, b.layout, b.dtype, b.head_dim);
  const bool firstMean = p->length == 0 && (b.flags & SA_NO_SMOOTH_K) == 0;
  SA_TRY(sa::launch_kv_append(c, k, v, p->length, n, firstMean, as_stream(b.stream)), "kv append launch");
  return SA_OK;
}

SA_API int32_t sa_kv_requantize(const sa_kv_params* p) {
  sa::KvCache c{};
  int32_t st = resolve_cache(p, c);
  if (st != SA_OK) return st;
  if (p->cache == 0) return fail(SA_ERR_INVALID_ARGUMENT, "cache must be a device address");
  DeviceLimits lim;
  if ((st = usable_device(lim)) != SA_OK) return st;
  SA_TRY(sa::launch_kv_requantize(c, p->length, as_stream(p->base.stream)), "kv requantize launch");
  return SA_OK;
}

SA_API int32_t sa_kv_workspace_size(const sa_kv_params* p, uint64_t* bytes) {
  if (bytes == nullptr) return fail(SA_ERR_INVALID_ARGUMENT, "bytes is null");
  sa::KvCache c{};
  DeviceLimits lim;
  const int32_t st = resolve_attend(p, c, lim);
  if (st != SA_OK) return st;
  *bytes = sa::decode_scratch_bytes(c, p->base.heads_q, p->base.seqlen_q, lim.sms);
  return SA_OK;
}

SA_API int32_t sa_kv_attend(const sa_kv_params* p) {
  sa::KvCache c{};
  DeviceLimits lim;
  int32_t st = resolve_attend(p, c, lim);
  if (st != SA_OK) return st;
  const sa_params& b = p->base;
  if (p->cache == 0 || b.q == 0 || b.o == 0) return fail(SA_ERR_INVALID_ARGUMENT, "cache, q and o must be device addresses");
  if (p->length <= 0) return fail(SA_ERR_INVALID_ARGUMENT, "attend on an empty cache");
  if ((b.flags & SA_RETURN_LSE) && b.lse == 0) return fail(SA_ERR_INVALID_ARGUMENT, "SA_RETURN_LSE without an lse address");
  if (b.dtype < SA_F32 || b.dtype > SA_BF16 || b.out_dtype < SA_F32 || b.out_dtype > SA_BF16) return fail(SA_ERR_INVALID_ARGUMENT, "unknown dtype");
  if (b.layout != SA_HND && b.layout != SA_NHD) return fail(SA_ERR_INVALID_ARGUMENT, "unknown layout");
  const uint64_t need = sa::decode_scratch_bytes(c, b.heads_q, b.seqlen_q, lim.sms);
  if (need > 0 && (b.workspace == 0 || b.workspace_size < need))
    return fail(SA_ERR_WORKSPACE_TOO_SMALL, "workspace holds " + std::to_string(b.workspace_size) + " bytes, needs " + std::to_string(need));
  sa::DecodeCall call{};
  call.q = tensor_ref(b.q, b.q_strides, b.layout, b.dtype, b.head_dim);
  call.o = tensor_ref(b.o, b.o_strides, b.layout, b.out_dtype, b.head_dim);
  call.lse = (b.flags & SA_RETURN_LSE) ? reinterpret_cast<float*>(static_cast<uintptr_t>(b.lse)) : nullptr;
  call.scratch = reinterpret_cast<float*>(static_cast<uintptr_t>(b.workspace));
  call.Hq = b.heads_q;
  call.Nq = b.seqlen_q;
  call.length = p->length;
  call.smScale = b.sm_scale;
  call.causal = (b.flags & SA_CAUSAL) != 0;
  call.pvF32 = (b.flags & SA_PV_F32) != 0;
  call.pdl = lim.ccMajor >= 9;
  SA_TRY(sa::launch_decode_attention(c, call, lim.sms, as_stream(b.stream)), "decode attention launch");
  return SA_OK;
}

}  // extern "C"
