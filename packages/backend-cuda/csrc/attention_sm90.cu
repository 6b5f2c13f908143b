// attention_sm90.cu — SageAttention's main kernel for Hopper (sm_90a, head dims 64 and 128), docs/DESIGN.md §2
// steps 3–7, on the pre-pass's Hopper layout (hopper_layout.h).
//
// A work item = NWG warpgroups of 64 query rows each (a warpgroup's rows lie in one Q quantization block) of one
// (sequence, query head), walking K/V tiles of 128 keys (two K quantization blocks):
//   S  = Qi · Kiᵀ         wgmma s8 m64n128k32, both operands from shared memory, exact int32 sums
//   online softmax        in exp2, the int32 logits scaled by sQ·sK inside exp2's argument: one sQ per warpgroup
//                         and one sK per 64 keys; or (THREAD: "thread") an sQ per row and the sK of the lane's group
//                         in each 64-key span (k_thread_group), so that a thread still has one scale per row and
//                         span; or (FINE: "warp" and "row") an sQ per row and an sK per 16 keys, read through the
//                         workspace's shifts (16 keys under one sK at "warp"), applied to the logits in place
//   O += P·V              wgmma f16 m64nDk16, P from registers (the S accumulator layout is the A fragment layout),
//                         V N-major in shared memory (rows of keys, as stored); f16 sums within each 64-key block,
//                         then f32 (or f32 only); or ("int8" P·V) P as UINT8 against the row's largest logit of the
//                         tile (255 steps), times V as INT8 per channel, wgmma u8·s8 m64nDk32 with V K-major (channel
//                         rows of 128 keys, quantized and laid out by v_quantize.cu): the tile's exact int32 sums, times
//                         the row's P step, join O in f32; V's channel scales multiply O once, at the end; or
//                         ("fp8" P·V) 448·P as e4m3 against the row's exact max, times V as e4m3 per channel (the
//                         same K-major layout), wgmma e4m3 m64nDk32 into f32 accumulators of the tile's own, which
//                         join O in f32 (two levels: Hopper's FP8 MMA adds with fewer bits than f32); the rows' sums
//                         of the e4m3 P come from the tensor cores as well (P times a block of e4m3 ones)
// Without a causal mask the grid is one CTA per SM and each CTA takes every gridDim-th item (items of one head are
// adjacent, so the CTAs running at once share K/V in L2); the next item's Q (two Q buffers) and first K/V tiles load
// while the current item finishes and stores its output, so the per-item start-up is hidden. Causal items differ in
// length, so there every item is its own CTA, the heaviest rows first (in groups of heads: work_order.h).
// Loads: one thread issues one bulk copy per Q/K tile (the pre-pass stored them in wgmma's swizzled order) and one
// tensor copy per 64 channels of V (from the caller's f16 V where it can, else the pre-pass's f16 rows; the copy
// engine applies the 128-byte swizzle) into a ring of kStages stages; a `full` mbarrier per stage counts the bytes
// in, an `empty` one the warps done with it. That thread is thread 0 of the first consumer warpgroup, which refills a
// stage while the tensor cores run the next tile's Q·Kᵀ, or (D = 128 with f16 or e4m3 P, kProducer128) the first of a
// fourth, producer warpgroup that does nothing else and hands its registers to the consumers.
// f32 sums at D = 128 (kOverlapPv) issue the previous tile's P·V together with this tile's Q·Kᵀ and wait for it only
// after this tile's softmax, so the exponentials of one tile run beside the P·V of the one before; "fp8" at D = 128
// (kOverlapFp8) does the same in two halves of the channels, one beside each half of the softmax.
// The ring runs on across items; no warpgroup waits on memory in the steady state, and the warpgroups drift apart by
// up to a tile: one's softmax overlaps another's matrix work.
// Lane ownership: warp w of a warpgroup holds rows 16w + lane/4 and +8, and columns 8j + 2·(lane%4) + {0, 1}.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <algorithm>
#include <type_traits>
#include "hopper.cuh"
#include "dependent_launch.cuh"
#include "hopper_layout.h"
#include "epilogue.cuh"
#include "kernels.h"
#include "quantize.cuh"
#include "work_order.h"

namespace sa {
namespace {

// Knobs (NVIDIA H200; NOTES.md has the measurements behind them):
//   kStages         3    K/V ring depth in 128-key units at D = 128 (48 KB a stage; 4 measured no faster)
//   kStages64       4    the same at D = 64 (3 measured 8 % slower once the producer's code was in the kernel)
//   kKeys128        128  keys per tile at D = 128 (64, with S in 32 registers and three warpgroups, measured the same)
//   kWg64           3    warpgroups per CTA at D = 64 (the softmax, not the tensor cores, is the limit there, and a
//                        third warpgroup hides more of it); D = 128 has two consumer warpgroups
//   kCausalL2Bytes  32 MiB  causal CTAs take their items in groups of heads whose K/V fit in this many bytes,
//                        heaviest first within a group (work_order.h), so the CTAs running at once share K/V in L2
//                        (FA3's budget too, of the 50 MiB); 0 is one group, heaviest first across all heads, which
//                        left causal D128 N16K a quarter below the non-causal rate, reading K/V from DRAM
//   kProducer128    true D = 128 with f16 or e4m3 P: a fourth warpgroup issues every load and gives its registers to the
//                        two consumer warpgroups (24 / 240 a thread), which then never wait on each other's pace;
//                        "int8" P·V measured slower with it, so it keeps thread 0 as its loader
//   kSplitPv        true D = 128, f16-block sums: P·V in two halves, the first on the tensor cores while the
//                        second half's exponentials are computed
//   kOverlapPv      true D = 128, f32 sums, with the producer: tile it − 1's P·V on the tensor cores beside tile
//                        it's softmax (+6 % over the producer with split halves)
//   kOverlapFp8     true D = 128, "fp8", the default granularity: the same, the previous tile's P·V in two halves of
//                        the channels (its own f32 sums take 32 registers at a time; all 64 at once spilled)
//   kLazyLog2       8    f32 sums and "int8" P·V: a row keeps its max until a tile's exceeds it by more than
//                        kLazyLog2 (base 2; 0: always moves), so most tiles leave O and l unscaled; P then reaches
//                        2^kLazyLog2, which f16 holds and f32 sums add as exactly. f16-block sums keep the exact max:
//                        a 64-key f16 partial of P·V would overflow at |V| above 65504 / (64 · 2^kLazyLog2)
constexpr int kStages = 3;
constexpr int kStages64 = 4;
constexpr int kKeys128 = 128;
constexpr int kWg64 = 3;
constexpr int64_t kCausalL2Bytes = int64_t(32) << 20;
constexpr bool kProducer128 = true;
constexpr bool kSplitPv = true;
constexpr bool kOverlapPv = true;
constexpr bool kOverlapFp8 = true;
constexpr float kLazyLog2 = 8.f;

// The magic-number conversion: the f32 with the bits of x + kMagicBits is kMagic + x, exactly for |x| < 2²²; the
// int32 logits are at most 127²·128 in magnitude.
constexpr int32_t kMagicBits = 0x4B400000;
constexpr float kMagic = 12582912.f;  // 1.5·2²³
// "int8" P·V: P·255·2⁻²⁴ = exp2(logit − max + log2 255 − 24), for u8x4_from_scaled.
constexpr float kLog2Of255 = 7.99435343685885793f, kU8Shift = 24.f;
static_assert(kU8Max == 255, "kLog2Of255 is log2 of core's U8_MAX");
// "fp8" P·V: 448·P = exp2(logit − max + log2 448).
constexpr float kLog2E4m3Max = 8.80735492205760410f;
static_assert(kE4m3Max == 448.f, "kLog2E4m3Max is log2 of core's E4M3_MAX");
template <int DP>
constexpr int tile_keys() { return DP == 128 ? kKeys128 : kHopperKeys; }
template <int DP>
constexpr int warpgroups() { return DP == 64 ? kWg64 : tile_keys<DP>() == 64 ? 3 : 2; }
template <int DP>
constexpr int stages() { return DP == 64 ? kStages64 : kStages; }
// P·V modes whose V is a byte per value, K-major (v_quantize.cu's tiles): "int8" and "fp8".
constexpr bool byte_v(PvMode pv) { return pv == kPvInt8 || pv == kPvFp8; }
template <int DP, PvMode PV>
constexpr bool producer_warp() { return kProducer128 && DP == 128 && PV != kPvInt8; }
template <int DP, PvMode PV>
constexpr int threads() { return 128 * warpgroups<DP>() + (producer_warp<DP, PV>() ? 128 : 0); }

template <int DP, PvMode PV>
struct Smem {
  static constexpr bool kV8 = byte_v(PV);
  static constexpr int kRows = 64 * warpgroups<DP>();  // query rows per CTA
  static constexpr int kQ = kRows * DP;    // int8 [kRows][DP]
  static constexpr int kBN = tile_keys<DP>();
  static constexpr int kK = kBN * DP;      // int8 [kBN keys][DP]
  static constexpr int kVBox = kBN * 128;  // f16 [kBN keys][64 channels], one tensor-map box
  static constexpr int kV = kV8 ? DP * kBN : DP / 64 * kVBox;  // or bytes [DP channels][kBN keys]
  static constexpr int kStage = kK + kV;
  static constexpr int kStages = stages<DP>() * (kHopperKeys / kBN);  // the same bytes in flight for either tile
  // 2 + 2 + 2·kStages mbarriers, then 4 ints (the next V tile's coordinates), then 16 bytes (a Cursor), then
  // ("int8", "fp8") 256 bytes of ones (INT8 or e4m3): the B operand that sums P's rows on the tensor cores
  static constexpr int kBarriers = 2 * kQ + kStages * kStage;
  static constexpr int kOnes = kBarriers + 8 * (4 + 2 * kStages) + 32, kOnesBytes = kV8 ? 256 : 0;
  static constexpr int kBytes = kOnes + kOnesBytes + 1024;  // + slack to align the base to 1024
};

// Where thread 0's loads stand: the item being loaded, its tiles left, the next tile's K row.
struct Cursor {
  int64_t kRow;
  int index, left;
};

// One work item: query rows r0.. of head h of sequence s (sq), and the K/V tiles they see.
struct Item {
  Sequence sq;
  int s, h, r0, tiles;
};

// Item `index` of the grid's list: without a causal mask head by head (the Q blocks of a head adjacent), with one
// the heaviest Q blocks of every head first (the CTAs take them in work_order.h's order). False when the rows lie
// past the sequence (varlen padding).
template <int ROWS, int KEYS>
__device__ __forceinline__ bool work_item(const Geometry& g, int index, int qBlocks, bool causal, Item& it) {
  const int heads = g.S * g.Hq;
  const int bh = causal ? index % heads : index / qBlocks;
  const int qb = causal ? qBlocks - 1 - index / heads : index % qBlocks;
  it.s = bh / g.Hq;
  it.sq = sequence(g, it.s);
  it.h = bh % g.Hq;
  it.r0 = qb * ROWS;
  if (it.r0 >= it.sq.nq) return false;
  const int lastRow = min(it.sq.nq, it.r0 + ROWS) - 1;
  const int keyEnd = causal ? max(0, min(it.sq.nk, lastRow + it.sq.nk - it.sq.nq + 1)) : it.sq.nk;
  it.tiles = int(ceil_div(keyEnd, KEYS));
  return true;
}

template <int DP, PvMode PV, bool FINE, bool THREAD>
__global__ void __launch_bounds__(threads<DP, PV>(), 1)
    attention_sm90_kernel(Geometry g, Workspace w, TensorRef o, float* lse, bool causal, int items, int qBlocks,
                          int causalGroup, const __grid_constant__ CUtensorMap vMap, bool vDirect) {
  // PV8: "int8" P·V. FP8: "fp8", P as e4m3 of 448·P against the row's exact max (the factor is on l too, and
  // cancels), each tile's products summed by the tensor cores into f32 accumulators of their own, which join O in f32
  // (core's two levels). V8: either (V a byte per value, its channel scales applied at the end).
  constexpr bool PV8 = PV == kPvInt8, PV_F32 = PV == kPvF32, FP8 = PV == kPvFp8, V8 = byte_v(PV);
  static_assert(!(FINE && THREAD), "one granularity");
  constexpr bool ROW_Q = FINE || THREAD;  // an sQ per query row
  // How the default granularity takes its int32 logits to f32: the magic-number IADD, its FADD folded into exp2's
  // FFMA (MAGIC), or an I2F, which shares the XU pipe with the exp2s. MAGIC where it measured faster: f32 sums at
  // both head dims, f16 sums at D = 64 (NOTES.md). Not at THREAD with f32 sums at D = 64: its per-scale offsets
  // (kMagic·s for four sQ·sK a tile) spilled there, 168 registers a thread.
  constexpr bool MAGIC = !FINE && !PV8 && (PV_F32 || FP8 || DP == 64) && !(THREAD && PV_F32 && DP == 64);
  // OVERLAP: the previous tile's P·V beside this tile's softmax. SPLIT: P·V in two halves of the tile, the first
  // half's on the tensor cores while the second half's exponentials are computed.
  constexpr bool OVERLAP = PV_F32 && kOverlapPv && DP == 128 && producer_warp<DP, PV>();
  static_assert(!producer_warp<DP, PV>() || warpgroups<DP>() == 2, "setmaxnreg's 24 + 2 × 240 registers a thread assume two consumer warpgroups");
  // OVERLAP8: the same for "fp8", whose tile sums take registers of their own (all 64 beside O's and S's spilled 284
  // bytes): the previous tile's P·V in two halves of the channels, the first beside the softmax's first row, the
  // second beside its second, so 32 are live at a time. Not at the finer granularities: their scales' registers made
  // it spill 8 bytes.
  constexpr bool OVERLAP8 = FP8 && kOverlapFp8 && DP == 128 && producer_warp<DP, PV>() && !ROW_Q;
  constexpr bool SPLIT = !V8 && kSplitPv && DP == 128 && !OVERLAP;
  // Not FP8: a stale max lets P reach 2^kLazyLog2, past what 448·P may be (e4m3's largest value).
  constexpr bool LAZY = kLazyLog2 > 0.f && (PV_F32 || PV8);
  using L = Smem<DP, PV>;
  static_assert(!V8 || L::kBN == kPBlock, "8-bit P·V: P's scale spans one tile (core's P_BLOCK), v_quantize.cu's tiles are 128 keys");
  constexpr int kWarps = 4 * warpgroups<DP>();
  constexpr int kBN = L::kBN, kBlocks = kBN / kKBlock;  // K quantization blocks per tile
  constexpr int kChunks = kBN / 8;                      // n8 chunks of S per row pair
  // K scales per tile (a thread's, at THREAD), their keys
  constexpr int kGroupKeys = FINE ? kKRowBlock : THREAD ? kKThreadSpan : kKBlock, kGroups = kBN / kGroupKeys;
  const int kShift = FINE ? g.kShift : kKBlockShift;
  constexpr uint64_t kStep = (16 * 128) >> 4;  // a 16-key k-step of V in a descriptor: 16 rows of 128 bytes
  constexpr int ONUM = DP / 2;       // f32 accumulators of O per thread (64 rows × DP over 128 threads)
  extern __shared__ char smemRaw[];
  char* smem = smemRaw + ((1024 - (smem_addr(smemRaw) & 1023)) & 1023);  // swizzle atoms need 1024-byte alignment
  uint64_t* qFull = reinterpret_cast<uint64_t*>(smem + L::kBarriers);  // [2], one per Q buffer
  uint64_t* qEmpty = qFull + 2;                                          // [2]
  uint64_t* full = qEmpty + 2;
  uint64_t* empty = full + L::kStages;
  // The V coordinates of the next tile (row, kv head, batch), kept by thread 0 alone in shared memory: registers are
  // short.
  int* vAt = reinterpret_cast<int*>(empty + L::kStages);
  auto qBuffer = [&](int i) { return smem + i * L::kQ; };
  auto stageK = [&](int i) { return smem + 2 * L::kQ + i * L::kStage; };
  auto stageV = [&](int i) { return smem + 2 * L::kQ + i * L::kStage + L::kK; };
  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
  // The CTA's first item: blockIdx.x (then every gridDim-th), or, causal with kCausalL2Bytes (one item per CTA), the
  // item at place blockIdx.x of work_order.h's order, which is the order the hardware starts CTAs in, near enough.
  const int firstIndex = kCausalL2Bytes > 0 && causal
                             ? causal_item_index(int(blockIdx.x), g.S * g.Hq, qBlocks, causalGroup, g.group)
                             : int(blockIdx.x);

  // Thread 0 loads: the Q rows of an item (they exist up to the sequence's 128-row padding: copy no further), and
  // K/V tiles in the order the CTA consumes them, across items (`next`: the item and tile to load next).
  auto q_bytes = [&](const Item& it) { return uint32_t(min(int64_t(L::kRows), round_up(it.sq.nq, kQBlock) - it.r0)) * DP; };
  auto load_q = [&](const Item& it, int buffer) {
    const char* qg = reinterpret_cast<const char*>(w.qi + (int64_t(it.h) * g.rowsQ + it.sq.qRow + it.r0) * DP);
    mbar_expect_bytes(&qFull[buffer], q_bytes(it));
    bulk_copy(qBuffer(buffer), qg, q_bytes(it), &qFull[buffer]);
  };
  // The next item of this CTA after `index` that has rows (items past the end: index ≥ items).
  auto next_item = [&](int index, Item& it) {
    for (index += gridDim.x; index < items; index += gridDim.x)
      if (work_item<L::kRows, kBN>(g, index, qBlocks, causal, it)) return index;
    return items;
  };
  // The cursor is in registers (every thread holds it), except in the FINE and THREAD kernels at D = 64: three
  // warpgroups leave 168 registers a thread, and there it spilled. Kept in shared memory in the others, it made them
  // 5 % slower (NOTES.md). THREAD with f32 sums keeps it in registers: in shared memory it spilled more there.
  constexpr bool kCursorInSmem = DP == 64 && (FINE || (THREAD && !PV_F32));
  Cursor own{0, firstIndex - int(gridDim.x), 0};
  Cursor& cursor = kCursorInSmem ? *reinterpret_cast<Cursor*>(vAt + 4) : own;
  if (kCursorInSmem && tid == 0) cursor = own;
  int& nextIndex = cursor.index;
  int& nextLeft = cursor.left;
  int64_t& nextRow = cursor.kRow;
  // An item's first K row (kv head's rows, then the sequence's), and its first V tile's coordinates: V straight from
  // the caller's tensor (token, kv head, batch), or the pre-pass's f16 rows (row, kv head).
  auto k_row = [&](const Item& it) { return int64_t(it.h / g.group) * g.rowsK + it.sq.kRow; };
  auto v_origin = [&](const Item& it, int* v) {
    v[0] = vDirect ? int(it.sq.k0) : int(it.sq.kRow);
    v[1] = it.h / g.group;
    v[2] = vDirect ? it.sq.b : 0;
  };
  auto advance = [&]() {  // to the next tile that exists, across items
    while (nextIndex < items && nextLeft == 0) {
      Item it;
      nextIndex = next_item(nextIndex, it);
      if (nextIndex < items) {
        nextLeft = it.tiles;
        nextRow = k_row(it);
        v_origin(it, vAt);
      }
    }
  };
  // One K/V tile into stage st: K rows from kRow, V from (v0 token or row, v1 kv head, v2 batch).
  auto copy_tile = [&](int st, int64_t kRow, int v0, int v1, int v2) {
    mbar_expect_bytes(&full[st], L::kStage);
    bulk_copy(stageK(st), reinterpret_cast<const char*>(w.ki) + kRow * DP, L::kK, &full[st]);
    if constexpr (V8) {
      bulk_copy(stageV(st), reinterpret_cast<const char*>(w.vi) + kRow * DP, L::kV, &full[st]);
    } else {
#pragma unroll
      for (int c = 0; c < DP / 64; c++) tensor_copy_4d(stageV(st) + c * L::kVBox, &vMap, c * 64, v0, v1, v2, &full[st]);
    }
  };
  auto load_tile = [&](int st) {
    copy_tile(st, nextRow, vAt[0], vAt[1], vAt[2]);
    vAt[0] += kBN;
    nextRow += kBN;
    nextLeft--;
    advance();
  };

  // The ones block: wgmma reads shared memory through the async proxy, so the writes are fenced.
  if constexpr (V8) {
    if (tid < L::kOnesBytes / 4) reinterpret_cast<uint32_t*>(smem + L::kOnes)[tid] = PV8 ? 0x01010101u : 0x38383838u;  // 1 in e4m3
    fence_proxy_async();
  }
  if (tid == 0) {
    for (int i = 0; i < 2; i++) {
      mbar_init(&qFull[i], 1);
      mbar_init(&qEmpty[i], kWarps);
    }
    for (int i = 0; i < L::kStages; i++) {
      mbar_init(&full[i], 1);
      mbar_init(&empty[i], kWarps);
    }
    mbar_fence_init();
  }
  __syncthreads();
  // Launched as a programmatic dependent of the pre-pass: everything above overlapped its tail; its output is read
  // from here on.
  dependent_wait();
  dependent_release();
  if constexpr (producer_warp<DP, PV>()) {
    // The producer warp's first lane loads every item's Q and K/V tiles in the order the CTA consumes them, waiting
    // only for the stage (or Q buffer) to be free; the consumer warpgroups never wait on each other's pace.
    if (tid >= 128 * warpgroups<DP>()) {
      setmaxnreg_dec<24>();
      if (tid == 128 * warpgroups<DP>()) {
        int issued = 0, n = 0;
        Item it;
        for (int index = next_item(firstIndex - int(gridDim.x), it); index < items; index = next_item(index, it), n++) {
          if (n >= 2) mbar_wait(&qEmpty[n & 1], ((n - 2) >> 1) & 1);
          load_q(it, n & 1);
          const int64_t kRow = k_row(it);
          int v[3];
          v_origin(it, v);
          for (int t = 0; t < it.tiles; t++, issued++) {
            const int st = issued % L::kStages;
            if (issued >= L::kStages) mbar_wait(&empty[st], ((issued - L::kStages) / L::kStages) & 1);
            copy_tile(st, kRow + int64_t(t) * kBN, v[0] + t * kBN, v[1], v[2]);
          }
        }
      }
      return;
    }
    setmaxnreg_inc<240>();
  } else if (tid == 0) {
    Item it;
    const int first = next_item(firstIndex - int(gridDim.x), it);
    if (first < items) {
      load_q(it, 0);
      Item second;
      if (next_item(first, second) < items) load_q(second, 1);
    }
    advance();
    for (int i = 0; i < L::kStages && nextIndex < items; i++) load_tile(i);
  }

  int consumed = 0;  // K/V tiles this CTA has consumed, across items: the ring position
  int done = 0;      // items this CTA has finished: the Q buffer is done % 2
  Item item;
  for (int index = next_item(firstIndex - int(gridDim.x), item); index < items; index = next_item(index, item), done++) {
    const int qb = done & 1;
    if (!producer_warp<DP, PV>() && tid == 0 && done >= 1) {
      // Q of the item after this one goes into the buffer the previous item used, once every warp is done with it.
      Item after;
      if (next_item(index, after) < items) {
        mbar_wait(&qEmpty[qb ^ 1], ((done - 1) >> 1) & 1);
        load_q(after, qb ^ 1);
      }
    }
    // Only what the K/V loop needs stays live through it; the epilogue takes the item afresh (registers are short).
    const int nk = item.sq.nk, tiles = item.tiles;
    const int shift = nk - item.sq.nq;
    const int wgRow = item.r0 + wg * 64;  // first query row of this warpgroup
    // A warpgroup past the sequence's last Q block computes on whatever is in shared memory and stores nothing.
    float qScale[ROW_Q ? 2 : 1];
#pragma unroll
    for (int hf = 0; hf < (ROW_Q ? 2 : 1); hf++)
      qScale[hf] = w.qs[q_scale_slot(g, item.sq, item.h, min(wgRow + (ROW_Q ? warp * 16 + gq + hf * 8 : 0), item.sq.nq - 1))];
    const float* kScales = w.ks + k_scale_slot(g, item.sq, item.h / g.group, 0);

    float acc[ONUM];
#pragma unroll
    for (int i = 0; i < ONUM; i++) acc[i] = 0.f;
    float rowMax[2] = {-INFINITY, -INFINITY}, rowSum[2] = {0.f, 0.f};
    // OVERLAP: the previous tile's P and stage, for its P·V issued with the next tile's Q·Kᵀ. Before
    // the first tile: P = 0 against the first tile's own V (loaded, so finite where the input is), adding nothing.
    constexpr int kPrevSteps = OVERLAP ? kBN / 16 : OVERLAP8 ? kBN / 32 : 1;
    uint32_t pfPrev[kPrevSteps][4];
    float alphaPrev[2] = {1.f, 1.f};  // OVERLAP8: the previous tile's rescale of O and l, applied as its sums join them
    int stPrev = 0;
#pragma unroll
    for (int kk = 0; kk < kPrevSteps; kk++)
#pragma unroll
      for (int r = 0; r < 4; r++) pfPrev[kk][r] = 0u;
    // OVERLAP: O += the previous tile's P (pfPrev) · V (at vPrev), issued and committed; the caller waits.
    auto issue_prev_pv = [&](uint64_t vPrev) {
      if constexpr (OVERLAP) {
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBN / 16; kk++) wgmma_f16_f32acc_m64n128k16(acc, pfPrev[kk], vPrev + kk * kStep, 1);
        wgmma_commit();
      }
    };
    // V8: the block of ones whose product with P sums P's rows on the tensor cores.
    const uint64_t onesDesc = smem_desc_plain(smem + L::kOnes, 128, 256);
    // OVERLAP8: half `half` of the previous tile's P·V (channels 64·half …, V K-major at vPrev8) into part, with (half
    // 0) its rows' sums, issued and committed; then, waited for, joining O and l in their rows' previous frame.
    auto issue_prev_half = [&](uint64_t vPrev8, int half, float (&part)[ONUM / 2], float (&sums)[4]) {
      if constexpr (OVERLAP8) {
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBN / 32; kk++) {
          wgmma_e4m3_m64n64k32(part, pfPrev[kk], vPrev8 + half * ((64 * kBN) >> 4) + 2 * kk, kk);
          if (half == 0) wgmma_e4m3_m64n8k32(sums, pfPrev[kk], onesDesc, kk);
        }
        wgmma_commit();
      }
    };
    auto join_half = [&](int half, const float (&part)[ONUM / 2], const float (&sums)[4]) {
#pragma unroll
      for (int i = 0; i < ONUM / 2; i++) acc[half * ONUM / 2 + i] = fmaf(acc[half * ONUM / 2 + i], alphaPrev[(i >> 1) & 1], part[i]);
      if (half == 0) {
        rowSum[0] = fmaf(rowSum[0], alphaPrev[0], sums[0]);
        rowSum[1] = fmaf(rowSum[1], alphaPrev[1], sums[2]);
      }
    };
    const uint64_t qDesc = smem_desc<DP>(qBuffer(qb) + wg * 64 * DP);
    mbar_wait(&qFull[qb], (done >> 1) & 1);

    for (int it = 0; it < tiles; it++, consumed++) {
      const int st = consumed % L::kStages;
      mbar_wait(&full[st], (consumed / L::kStages) & 1);

      // S = Qi · Kiᵀ: DP/32 k-steps of 32 bytes (the descriptor's start address moves 2 × 16 bytes each).
      int32_t si[kBN / 2];
      const uint64_t kDesc = smem_desc<DP>(stageK(st));
      // OVERLAP: the previous tile's V, addressed before any wgmma is issued.
      uint64_t vPrev = smem_desc_n_major(stageV(it == 0 ? st : stPrev), L::kVBox);
      if constexpr (OVERLAP) asm volatile("" : "+l"(vPrev));
      uint64_t vPrev8 = smem_desc<128>(stageV(it == 0 ? st : stPrev));
      if constexpr (OVERLAP8) asm volatile("" : "+l"(vPrev8));
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < DP / 32; ks++) {
        if constexpr (kBN == 128) wgmma_s8_m64n128k32(si, qDesc + 2 * ks, kDesc + 2 * ks, ks);
        else wgmma_s8_m64n64k32(si, qDesc + 2 * ks, kDesc + 2 * ks, ks);
      }
      wgmma_commit();
      // The tile's logit scales: sQ·sK per 64 keys, or (THREAD) the lane's sK per 64-key span, times the row's sQ
      // where used (scale_at; the products kept per tile instead spilled as much at D = 64, NOTES.md), applied in
      // exp2's argument; or (FINE) sK per 16 keys, applied to the logits in place as they are converted to f32 below (so no
      // scale but the row's sQ stays live through the softmax: registers are short), and loaded here, while the
      // tensor cores work, since the conversion waits for them. A group past the sequence's end (its scale never
      // written) is masked anyway, and takes the first group's scale, so that its −inf logits stay −inf.
      const int k0 = it * kBN;
      float sc[kGroups];
      auto load_scales = [&]() {
#pragma unroll
        for (int i = 0; i < kGroups; i++) {
          const int key = k0 + i * kGroupKeys;
          sc[i] = i == 0 || key < nk ? (ROW_Q ? 1.f : qScale[0]) * kScales[THREAD ? k_thread_group(key) + tq : key >> kShift] : sc[0];
        }
      };
      // The scale of group gi's logits in row g + 8·hf (not FINE).
      auto scale_at = [&](int hf, int gi) { return THREAD ? qScale[hf] * sc[gi] : sc[gi]; };
      if constexpr (ROW_Q) load_scales();
      // Refill the stage the previous tile used, once all warps are done with it.
      if (!producer_warp<DP, PV>() && tid == 0 && consumed >= 1 && nextIndex < items) {
        const int prev = (consumed - 1) % L::kStages;
        mbar_wait(&empty[prev], ((consumed - 1) / L::kStages) & 1);
        load_tile(prev);
      }
      float part8[ONUM / 2], sums8[4];  // OVERLAP8: half of the previous tile's sums, in flight
      if constexpr (OVERLAP) {
        // O += P·V of the previous tile (O was rescaled when that tile ended), behind this tile's Q·Kᵀ; waited for
        // after this tile's softmax. No other instruction may write a wgmma's registers between here and that wait.
        issue_prev_pv(vPrev);
      } else if constexpr (OVERLAP8) {
        issue_prev_half(vPrev8, 0, part8, sums8);
      }
      if constexpr (OVERLAP || OVERLAP8) wgmma_wait<1>();
      else wgmma_wait<0>();
      pin(si);

      // Dequantize, mask, online softmax; P packed as f16 A fragments: k-step kk covers keys 16kk..16kk+15, that is
      // n8 chunks 2kk and 2kk+1, rows g (hf = 0) and g + 8 (hf = 1).
      if constexpr (FINE) {
#pragma unroll
        for (int i = 0; i < kBN / 2; i++) {
          // x·s by the magic-number conversion with the scale in its FMA: (2²³·1.5 + x)·s − 2²³·1.5·s, the first
          // term exact for |x| ≤ 127²·128 < 2²², the constant 2²³·1.5·s rounded (≤ 0.375·s: a third of one unit of
          // the integer logit, where INT8 rounding moves it by hundreds); faster than I2F and a multiply (NOTES.md).
          const float s = sc[i / 4 / (kChunks / kGroups)];
          si[i] = __float_as_int(fmaf(__int_as_float(si[i] + kMagicBits), s, -kMagic * s));
        }
      } else if constexpr (!THREAD) {
        load_scales();
      }
      const bool edge = k0 + kBN > nk || (causal && k0 + kBN - 1 > wgRow + shift);
      uint32_t pf[kBN / 16][4];  // P as f16 A fragments, 16 keys a k-step
      uint32_t pu[kBN / 32][4];  // or ("int8" P·V) as UINT8 A fragments, 32 keys a k-step
      float alpha[2], pStep[2];  // O's rescale per row; and the value of one P step (PV8)
      // SPLIT: the logits (as converted, masked) and each row's max, kept for the exponentials after the branch
      float xs[2][2 * kChunks], baseRow[2];
      // P of n8 chunk j's two logits in x (as converted) of row g + 8·hf, against the row's base: the chunk's scale in
      // the FFMA and (MAGIC) kMagic·s taken off with the base (hoisted by the compiler: one per scale).
      auto exp_pair = [&](const float* x, int j, int hf, float base, float& p0, float& p1) {
        const float s = FINE ? qScale[hf] : scale_at(hf, j / (kChunks / kGroups));
        const float off = MAGIC ? fmaf(kMagic, s, base) : base;
        p0 = fast_exp2(fmaf(x[2 * j], s, -off));
        p1 = fast_exp2(fmaf(x[2 * j + 1], s, -off));
      };
      auto softmax = [&](auto edgeTag) {
        constexpr bool EDGE = decltype(edgeTag)::value;
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
          const int row = wgRow + warp * 16 + gq + hf * 8;
          const int limit = causal ? min(nk, row + shift + 1) : nk;
          // int32 → f32 once, exact: an I2F, or (MAGIC) kMagic + the logit, whose kMagic·s the exponentials' FFMA
          // takes off with the row max (rounded once: under one unit of the integer logit times s, the same for
          // every key of a scale). Masked keys become −inf.
          float x[2 * kChunks];
#pragma unroll
          for (int j = 0; j < kChunks; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
              const int32_t q = si[4 * j + 2 * hf + e];
              const float v = FINE ? __int_as_float(q) : MAGIC ? __int_as_float(q + kMagicBits) : __int2float_rn(q);
              x[2 * j + e] = EDGE && k0 + j * 8 + 2 * tq + e >= limit ? -INFINITY : v;
            }
          // The max of each scale's logits (as converted), then scaled (the scales are > 0, so the order holds): one
          // sQ·sK per 64 keys (THREAD: the lane's), or (FINE) the row's sQ over the whole tile.
          constexpr int kMaxGroups = FINE ? 1 : kGroups, kPerGroup = 2 * kChunks / kMaxGroups;
          const int scaleRow = ROW_Q ? hf : 0;
          auto scale_of = [&](int gi) { return FINE ? qScale[scaleRow] : scale_at(scaleRow, gi); };
          auto group_max = [&](int gi) {
            if constexpr (!FINE && !EDGE) {
              // Unmasked integer logits: their max by Hopper's three-input integer max (half the instructions of
              // pairwise f32 maxima; the same value, I2F being exact and increasing here).
              auto at = [&](int i) { const int c = gi * kPerGroup + i; return si[4 * (c >> 1) + 2 * hf + (c & 1)]; };
              int m = at(0);
#pragma unroll
              for (int i = 1; i + 1 < kPerGroup; i += 2) m = __vimax3_s32(m, at(i), at(i + 1));
              if constexpr (kPerGroup % 2 == 0) m = max(m, at(kPerGroup - 1));
              return __int2float_rn(m) * scale_of(gi);
            } else {
              float m = -INFINITY;  // PV8 keeps a NaN (FINE: the logits are scaled already), as below
#pragma unroll
              for (int i = 0; i < kPerGroup; i++) m = PV8 ? fmax_nan(m, x[gi * kPerGroup + i]) : fmaxf(m, x[gi * kPerGroup + i]);
              return MAGIC ? fmaf(m, scale_of(gi), -kMagic * scale_of(gi)) : m * scale_of(gi);
            }
          };
          // PV8 keeps a NaN group max (a NaN block scale): it makes pStep NaN, and so the row's sums, where the
          // integer P would turn the NaN into a finite byte. The other paths carry it in P itself. (At EDGE a masked
          // group's −∞ times a NaN scale is NaN too: a diagonal row next to such a block may come out NaN.)
          float top = group_max(0);
#pragma unroll
          for (int gi = 1; gi < kMaxGroups; gi++) top = PV8 ? fmax_nan(top, group_max(gi)) : fmaxf(top, group_max(gi));
          if constexpr (PV8) {  // the row's max over this tile sets P's step: taken across the quad first
            top = fmax_nan(top, __shfl_xor_sync(0xffffffffu, top, 1));
            top = fmax_nan(top, __shfl_xor_sync(0xffffffffu, top, 2));
          }
          float mx = fmaxf(rowMax[hf], top);
          if constexpr (!PV8) {
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          }
          // LAZY: the stale max stays unless this one is far above it (both are the same across the quad). A row's
          // first visible key always moves it from −inf.
          if constexpr (LAZY) mx = mx > rowMax[hf] + kLazyLog2 ? mx : rowMax[hf];
          // A row that has seen no visible key keeps m = −inf; subtract 0 then so exp2 gives 0, not NaN.
          const float base = mx == -INFINITY ? 0.f : mx;
          alpha[hf] = fast_exp2(rowMax[hf] - base);
          rowMax[hf] = mx;
          if constexpr (PV8) {
            // P·255·2⁻²⁴ against the tile's max: exp2 of logit − (top − log2 255 + 24), in [0, 255·2⁻²⁴]. Where
            // rounding leaves top − sub above log2 255 − 24 (logits in the thousands), sub moves up an ulp, so no P
            // rounds past 255.
            float sub = top == -INFINITY ? 0.f : top - (kLog2Of255 - kU8Shift);
            if (top - sub > kLog2Of255 - kU8Shift) sub = nextafterf(sub, INFINITY);
#pragma unroll
            for (int j = 0; j < kChunks; j += 2) {
              const float s0 = scale_of(j / (kChunks / kGroups)), s1 = scale_of((j + 1) / (kChunks / kGroups));
              const float p0 = fast_exp2(fmaf(x[2 * j], s0, -sub)), p1 = fast_exp2(fmaf(x[2 * j + 1], s0, -sub));
              const float p2 = fast_exp2(fmaf(x[2 * j + 2], s1, -sub)), p3 = fast_exp2(fmaf(x[2 * j + 3], s1, -sub));
              // k-step j/4 covers n8 chunks j..j+3; the fragment's 16-key half (j/2)&1 takes chunks j and j+1, whose
              // keys v_quantize.cu put in this byte order.
              pu[j >> 2][((j >> 1) & 1) * 2 + hf] = u8x4_from_scaled(p0, p1, p2, p3);
            }
            // One step of the integer P: 2^(sub − base − 24). The row's sum is the tensor cores' (below).
            pStep[hf] = top == -INFINITY ? 0.f : fast_exp2(sub - base - kU8Shift);
          } else if constexpr (SPLIT) {
#pragma unroll
            for (int i = 0; i < 2 * kChunks; i++) xs[hf][i] = x[i];
            baseRow[hf] = base;
          } else {
            // FP8: 448·P, against the exact max, so in [0, 448] (the cast saturates the rounding's excess).
            const float pBase = FP8 ? base - kLog2E4m3Max : base;
            float sum = 0.f, even[2];
#pragma unroll
            for (int j = 0; j < kChunks; j++) {
              float p0, p1;
              exp_pair(x, j, hf, pBase, p0, p1);
              sum += p0 + p1;
              if constexpr (OVERLAP || OVERLAP8) {  // P in f32, in S's registers, until the P·V in flight reads none
                si[4 * j + 2 * hf] = __float_as_int(p0);
                si[4 * j + 2 * hf + 1] = __float_as_int(p1);
              } else if constexpr (FP8) {
                // k-step j/4 covers n8 chunks j..j+3; the fragment's 16-key half (j/2)&1 takes chunks j and j+1, whose
                // keys v_quantize.cu put in this byte order (as "int8"'s).
                if (j & 1) pu[j >> 2][((j >> 1) & 1) * 2 + hf] = e4m3x4(even[0], even[1], p0, p1);
                even[0] = p0;
                even[1] = p1;
              } else {
                pf[j >> 1][(j & 1) * 2 + hf] = pack_half2(p0, p1);
              }
            }
            // FP8: the tile's sum, from the tensor cores, joins after its P·V (OVERLAP8: with the rescale, then).
            if constexpr (!FP8) rowSum[hf] = rowSum[hf] * alpha[hf] + sum;
            else if constexpr (!OVERLAP8) rowSum[hf] *= alpha[hf];
          }
          // OVERLAP8: the first half of the previous tile's P·V is done; it joins O, and the second half goes in.
          if constexpr (OVERLAP8) {
            if (hf == 0) {
              wgmma_wait<0>();
              pin(part8);
              pin(sums8);
              if (it > 0) join_half(0, part8, sums8);
              issue_prev_half(vPrev8, 1, part8, sums8);
            }
          }
        }
      };
      if (edge) softmax(std::true_type{});
      else softmax(std::false_type{});
      // (V8 rescales O as the tile's sums join it, below.)
      // At the first tile O is all zeros, whatever alpha is.
      if (!V8 && !OVERLAP && it > 0 && __any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
        for (int j = 0; j < ONUM / 4; j++) {
          acc[4 * j] *= alpha[0];
          acc[4 * j + 1] *= alpha[0];
          acc[4 * j + 2] *= alpha[1];
          acc[4 * j + 3] *= alpha[1];
        }
      }

      // O += P · V: 16-key k-steps, V N-major as the tensor copy left it: a k-step is 16 rows of 128 bytes further on.
      const uint64_t vDesc = smem_desc_n_major(stageV(st), L::kVBox);
      // The exponentials of keys 64·half … 64·half + 63 into pf, and their sums into the row sums.
      auto exps = [&](auto halfTag) {  // half as a type: a run-time index would put pf and xs in local memory
        constexpr int half = decltype(halfTag)::value;
#pragma unroll
        for (int hf = 0; hf < 2; hf++) {
          float sum = 0.f;
#pragma unroll
          for (int j = half * kChunks / 2; j < (half + 1) * kChunks / 2; j++) {
            float p0, p1;
            exp_pair(xs[hf], j, hf, baseRow[hf], p0, p1);
            sum += p0 + p1;
            pf[j >> 1][(j & 1) * 2 + hf] = pack_half2(p0, p1);
          }
          rowSum[hf] = half == 0 ? rowSum[hf] * alpha[hf] + sum : rowSum[hf] + sum;
        }
      };
      if constexpr (OVERLAP8) {
        // The previous tile's second half done, it joins O; this tile's P becomes the e4m3 A fragments the next one
        // reads (the byte order of the non-overlapped FP8 branch of the softmax).
        wgmma_wait<0>();
        pin(part8);
        if (it > 0 && lane == 0) mbar_arrive(&empty[stPrev]);
        if (it > 0) join_half(1, part8, sums8);
#pragma unroll
        for (int j = 0; j < kChunks; j += 2)
#pragma unroll
          for (int hf = 0; hf < 2; hf++)
            pfPrev[j >> 2][((j >> 1) & 1) * 2 + hf] =
                e4m3x4(__int_as_float(si[4 * j + 2 * hf]), __int_as_float(si[4 * j + 2 * hf + 1]),
                       __int_as_float(si[4 * j + 4 + 2 * hf]), __int_as_float(si[4 * j + 4 + 2 * hf + 1]));
        alphaPrev[0] = alpha[0];
        alphaPrev[1] = alpha[1];
        stPrev = st;
      } else if constexpr (OVERLAP) {
        // The previous P·V done, this tile's P becomes the f16 A fragments the next one reads. (No wgmma register is
        // written while a wgmma is in flight: ptxas serialises every wgmma otherwise, C7513.)
        wgmma_wait<0>(acc);
        if (it > 0 && lane == 0) mbar_arrive(&empty[stPrev]);
#pragma unroll
        for (int j = 0; j < kChunks; j++)
#pragma unroll
          for (int hf = 0; hf < 2; hf++)
            pfPrev[j >> 1][(j & 1) * 2 + hf] = pack_half2(__int_as_float(si[4 * j + 2 * hf]), __int_as_float(si[4 * j + 2 * hf + 1]));
        stPrev = st;
        if (it > 0 && __any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {  // O is 0 at the first tile
#pragma unroll
          for (int i = 0; i < ONUM; i++) acc[i] *= alpha[(i >> 1) & 1];
        }
      } else if constexpr (FP8) {
        // The tile's sums in f32 accumulators of their own (core's two levels), V K-major: a k-step is 32 bytes on.
        // The rows' sums of the e4m3 P (core's l for "fp8": the rounded P's sum) come from the tensor cores too, P
        // times a block of e4m3 ones: registers 0 and 2 hold rows g and g + 8.
        float part[ONUM], sums[4];
        const uint64_t viDesc = smem_desc<128>(stageV(st));
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBN / 32; kk++) {
          if constexpr (DP == 128) wgmma_e4m3_m64n128k32(part, pu[kk], viDesc + 2 * kk, kk);
          else wgmma_e4m3_m64n64k32(part, pu[kk], viDesc + 2 * kk, kk);
          wgmma_e4m3_m64n8k32(sums, pu[kk], onesDesc, kk);
        }
        wgmma_commit();
        wgmma_wait<0>();
        pin(part);
        pin(sums);
        rowSum[0] += sums[0];
        rowSum[1] += sums[2];
#pragma unroll
        for (int i = 0; i < ONUM; i++) acc[i] = fmaf(acc[i], alpha[(i >> 1) & 1], part[i]);
      } else if constexpr (PV8) {
        // The tile's exact int32 sums (≤ 128·255·127 < 2²⁴, so I2F is exact), V K-major: a k-step is 32 bytes on.
        // The rows' sums of the integer P (exact, Σ of the rounded P, as core's oracle defines l for "int8") come from
        // the tensor cores too, P times a block of ones: registers 0 and 2 hold rows g and g + 8.
        int32_t part[ONUM], sums[4];
        const uint64_t viDesc = smem_desc<128>(stageV(st));
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBN / 32; kk++) {
          if constexpr (DP == 128) wgmma_u8s8_m64n128k32(part, pu[kk], viDesc + 2 * kk, kk);
          else wgmma_u8s8_m64n64k32(part, pu[kk], viDesc + 2 * kk, kk);
          wgmma_u8s8_m64n8k32(sums, pu[kk], onesDesc, kk);
        }
        wgmma_commit();
        wgmma_wait<0>();
        pin(part);
        pin(sums);
#pragma unroll
        for (int hf = 0; hf < 2; hf++) rowSum[hf] = fmaf(__int2float_rn(sums[2 * hf]), pStep[hf], rowSum[hf] * alpha[hf]);
        if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
          for (int i = 0; i < ONUM; i++) acc[i] = fmaf(__int2float_rn(part[i]), pStep[(i >> 1) & 1], acc[i] * alpha[(i >> 1) & 1]);
        } else {
#pragma unroll
          for (int i = 0; i < ONUM; i++) acc[i] = fmaf(__int2float_rn(part[i]), pStep[(i >> 1) & 1], acc[i]);
        }
      } else if constexpr (PV_F32 && SPLIT) {
        constexpr int kHalfSteps = kBN / 32;
        auto half_pv = [&](auto halfTag) {
          constexpr int half = decltype(halfTag)::value;
          exps(halfTag);
#pragma unroll
          for (int kk = half * kHalfSteps; kk < (half + 1) * kHalfSteps; kk++) pin(pf[kk]);  // all packed before the fence
          wgmma_fence();
#pragma unroll
          for (int kk = half * kHalfSteps; kk < (half + 1) * kHalfSteps; kk++) {
            const uint64_t d = vDesc + kk * kStep;
            if constexpr (DP == 128) wgmma_f16_f32acc_m64n128k16(acc, pf[kk], d, 1);
            else wgmma_f16_f32acc_m64n64k16(acc, pf[kk], d, 1);
          }
          wgmma_commit();
        };
        half_pv(std::integral_constant<int, 0>{});
        half_pv(std::integral_constant<int, 1>{});
        wgmma_wait<0>();
        pin(acc);
      } else if constexpr (PV_F32) {
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBN / 16; kk++) {
          const uint64_t d = vDesc + kk * kStep;
          if constexpr (DP == 128) wgmma_f16_f32acc_m64n128k16(acc, pf[kk], d, 1);
          else wgmma_f16_f32acc_m64n64k16(acc, pf[kk], d, 1);
        }
        wgmma_commit();
        wgmma_wait<0>();
        pin(acc);
      } else {
        // f16 sums per 64-key block (docs/DESIGN.md §2 step 5), each block into its own partial, then added to O in f32.
        uint32_t part[kBlocks][DP / 4];
        auto block_pv = [&](auto blockTag) {  // the block as a type, as in exps
          constexpr int b = decltype(blockTag)::value;
          if constexpr (SPLIT) {
            exps(blockTag);
#pragma unroll
            for (int kk = 4 * b; kk < 4 * b + 4; kk++) pin(pf[kk]);  // all packed before the fence
            wgmma_fence();
          }
#pragma unroll
          for (int kk = 0; kk < 4; kk++) {
            const uint64_t d = vDesc + (4 * b + kk) * kStep;
            if constexpr (DP == 128) wgmma_f16_f16acc_m64n128k16(part[b], pf[4 * b + kk], d, kk);
            else wgmma_f16_f16acc_m64n64k16(part[b], pf[4 * b + kk], d, kk);
          }
          if constexpr (SPLIT) wgmma_commit();
        };
        if constexpr (!SPLIT) wgmma_fence();
        block_pv(std::integral_constant<int, 0>{});
        if constexpr (kBlocks > 1) block_pv(std::integral_constant<int, 1>{});
        static_assert(kBlocks <= 2, "a tile holds at most two 64-key K blocks");
        if constexpr (!SPLIT) wgmma_commit();
        wgmma_wait<0>();
#pragma unroll
        for (int b = 0; b < kBlocks; b++) pin(part[b]);
#pragma unroll
        for (int b = 0; b < kBlocks; b++)
#pragma unroll
          for (int j = 0; j < DP / 8; j++) {
            const float2 top = __half22float2(*reinterpret_cast<const __half2*>(&part[b][2 * j]));
            const float2 bottom = __half22float2(*reinterpret_cast<const __half2*>(&part[b][2 * j + 1]));
            acc[4 * j] += top.x;
            acc[4 * j + 1] += top.y;
            acc[4 * j + 2] += bottom.x;
            acc[4 * j + 3] += bottom.y;
          }
      }
      if (!OVERLAP && !OVERLAP8 && lane == 0) mbar_arrive(&empty[st]);
    }
    if constexpr (OVERLAP8) {
      // The last tile's P·V, both halves; an item without tiles joins nothing, and O and l are reset.
      float part8[ONUM / 2], sums8[4];
      const uint64_t vLast = smem_desc<128>(stageV(stPrev));
#pragma unroll
      for (int half = 0; half < 2; half++) {
        issue_prev_half(vLast, half, part8, sums8);
        wgmma_wait<0>();
        pin(part8);
        if (half == 0) pin(sums8);
        join_half(half, part8, sums8);
      }
#pragma unroll
      for (int i = 0; i < ONUM; i++) acc[i] = tiles > 0 ? acc[i] : 0.f;
      rowSum[0] = tiles > 0 ? rowSum[0] : 0.f;
      rowSum[1] = tiles > 0 ? rowSum[1] : 0.f;
      if (tiles > 0 && lane == 0) mbar_arrive(&empty[stPrev]);
    }
    if constexpr (OVERLAP) {
      // The last tile's P·V; an item without tiles adds P = 0 against whatever stage 0 holds, and O is reset after.
      issue_prev_pv(smem_desc_n_major(stageV(stPrev), L::kVBox));
      wgmma_wait<0>(acc);
#pragma unroll
      for (int i = 0; i < ONUM; i++) acc[i] = tiles > 0 ? acc[i] : 0.f;
      if (tiles > 0 && lane == 0) mbar_arrive(&empty[stPrev]);
    }

    // O = acc / l, written in o's dtype and strides; the LSE restores the smoothing constant smScale·q·mean(K).
    work_item<L::kRows, kBN>(g, index, qBlocks, causal, item);
    const Sequence sq = item.sq;
    const int h = item.h;
    const float* vScale = w.vs + (int64_t(item.s) * g.Hkv + h / g.group) * DP;  // V8: sV per channel
#pragma unroll
    for (int hf = 0; hf < 2; hf++) {
      // Each thread summed its share of the row; V8's sums came whole from the tensor cores.
      float l = rowSum[hf];
      if constexpr (!V8) {
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
      }
      const int row = wgRow + warp * 16 + gq + hf * 8;
      if (row >= sq.nq) continue;
      const float inv = row_inverse(l);
      const int64_t base = sq.b * o.sb + h * o.sh + int64_t(sq.q0 + row) * o.sn;
#pragma unroll
      for (int j = 0; j < DP / 8; j++) {
        const int d = j * 8 + 2 * tq;
        float o0 = acc[4 * j + 2 * hf] * inv, o1 = acc[4 * j + 2 * hf + 1] * inv;
        if constexpr (V8) {
          // A row that saw no key stays 0 even where a channel's scale is NaN (a NaN in V: every other row NaN).
          o0 *= l > 0.f ? vScale[d] : 0.f;
          o1 *= l > 0.f ? vScale[d + 1] : 0.f;
        }
        store_pair(o, base + d * o.sd, d, g.D, o0, o1);
      }
      if (lse != nullptr && tq == 0) {
        const float qm = w.qm[int64_t(h) * g.rowsQ + sq.qRow + row];
        const float value = row_lse(rowMax[hf], FP8 ? l / kE4m3Max : l, qm);  // FP8's l is Σ 448·P
        lse[(int64_t(sq.b) * g.Hq + h) * g.Nq + sq.q0 + row] = value;
      }
    }
    if (lane == 0) mbar_arrive(&qEmpty[qb]);
  }
}

// SMs of the current device, asked once per device.
cudaError_t multiprocessors(int* count) {
  static int known[64] = {};
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return e;
  if (dev < 64 && known[dev] > 0) {
    *count = known[dev];
    return cudaSuccess;
  }
  e = cudaDeviceGetAttribute(count, cudaDevAttrMultiProcessorCount, dev);
  if (e == cudaSuccess && dev < 64) known[dev] = *count;
  return e;
}

template <int DP, PvMode PV, bool FINE, bool THREAD>
cudaError_t launch(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal, const CUtensorMap& vMap,
                   bool vDirect, cudaStream_t stream) {
  using L = Smem<DP, PV>;
  constexpr int smem = L::kBytes;
  auto kernel = attention_sm90_kernel<DP, PV, FINE, THREAD>;
  static bool configured = false;  // the attribute is per function; setting it twice is harmless
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const int64_t qBlocks = ceil_div(g.maxQ, L::kRows), items = qBlocks * g.S * g.Hq;
  if (items == 0) return cudaSuccess;
  if (items >= (int64_t(1) << 31)) return cudaErrorInvalidConfiguration;
  // One CTA per SM walking items, or (causal) one CTA per item: see the header.
  int64_t ctas = items;
  // K/V bytes per kv head: K as INT8 rows and V as f16 (or byte) rows of the padded head dim.
  const int causalGroup = causal_group_pairs(kCausalL2Bytes, int64_t(g.maxK) * DP * (byte_v(PV) ? 2 : 3), g.S * g.Hq, g.group);
  if (!causal) {
    int sms = 0;
    const cudaError_t e = multiprocessors(&sms);
    if (e != cudaSuccess) return e;
    ctas = std::min<int64_t>(items, sms);
  }
  return launch_dependent(kernel, dim3(unsigned(ctas)), dim3(threads<DP, PV>()), smem, stream, true, g, w, o, lse, causal,
                          int(items), int(qBlocks), causalGroup, vMap, vDirect);
}

}  // namespace

int attention_sm90_smem_bytes(int DP, PvMode pv) {
  auto bytes = [&](auto dp) {
    constexpr int D = decltype(dp)::value;
    switch (pv) {
      case kPvInt8: return Smem<D, kPvInt8>::kBytes;
      case kPvFp8: return Smem<D, kPvFp8>::kBytes;
      default: return Smem<D, kPvF32>::kBytes;  // f16 V: either f16 mode
    }
  };
  return DP == 64 ? bytes(std::integral_constant<int, 64>{}) : bytes(std::integral_constant<int, 128>{});
}

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*, const cuuint64_t*,
                                 const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave, CUtensorMapSwizzle,
                                 CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

bool attention_sm90_v_map(int DP, const VSource& v, CUtensorMap* map) {
  // The library links the runtime statically and not libcuda: the driver's encoder is found once, at first use.
  static const EncodeTiled encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      return EncodeTiled(nullptr);
    return reinterpret_cast<EncodeTiled>(fn);
  }();
  if (encode == nullptr || (DP != 64 && DP != 128)) return false;
  // Boxes of 64 channels (128 bytes, the swizzle's width) × one tile of keys; keys past the tensor read as zeros.
  const cuuint32_t box[4] = {64, cuuint32_t(DP == 64 ? tile_keys<64>() : tile_keys<128>()), 1, 1};
  const cuuint32_t unit[4] = {1, 1, 1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, reinterpret_cast<void*>(static_cast<uintptr_t>(v.ptr)), v.dims, v.strides,
                box, unit, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// The default granularity has its own instantiation, so the finer ones' extra registers never touch it.
template <int DP, PvMode PV>
cudaError_t launch_fine(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal, const CUtensorMap& vMap,
                        bool vDirect, cudaStream_t stream) {
  if (g.kThread) return launch<DP, PV, false, true>(g, w, o, lse, causal, vMap, vDirect, stream);
  return fine_granularity(g) ? launch<DP, PV, true, false>(g, w, o, lse, causal, vMap, vDirect, stream)
                             : launch<DP, PV, false, false>(g, w, o, lse, causal, vMap, vDirect, stream);
}

template <int DP>
cudaError_t launch_pv(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal, PvMode pv, const CUtensorMap& vMap,
                      bool vDirect, cudaStream_t stream) {
  switch (pv) {
    case kPvF16Block: return launch_fine<DP, kPvF16Block>(g, w, o, lse, causal, vMap, vDirect, stream);
    case kPvF32: return launch_fine<DP, kPvF32>(g, w, o, lse, causal, vMap, vDirect, stream);
    case kPvInt8: return launch_fine<DP, kPvInt8>(g, w, o, lse, causal, vMap, vDirect, stream);
    case kPvFp8: return launch_fine<DP, kPvFp8>(g, w, o, lse, causal, vMap, vDirect, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t launch_attention_sm90(const Geometry& g, const Workspace& w, const TensorRef& o, float* lse, bool causal, PvMode pv,
                                  const CUtensorMap& vMap, bool vDirect, cudaStream_t stream) {
  switch (g.DP) {
    case 64: return launch_pv<64>(g, w, o, lse, causal, pv, vMap, vDirect, stream);
    case 128: return launch_pv<128>(g, w, o, lse, causal, pv, vMap, vDirect, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sa
