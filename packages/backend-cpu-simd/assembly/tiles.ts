// Tile geometry and record layouts shared by every kernel (the TypeScript side mirrors them in src/records.ts).
//
// Knobs (2-core AMD EPYC dev VM, Node 20 / V8, H=8 D=64 N=1024, one thread, kernel only):
//   TILE_ROWS 64: query rows per task. 32, 64 and 128 measured within the noise of that shared machine
//                 (±25% run to run); 64 keeps a tile's Q, logits, P and accumulator within L1+L2 at D ≤ 128
//                 and gives 16 tasks per head at N=1024 for the threads to share. Re-measured at N=2048 (kernel
//                 only, one thread, quiet machine): 32, 64 and 128 within 1% of each other (65 GFLOPS). Again on
//                 2026-12-01 (Zen 4 VM, N=2048, one thread, side by side): within 0.5% (51 GOPS).
//   KEY_BLOCK 64: keys per online-softmax step; fixed by Sage's K quantization block and by the
//                 int16 P·V overflow bound (64 · 8191 · 4095 < 2^31).

/** Keys per block: the K quantization block and the online-softmax step. */
export const KEY_BLOCK: i32 = 64;
/** Query rows per task tile (a multiple of 4: the micro-kernels work on 4 rows at once). */
export const TILE_ROWS: i32 = 64;
/** Tokens per Q quantization block. */
export const Q_BLOCK: i32 = 128;
/** P is quantized to [0, P_LEVELS] in the int8 kernel's P·V. */
export const P_LEVELS: f32 = 8191.0;
/** V is quantized to [-V_LEVELS, V_LEVELS] per (key block, channel). */
export const V_LEVELS: f32 = 4095.0;

/** Attention task record: 18 i32 words, one per (sequence, head, query tile). */
export const ATTN_RECORD_BYTES: i32 = 72;
// Field byte offsets inside an attention record.
export const A_Q = 0; // f32 rows [nq][Dp] of this (sequence, head), row 0 of the sequence
export const A_NQ = 4;
export const A_I0 = 8; // first query row of the tile, within the sequence
export const A_ROWS = 12; // rows in the tile (≤ TILE_ROWS)
export const A_K = 16; // int8 kernel: K blocks as i16 pairs; exact kernel: K blocks transposed, f32
export const A_SK = 20; // f32 scale per K block (int8 kernel)
export const A_V = 24; // int8 kernel: V blocks as i16 key pairs; exact kernel: f32 rows [nk][Dp]
export const A_SV = 28; // f32 [blocks][Dp] V scales (int8 kernel)
export const A_NK = 32;
export const A_OUT = 36; // f32 rows [nq][Dp]
export const A_STATS = 40; // f32 [nq][3]: running max (base 2), sum, q·mean(K); 0 when no LSE is asked
export const A_KMEAN = 44; // f32 [Dp] mean of K over the sequence (int8 kernel)
export const A_MASK = 48; // mask element of (row 0, key 0) of this sequence and head; 0 when none
export const A_MASK_KIND = 52; // 0 none, 1 boolean (u8), 2 additive (f32, natural-log units)
export const A_MASK_STRIDE = 56; // mask elements per query row
export const A_CAUSAL = 60; // 1: key j visible to query i iff j ≤ i + nk − nq
export const A_DP = 64; // padded head dim (multiple of 8)
export const A_FOLD = 68; // f32 smScale·log2(e)

/** Key/value preparation record: 10 i32 words, one per (sequence, kv head). */
export const KV_RECORD_BYTES: i32 = 40;
export const P_K = 0; // f32 rows [nk][Dp]
export const P_V = 4; // f32 rows [nk][Dp]
export const P_NK = 8;
export const P_KMEAN = 12; // out: f32 [Dp]
export const P_K_OUT = 16; // out: K blocks (int8: i16 pairs; exact: transposed f32)
export const P_SK = 20; // out: f32 per block
export const P_V_OUT = 24; // out: V blocks as i16 key pairs (int8 kernel)
export const P_SV = 28; // out: f32 [blocks][Dp]
export const P_DP = 32;
export const P_SMOOTH = 36; // 1: subtract the mean of K before quantizing

/** KV-cache record (kv_cache.ts): 14 i32 words, one per (batch entry, kv head) of a cache, for append and requantize. */
export const CACHE_RECORD_BYTES: i32 = 56;
export const C_DP = 0;
export const C_LEN = 4; // rows the head holds before this task
export const C_N = 8; // rows appended (append)
export const C_FIRST = 12; // 1: the first append (sets the mean)
export const C_SMOOTH = 16; // 1: the mean is K's, else 0
export const C_MEAN = 20; // f32 [Dp]
export const C_K = 24; // K blocks, i8 in the int8 kernel's pair layout (one byte a value)
export const C_SK = 28; // f32 per K block
export const C_V = 32; // V blocks, i16 key pairs
export const C_SV = 36; // f32 [blocks][Dp]
export const C_K_RAW = 40; // f32 [64][Dp]: raw K rows of the partial block
export const C_V_RAW = 44; // f32 [64][Dp]: raw V rows of the partial block
export const C_K_IN = 48; // f32 [n][Dp]: K rows to append
export const C_V_IN = 52; // f32 [n][Dp]: V rows to append

/** Decode split record (decode_int8.ts): 16 words, one per (batch entry, kv head, row tile, key-block range). */
export const DECODE_RECORD_BYTES: i32 = 64;
export const D_Q = 0; // f32 rows: row 0 of the tile's first head; heads nq·Dp f32 apart
export const D_NQ = 4;
export const D_I0 = 8;
export const D_NR = 12; // rows per head in the tile
export const D_NH = 16; // heads in the tile (NH·NR ≤ TILE_ROWS)
export const D_K = 20;
export const D_SK = 24;
export const D_V = 28;
export const D_SV = 32;
export const D_NK = 36; // rows in the cache
export const D_KB0 = 40; // first key block of the split
export const D_KB1 = 44; // one past its last
export const D_PART = 48; // the split's partial state
export const D_CAUSAL = 52;
export const D_DP = 56;
export const D_FOLD = 60;

/** Decode merge record: 10 words, one per row tile. */
export const MERGE_RECORD_BYTES: i32 = 40;
export const M_PART = 0; // the tile's first split's partial state; the others follow M_PART_BYTES apart
export const M_SPLITS = 4;
export const M_ROWS = 8;
export const M_OUT = 12; // f32 rows of the tile's output
export const M_STATS = 16; // f32 [rows][3] or 0
export const M_Q = 20; // f32 rows of the tile's queries (for q·mean)
export const M_KMEAN = 24; // f32 [Dp] or 0
export const M_DP = 28;
export const M_PART_BYTES = 32;

/** Scratch bytes one thread needs for head dim Dp (query tile, logits, probabilities, accumulators, row state). */
export function scratchBytesFor(Dp: i32): i32 {
  return TILE_ROWS * Dp * 4 * 2 + TILE_ROWS * KEY_BLOCK * 4 * 2 + TILE_ROWS * 4 * 8 + Dp * 8 + 256;
}

// Byte offsets of the scratch areas, in the order scratchBytesFor counts them (no objects: the kernels allocate nothing).
// @ts-ignore: decorator
@inline export function scratchQ(base: usize): usize { return base; }
// @ts-ignore: decorator
@inline export function scratchO(base: usize, Dp: i32): usize { return base + <usize>(TILE_ROWS * Dp * 4); }
// @ts-ignore: decorator
@inline export function scratchS(base: usize, Dp: i32): usize { return base + <usize>(TILE_ROWS * Dp * 8); }
// @ts-ignore: decorator
@inline export function scratchP(base: usize, Dp: i32): usize { return scratchS(base, Dp) + <usize>(TILE_ROWS * KEY_BLOCK * 4); }
/** Per-row f32 state: sQ, m, l, alpha at row offsets 0, 1, 2, 3 × TILE_ROWS. */
// @ts-ignore: decorator
@inline export function scratchRows(base: usize, Dp: i32): usize { return scratchP(base, Dp) + <usize>(TILE_ROWS * KEY_BLOCK * 4); }
/** Starts a tile's online softmax: m = −∞, l = 0, alpha = 0 for its first `rows` rows (the sQ slot is left alone). */
// @ts-ignore: decorator
@inline export function resetRowState(rowsBase: usize, rows: i32): void {
  for (let r = 0; r < rows; r++) {
    const st = rowsBase + <usize>(r * 4);
    store<f32>(st, -Infinity, TILE_ROWS * 4);
    store<f32>(st, 0, TILE_ROWS * 8);
    store<f32>(st, 0, TILE_ROWS * 12);
  }
}
/** Dp f64 values (channel sums in the K pre-pass). */
// @ts-ignore: decorator
@inline export function scratchF64(base: usize, Dp: i32): usize { return (scratchRows(base, Dp) + <usize>(TILE_ROWS * 4 * 8) + 7) & ~7; }

/** Last key + 1 that query i may see (bottom-right causality), or nk without causality. */
// @ts-ignore: decorator
@inline export function keyLimit(i: i32, nq: i32, nk: i32, causal: bool): i32 {
  if (!causal) return nk;
  const lim = i + (nk - nq) + 1;
  return lim < 0 ? 0 : lim > nk ? nk : lim;
}
