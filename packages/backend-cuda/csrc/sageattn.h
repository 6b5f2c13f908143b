/*
 * sageattn.h — the whole C ABI of libsageattn_cuda.so.
 *
 * Every function returns an sa_status (0 = success). Device addresses and streams travel as uint64_t so that
 * FFI callers (bun:ffi, Deno.dlopen) see plain integers. After a failure, sa_last_error copies the native message
 * (the CUDA runtime's words, plus what was being done) of the calling thread into a caller buffer.
 *
 * Attention runs on a stream: sa_attention enqueues the pre-pass and the attention kernel and returns without
 * waiting; results are ready after sa_stream_synchronize (or a device-to-host copy on the same stream followed by it).
 */
#ifndef SAGEATTN_H
#define SAGEATTN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SA_API __attribute__((visibility("default")))

/* Version as major*10000 + minor*100 + patch. */
#define SA_VERSION 100

typedef enum sa_status {
  SA_OK = 0,
  SA_ERR_INVALID_ARGUMENT = 1,   /* a null pointer, a bad shape, an unknown enum value */
  SA_ERR_NO_DEVICE = 2,          /* no CUDA device, or no driver (or one too old) */
  SA_ERR_OUT_OF_MEMORY = 3,      /* a device allocation failed */
  SA_ERR_KERNEL_FAILED = 4,      /* a launch or a kernel failed (the context may be unusable after) */
  SA_ERR_UNSUPPORTED = 5,        /* valid, but this library cannot serve it (e.g. compute capability < 8.0) */
  SA_ERR_WORKSPACE_TOO_SMALL = 6,/* sa_params.workspace_size is under sa_workspace_size */
  SA_ERR_LIMIT_EXCEEDED = 7,     /* a size over a hardware or launch limit */
  SA_ERR_DEVICE_LOST = 8,        /* the device stopped answering or the context is corrupt */
  SA_ERR_CUDA = 9                /* any other CUDA runtime error; sa_last_error says which */
} sa_status;

typedef enum sa_dtype { SA_F32 = 0, SA_F16 = 1, SA_BF16 = 2 } sa_dtype;

/* HND: [B, H, N, D]; NHD: [B, N, H, D]. Strides below are given in the layout's own order. */
typedef enum sa_layout { SA_HND = 0, SA_NHD = 1 } sa_layout;

/* sa_params.flags: any bit not defined here is refused with SA_ERR_INVALID_ARGUMENT. */
enum sa_flags {
  SA_CAUSAL = 1u << 0,          /* key j visible to query i iff j <= i + (Nk - Nq), per sequence */
  SA_RETURN_LSE = 1u << 1,      /* write the natural-log LSE to sa_params.lse */
  SA_PV_F32 = 1u << 2,          /* accumulate P·V in f32 throughout instead of f16 within each K block */
  SA_NO_SMOOTH_K = 1u << 3,     /* skip subtracting mean(K) over tokens (only to show why it matters) */
  SA_KERNEL_ONLY = 1u << 4,     /* skip the pre-pass: the workspace already holds one for the same inputs and
                                   shapes (benchmarks time the attention kernel alone this way) */
  SA_PV_AUTO = 1u << 5,         /* the caller leaves the P·V accumulation to the library: f32 where the kernel runs it
                                   faster (the Hopper kernel), else f16 within each K block; SA_PV_F32 still forces f32 */
  SA_QK_WARP = 1u << 6,         /* Q quantized per 16 query rows instead of 128 (K per 64 keys as by default) */
  SA_QK_ROW = 1u << 7,          /* Q quantized per query row and K per 16 keys (not with SA_QK_WARP); not for the KV
                                   cache */
  SA_KV_VALUES_INT8 = 1u << 8,  /* KV cache calls only, on every call for that cache (size, init, append, attend):
                                   V kept as INT8 with one f32 scale per token instead of f16 */
  SA_PV_INT8 = 1u << 9,         /* P·V in 8 bits: P as UINT8 per row and 128-key block, V as INT8 per channel, exact
                                   int32 sums (not with SA_PV_F32); the Hopper kernel only (compute capability 9.0,
                                   head dims up to 128 padded to 64 or 128), else SA_ERR_UNSUPPORTED */
  SA_QK_THREAD = 1u << 10,      /* Q quantized per query row and K per 16 keys: in each 64-key block, the keys whose
                                   position mod 8 is in the same pair {2t, 2t + 1} (one thread's MMA columns); not with
                                   SA_QK_WARP or SA_QK_ROW; not for the KV cache */
  SA_PV_FP8 = 1u << 11          /* P·V in FP8 e4m3: 448·P against the row's max, V per channel scaled to 448, each
                                   128-key tile's products summed by the tensor cores, then joining O in f32 (not with
                                   SA_PV_F32 or SA_PV_INT8); the Hopper kernel only, as SA_PV_INT8 */
};

/*
 * One attention call. All pointers are device addresses. Strides are in elements, in the layout's order.
 * Varlen: cu_seqlens_q/k non-zero (device int32 arrays of num_seqs + 1 entries), batch must be 1, and
 * max_seqlen_q/k bound each sequence's length. The LSE is f32 [B, Hq, Nq] ([1, Hq, totalQ] with varlen).
 */
typedef struct sa_params {
  uint64_t q, k, v, o;           /* input tensors and the output tensor */
  uint64_t lse;                  /* f32 output, 0 unless SA_RETURN_LSE */
  uint64_t cu_seqlens_q;         /* int32 [num_seqs + 1], 0 without varlen */
  uint64_t cu_seqlens_k;
  uint64_t workspace;            /* at least sa_workspace_size bytes, 256-byte aligned */
  uint64_t workspace_size;
  uint64_t stream;               /* cudaStream_t, 0 = the legacy default stream */
  int64_t q_strides[4];
  int64_t k_strides[4];
  int64_t v_strides[4];
  int64_t o_strides[4];
  int32_t batch, heads_q, heads_kv, seqlen_q, seqlen_k, head_dim;
  int32_t num_seqs, max_seqlen_q, max_seqlen_k;  /* varlen only; ignored otherwise */
  int32_t dtype;                 /* sa_dtype of q, k, v */
  int32_t out_dtype;             /* sa_dtype of o */
  int32_t layout;                /* sa_layout of q, k, v and o */
  uint32_t flags;                /* sa_flags */
  float sm_scale;                /* logit scale, usually 1/sqrt(head_dim) */
} sa_params;

/* Field count reported by sa_params_layout. */
#define SA_PARAMS_FIELDS 28

/* Static description of a status code ("out of memory", ...). */
SA_API const char* sa_status_string(int32_t status);
/* Copies this thread's last error message (NUL-terminated, truncated to cap) into buf; returns its full length. */
SA_API int32_t sa_last_error(char* buf, int32_t cap);
SA_API int32_t sa_version(void);

/*
 * Writes sizeof(sa_params) then the byte offset of each field in declaration order (SA_PARAMS_FIELDS of them)
 * into out[0 .. SA_PARAMS_FIELDS]; cap is out's length. Returns the number of values written.
 */
SA_API int32_t sa_params_layout(int64_t* out, int32_t cap);

SA_API int32_t sa_device_count(int32_t* count);
SA_API int32_t sa_set_device(int32_t device);
/* name: NUL-terminated device name; ints: [sm_count, cc_major, cc_minor, max_smem_per_block_optin];
 * mem: [total_bytes, free_bytes]. */
SA_API int32_t sa_device_query(int32_t device, char* name, int32_t name_cap, int32_t* ints, uint64_t* mem);

SA_API int32_t sa_stream_create(uint64_t* stream);
SA_API int32_t sa_stream_synchronize(uint64_t stream);
SA_API int32_t sa_stream_destroy(uint64_t stream);

/* Stream-ordered allocation (a pool: cheap after warm-up). bytes == 0 gives address 0. */
SA_API int32_t sa_malloc(uint64_t bytes, uint64_t stream, uint64_t* ptr);
SA_API int32_t sa_free(uint64_t ptr, uint64_t stream);
/* [free, total] device memory, after trimming this library's pool so the figure reflects live allocations. */
SA_API int32_t sa_mem_info(uint64_t* free_total);

SA_API int32_t sa_memcpy_htod(uint64_t dst, const void* src, uint64_t bytes, uint64_t stream);
SA_API int32_t sa_memcpy_dtoh(void* dst, uint64_t src, uint64_t bytes, uint64_t stream);
SA_API int32_t sa_memcpy_dtod(uint64_t dst, uint64_t src, uint64_t bytes, uint64_t stream);

/* Bytes of workspace sa_attention needs for these params (pointers are not read). */
SA_API int32_t sa_workspace_size(const sa_params* p, uint64_t* bytes);
/* Enqueues SageAttention (pre-pass + attention kernel) on p->stream. */
SA_API int32_t sa_attention(const sa_params* p);

/*
 * A KV cache for decode (docs/DESIGN.md §2, "Decode"): K stored INT8 per 64-row block around a fixed smoothing mean,
 * V as f16 (or INT8 per token with SA_KV_VALUES_INT8). One device allocation of sa_kv_cache_size bytes, zeroed once by sa_kv_init, holds everything; the caller
 * tracks the length. `base` carries the shapes and the call's tensors:
 *   every call      batch, heads_kv, head_dim, stream, flags (SA_KV_VALUES_INT8: the cache's value format)
 *   sa_kv_append    k, v, k_strides, v_strides, seqlen_k (rows appended, per batch entry and kv head), dtype (of k
 *                   and v), layout, flags (SA_NO_SMOOTH_K: no mean is taken at the first append)
 *   sa_kv_attend    q, o, lse, q_strides, o_strides, heads_q, seqlen_q (queries), dtype (of q), out_dtype, layout,
 *                   flags (SA_CAUSAL, SA_RETURN_LSE, SA_PV_F32), sm_scale, workspace, workspace_size
 */
typedef struct sa_kv_params {
  sa_params base;
  uint64_t cache;                /* device address of the cache allocation */
  int32_t capacity;              /* most rows per (batch entry, kv head) */
  int32_t length;                /* rows in the cache before this call */
} sa_kv_params;

/* Field count reported by sa_kv_params_layout (after sizeof): base, cache, capacity, length. */
#define SA_KV_PARAMS_FIELDS 4

/* sizeof(sa_kv_params) then the offsets of base, cache, capacity, length; returns the number of values written. */
SA_API int32_t sa_kv_params_layout(int64_t* out, int32_t cap);
/* Bytes of the cache allocation for (batch, heads_kv, head_dim, capacity). */
SA_API int32_t sa_kv_cache_size(const sa_kv_params* p, uint64_t* bytes);
/* Zeroes a new cache allocation (enqueued on base.stream). */
SA_API int32_t sa_kv_init(const sa_kv_params* p);
/* Enqueues the append of seqlen_k rows after `length` (length + rows <= capacity). */
SA_API int32_t sa_kv_append(const sa_kv_params* p);
/* Enqueues the re-centring of the cache's `length` rows on their own mean, every block re-quantized. */
SA_API int32_t sa_kv_requantize(const sa_kv_params* p);
/* Bytes of workspace sa_kv_attend needs for these shapes and this capacity (the same for every length). */
SA_API int32_t sa_kv_workspace_size(const sa_kv_params* p, uint64_t* bytes);
/* Enqueues attention of q [B, heads_q, seqlen_q, D] against the cache's `length` rows (length >= 1). */
SA_API int32_t sa_kv_attend(const sa_kv_params* p);

#ifdef __cplusplus
}
#endif
#endif
