// kv_cache.h — the device layout of a KV cache (docs/DESIGN.md §2, "Decode") and the launchers of its kernels.
// One allocation of kv_cache_bytes() holds, per (batch entry, kv head) — "head" below, B·Hkv of them:
//   ki     int8 [head][capPad][DP]  round((K − mean) / sK), plain rows, zeros past D and past the length
//   vh     f16  [head][capPad][DP]  V as f16 bits (zeros where nothing was appended: masked keys read finite zeros)
//   vi     int8 [head][capPad/64][DP][64]  instead of vh with the int8 value format: round(V/sV) per token, a 64-key
//                                   block stored channel-major with keys permuted within each 16 (kv_vi_slot), so one
//                                   ldmatrix gives a lane its mma B fragment (decode_attention.cu)
//   vs     f32  [head][capPad]      sV per token (int8 format): max|v|/127, as K's block scale
//   ks     f32  [head][capPad/64]   sK per 64-row block, negated where the block's f16 V holds some |v| past
//                                    kF16BlockVLimit (sticky: decode then sums that block's P/64 in f16)
//   mean   f32  [head][DP]          the smoothing vector: mean of K over the first append (zeros without smoothing)
//   raw    f32  [head][64][DP]      the partial last block's rows, K − mean, re-quantized on every append
//   kpart  f32  [head][16][DP]      per-chunk sums of K while a mean is being taken (first append, requantize)
//   next   f32  [head][DP]          the new mean during requantize (copied over `mean` after the blocks are done)
// 64 is kKBlock (one sK per K quantization block); capPad is the capacity rounded up to it. Everything starts zeroed
// (sa_kv_init).
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include "geometry.cuh"

namespace sa {

constexpr int kMaxMeanChunksKv = 16;  // chunks of K summed in parallel when a mean is taken
constexpr int kMaxGroups = 64;        // 16-row query groups per kv head one decode call may have (Hq/Hkv·Nq ≤ 1024)
constexpr int kDecodeRows = 16;       // query rows per decode group (one m16 tile)
constexpr int kMaxDecodeSplits = 64;  // key-block ranges one group's attend is split into (decode_merge.cu's bound)
// Byte of key `key` (0..63) within its channel's 64-byte row of a vi block. Within each 16 keys, bytes 4t..4t+3 hold
// keys 2t, 2t+1, 2t+8, 2t+9: the k rows an m16n8k16 B fragment gives lane t, so a non-transposed ldmatrix of 8
// channels × 16 keys hands every lane its fragment as one word.
__host__ __device__ constexpr int kv_vi_slot(int key) {
  return (key & ~15) | ((key & 6) << 1) | ((key >> 2) & 2) | (key & 1);
}

// A split decode call's workspace, per (group, split): acc [16][DP] (unnormalised), then per row m (base 2), l and
// smScale·q·mean, all f32; decode_attention.cu writes it and decode_merge.cu reads it.
__host__ __device__ constexpr int decode_set_floats(int DP) { return kDecodeRows * (DP + 3); }

struct KvCache {
  int B, Hkv, D, DP, capacity, capPad;
  bool vInt8;  // V as INT8 per token (vi, vs) instead of f16 (vh)
  int8_t* ki;
  uint16_t* vh;
  int8_t* vi;
  float* vs;
  float* ks;
  float* mean;
  float* raw;
  float* kpart;
  float* next;
};

// Byte offsets of the regions from the base; the total is the allocation's size. Regions are 256-byte aligned.
struct KvRegions {
  uint64_t ki, vh, vi, vs, ks, mean, raw, kpart, next, total;
};

inline KvRegions kv_regions(int B, int Hkv, int DP, int capacity, bool vInt8) {
  const uint64_t heads = uint64_t(B) * Hkv, capPad = uint64_t(round_up(capacity, kKBlock));
  uint64_t at = 0;
  auto region = [&](uint64_t bytes) {
    const uint64_t start = at;
    at = (at + bytes + 255) / 256 * 256;
    return start;
  };
  KvRegions r{};
  r.ki = region(heads * capPad * DP);
  r.vh = region(vInt8 ? 0 : heads * capPad * DP * 2);
  r.vi = region(vInt8 ? heads * capPad * DP : 0);
  r.vs = region(vInt8 ? heads * capPad * 4 : 0);
  r.ks = region(heads * (capPad / kKBlock) * 4);
  r.mean = region(heads * DP * 4);
  r.raw = region(heads * kKBlock * DP * 4);
  r.kpart = region(heads * kMaxMeanChunksKv * DP * 4);
  r.next = region(heads * DP * 4);
  r.total = at;
  return r;
}

inline KvCache kv_cache_at(uint64_t base, int B, int Hkv, int D, int DP, int capacity, bool vInt8) {
  const KvRegions r = kv_regions(B, Hkv, DP, capacity, vInt8);
  char* p = reinterpret_cast<char*>(static_cast<uintptr_t>(base));
  KvCache c{};
  c.B = B;
  c.Hkv = Hkv;
  c.D = D;
  c.DP = DP;
  c.capacity = capacity;
  c.capPad = int(round_up(capacity, kKBlock));
  c.vInt8 = vInt8;
  c.ki = reinterpret_cast<int8_t*>(p + r.ki);
  c.vh = vInt8 ? nullptr : reinterpret_cast<uint16_t*>(p + r.vh);
  c.vi = vInt8 ? reinterpret_cast<int8_t*>(p + r.vi) : nullptr;
  c.vs = vInt8 ? reinterpret_cast<float*>(p + r.vs) : nullptr;
  c.ks = reinterpret_cast<float*>(p + r.ks);
  c.mean = reinterpret_cast<float*>(p + r.mean);
  c.raw = reinterpret_cast<float*>(p + r.raw);
  c.kpart = reinterpret_cast<float*>(p + r.kpart);
  c.next = reinterpret_cast<float*>(p + r.next);
  return c;
}

// kv_append.cu: appends n rows of k and v (layout and strides in the refs, rows 0..n of each (b, kv head)) after the
// cache's `length` rows. With `firstMean` (first append, smoothing on) the mean of these rows is taken first.
cudaError_t launch_kv_append(const KvCache& c, const TensorRef& k, const TensorRef& v, int length, int n, bool firstMean,
                             cudaStream_t stream);
// kv_append.cu: re-centres the cache on the mean of its dequantized rows and re-quantizes every block (docs/DESIGN.md
// §2, "Decode").
cudaError_t launch_kv_requantize(const KvCache& c, int length, cudaStream_t stream);

// decode_attention.cu: attention of q [B, Hq, Nq, D] against the cache's `length` rows, split over key blocks.
struct DecodeCall {
  TensorRef q, o;
  float* lse;        // f32 [B, Hq, Nq] or null
  float* scratch;    // decode_scratch_bytes() of device memory
  int Hq, Nq, length;
  float smScale;
  bool causal, pvF32;
  bool pdl;  // launch as a programmatic dependent of the previous kernel (compute capability 9.0 and later)
};
uint64_t decode_scratch_bytes(const KvCache& c, int Hq, int Nq, int sms);
int decode_smem_bytes(int DP, bool vInt8);
cudaError_t launch_decode_attention(const KvCache& c, const DecodeCall& call, int sms, cudaStream_t stream);
// decode_merge.cu: merges a split call's partials (decode_attention.cu launches it after the attention kernel).
cudaError_t launch_decode_merge(const KvCache& c, const DecodeCall& call, int splits, int groups, int groupsPerHead, cudaStream_t stream);

}  // namespace sa
