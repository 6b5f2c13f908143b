// The module's exports: one function per task kind, called as f(table, index, scratch) by every thread
// (see src/pool.ts): `table` holds one fixed-size record per task (layouts in tiles.ts), `scratch` is the
// calling thread's own working memory. Tasks of one kind never write the same bytes, so they run in any order
// on any thread with identical results. The kernels allocate nothing and keep no state between calls.

import {
  ATTN_RECORD_BYTES, CACHE_RECORD_BYTES, DECODE_RECORD_BYTES, KV_RECORD_BYTES, MERGE_RECORD_BYTES, P_DP, P_K, P_KMEAN, P_K_OUT, P_NK, P_S_K, P_SMOOTH,
  P_S_V, P_V, P_V_OUT, TILE_ROWS,
  scratchBytesFor, scratchF64,
} from "./tiles";
import { attentionInt8 } from "./attention_int8";
import { attentionF32 } from "./attention_f32";
import { channelMean, quantizeKeys } from "./quantize_k";
import { quantizeValues } from "./quantize_v";
import { quantizeQueryTile } from "./quantize_q";
import { transposeKeys } from "./transpose_k";
import { appendRows, requantizeRows } from "./kv_cache";
import { decodeMerge, decodeSplitInt8 } from "./decode_int8";

/** Smooths and quantizes K, quantizes V, for one (sequence, kv head). */
export function prepareKvInt8(table: usize, t: i32, scratch: usize): void {
  const rec = table + <usize>(t * KV_RECORD_BYTES);
  const k = load<usize>(rec, P_K), nk = load<i32>(rec, P_NK), Dp = load<i32>(rec, P_DP), mean = load<usize>(rec, P_KMEAN);
  if (load<i32>(rec, P_SMOOTH) != 0) channelMean(k, nk, Dp, scratchF64(scratch, Dp), mean);
  else memory.fill(mean, 0, <usize>(Dp * 4));
  quantizeKeys(k, nk, Dp, mean, load<usize>(rec, P_K_OUT), load<usize>(rec, P_S_K));
  quantizeValues(load<usize>(rec, P_V), nk, Dp, load<usize>(rec, P_V_OUT), load<usize>(rec, P_S_V), scratchF64(scratch, Dp)); // after the mean: its sums are spent
}

/** Lays K out in transposed blocks for the exact kernel, for one (sequence, kv head). */
export function prepareKvF32(table: usize, t: i32, scratch: usize): void {
  const rec = table + <usize>(t * KV_RECORD_BYTES);
  transposeKeys(load<usize>(rec, P_K), load<i32>(rec, P_NK), load<i32>(rec, P_DP), load<usize>(rec, P_K_OUT));
}

/** SageAttention for one (sequence, head, query tile). */
export function attendInt8(table: usize, t: i32, scratch: usize): void {
  attentionInt8(table + <usize>(t * ATTN_RECORD_BYTES), scratch);
}

/** Exact attention for one (sequence, head, query tile). */
export function attendF32(table: usize, t: i32, scratch: usize): void {
  attentionF32(table + <usize>(t * ATTN_RECORD_BYTES), scratch);
}

/** Appends rows to one (batch entry, kv head) of a KV cache. */
export function cacheAppend(table: usize, t: i32, scratch: usize): void {
  appendRows(table + <usize>(t * CACHE_RECORD_BYTES), scratch);
}

/** Re-centres and re-quantizes one (batch entry, kv head) of a KV cache. */
export function cacheRequantize(table: usize, t: i32, scratch: usize): void {
  requantizeRows(table + <usize>(t * CACHE_RECORD_BYTES), scratch);
}

/** Few-query attention over one key-block range of a KV cache, for one stacked row tile. */
export function decodeSplit(table: usize, t: i32, scratch: usize): void {
  decodeSplitInt8(table + <usize>(t * DECODE_RECORD_BYTES), scratch);
}

/** Merges one row tile's splits into its output. */
export function decodeMergeTile(table: usize, t: i32, scratch: usize): void {
  decodeMerge(table + <usize>(t * MERGE_RECORD_BYTES));
}

/** Quantizes query rows [i0, i0+rows) (rows ≤ TILE_ROWS) as the int8 kernel does; exported for bit-exactness tests. */
export function quantizeQueries(q: usize, nq: i32, i0: i32, rows: i32, Dp: i32, fold: f32, out: usize, scales: usize): void {
  quantizeQueryTile(q, nq, i0, rows, Dp, fold, out, scales);
}

export function scratchBytes(Dp: i32): i32 {
  return scratchBytesFor(Dp);
}

export function tileRows(): i32 {
  return TILE_ROWS;
}
