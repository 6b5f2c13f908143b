// The KV cache's append and requantize (docs/DESIGN.md §2 steps 1–2 on a cache, and §2 "Decode"), for one
// (batch entry, kv head).
//
// A head's store (layout in tiles.ts, C_* fields of the cache record): the smoothing mean f32 [Dp]; K in the int8
// kernel's pair layout but one byte a value, i8 [Dp/2][64 keys][2 channels] per 64-row block (decode_int8.ts widens
// it as it loads), with one f32 scale per block; V as its P·V reads
// it, i16 [32 key pairs][Dp][2 keys] per block with f32 scales [Dp] per block; and the partial last block's raw rows
// of K and of V, f32 [64][Dp]. The partial block is re-quantized from those rows on every append, so the blocks always
// equal one-shot quantization of the same rows (quantizeKeys / quantizeValues over the whole K with the cache's mean).
// Knobs: none; an append of n rows costs O(n·D) plus one block of ≤ 64 rows re-quantized.

import {
  C_DP, C_FIRST, C_K, C_K_RAW, C_LEN, C_MEAN, C_N, C_S_K, C_SMOOTH, C_S_V, C_V, C_V_RAW, C_K_IN, C_V_IN, KEY_BLOCK,
  scratchF64, scratchO, scratchQ, scratchS,
} from "./tiles";
import { channelMean, quantizeKeys } from "./quantize_k";
import { quantizeValues } from "./quantize_v";

/** Bytes of one stored K block: i8 [Dp/2][64 keys][2 channels] (the INT8 kernel's pair layout, one byte a value). */
// @ts-ignore: decorator
@inline function kBlockBytes(Dp: i32): usize { return <usize>(KEY_BLOCK * Dp); }
/** Bytes of one stored V block: i16 [32 key pairs][Dp][2 keys]. */
// @ts-ignore: decorator
@inline function vBlockBytes(Dp: i32): usize { return <usize>(KEY_BLOCK * Dp * 2); }

/**
 * Quantizes ≤ 64 rows as K block `blk` with `mean`: `quantizeKeys` into an i16 block in scratch (the logits and P
 * areas, 64·Dp·2 bytes for Dp ≤ 256), then narrowed to i8 in the store (values are within ±127: exact). The store
 * holds one byte a value, so an attend reads 3 bytes a channel (K 1, V 2) instead of 4.
 */
function storeKeyBlock(src: usize, rows: i32, Dp: i32, mean: usize, kOut: usize, sK: usize, blk: i32, scratch: usize): void {
  const wide = scratchS(scratch, Dp);
  quantizeKeys(src, rows, Dp, mean, wide, sK + <usize>(blk * 4));
  const dst = kOut + <usize>blk * kBlockBytes(Dp);
  const n = KEY_BLOCK * Dp;
  for (let i = 0; i < n; i += 16) v128.store(dst + <usize>i, i8x16.narrow_i16x8_s(v128.load(wide + <usize>(i * 2)), v128.load(wide + <usize>(i * 2), 16)));
}

/** Quantizes `rows` f32 rows (stride Dp) at `src` as blocks `blk`, `blk + 1`, … of K and V. */
function quantizeBlocks(rec: usize, kSrc: usize, vSrc: usize, rows: i32, blk: i32, scratch: usize): void {
  const Dp = load<i32>(rec, C_DP);
  const mean = load<usize>(rec, C_MEAN), kOut = load<usize>(rec, C_K), sK = load<usize>(rec, C_S_K);
  for (let r0 = 0; r0 < rows; r0 += KEY_BLOCK)
    storeKeyBlock(kSrc + <usize>(r0 * Dp * 4), min(KEY_BLOCK, rows - r0), Dp, mean, kOut, sK, blk + r0 / KEY_BLOCK, scratch);
  quantizeValues(vSrc, rows, Dp, load<usize>(rec, C_V) + <usize>blk * vBlockBytes(Dp), load<usize>(rec, C_S_V) + <usize>(blk * Dp * 4), scratchF64(scratch, Dp));
}

/** Appends n rows (f32 [n][Dp] at C_K_IN / C_V_IN) to a head whose store holds C_LEN rows. */
export function appendRows(rec: usize, scratch: usize): void {
  const Dp = load<i32>(rec, C_DP), len = load<i32>(rec, C_LEN), n = load<i32>(rec, C_N);
  const kIn = load<usize>(rec, C_K_IN), vIn = load<usize>(rec, C_V_IN);
  const kRaw = load<usize>(rec, C_K_RAW), vRaw = load<usize>(rec, C_V_RAW);
  const rowBytes = <usize>(Dp * 4);
  if (load<i32>(rec, C_FIRST) != 0) {
    if (load<i32>(rec, C_SMOOTH) != 0) channelMean(kIn, n, Dp, scratchF64(scratch, Dp), load<usize>(rec, C_MEAN));
    else memory.fill(load<usize>(rec, C_MEAN), 0, rowBytes);
  }
  let held = len % KEY_BLOCK; // rows of the partial block already in kRaw/vRaw
  let blk = len / KEY_BLOCK;
  let i = 0;
  if (held > 0) {
    const t = min(KEY_BLOCK - held, n);
    memory.copy(kRaw + <usize>held * rowBytes, kIn, <usize>t * rowBytes);
    memory.copy(vRaw + <usize>held * rowBytes, vIn, <usize>t * rowBytes);
    held += t;
    i = t;
    if (held == KEY_BLOCK) {
      quantizeBlocks(rec, kRaw, vRaw, KEY_BLOCK, blk, scratch);
      blk++;
      held = 0;
    }
  }
  const full = (n - i) / KEY_BLOCK;
  if (full > 0) {
    quantizeBlocks(rec, kIn + <usize>i * rowBytes, vIn + <usize>i * rowBytes, full * KEY_BLOCK, blk, scratch);
    blk += full;
    i += full * KEY_BLOCK;
  }
  if (i < n) {
    memory.copy(kRaw, kIn + <usize>i * rowBytes, <usize>(n - i) * rowBytes);
    memory.copy(vRaw, vIn + <usize>i * rowBytes, <usize>(n - i) * rowBytes);
    held = n - i;
  }
  if (held > 0) quantizeBlocks(rec, kRaw, vRaw, held, blk, scratch);
}

/** K̂ rows of full block `blk` (Ki·sK + μ, f32) into `dst` f32 [64][Dp]. */
function dequantizeBlock(rec: usize, blk: i32, dst: usize): void {
  const Dp = load<i32>(rec, C_DP), mean = load<usize>(rec, C_MEAN);
  const src = load<usize>(rec, C_K) + <usize>blk * kBlockBytes(Dp);
  const sK = load<f32>(load<usize>(rec, C_S_K) + <usize>(blk * 4));
  for (let j = 0; j < KEY_BLOCK; j++)
    for (let d = 0; d < Dp; d++) {
      const ki = <f32>load<i8>(src + <usize>(((d >> 1) * KEY_BLOCK + j) * 2 + (d & 1)));
      store<f32>(dst + <usize>((j * Dp + d) * 4), ki * sK + load<f32>(mean + <usize>(d * 4)));
    }
}

/** Adds rows [0, rows) of f32 [rows][Dp] at `src` into f64 sums [Dp]. */
function addRows(src: usize, rows: i32, Dp: i32, sums: usize): void {
  for (let j = 0; j < rows; j++)
    for (let d = 0; d < Dp; d++) {
      const s = sums + <usize>(d * 8);
      store<f64>(s, load<f64>(s) + <f64>load<f32>(src + <usize>((j * Dp + d) * 4)));
    }
}

/**
 * Re-centres a head: K̂ = Ki·sK + μ over full blocks and raw + μ over the partial block's rows, μ' = the per-channel
 * mean of K̂ (f64 sum in row order, f32), then K̂ − μ' quantized afresh; the partial block's raw rows become K̂ (the
 * stored rows of a cache made by one append of K̂). With smoothing off μ' stays 0. V is untouched.
 */
export function requantizeRows(rec: usize, scratch: usize): void {
  const Dp = load<i32>(rec, C_DP), len = load<i32>(rec, C_LEN);
  const mean = load<usize>(rec, C_MEAN), kRaw = load<usize>(rec, C_K_RAW);
  const kOut = load<usize>(rec, C_K), sK = load<usize>(rec, C_S_K);
  const full = len / KEY_BLOCK, held = len % KEY_BLOCK;
  const buf = scratchO(scratch, Dp); // f32 [64][Dp]
  const next = scratchQ(scratch); // μ', f32 [Dp], while every block still dequantizes with μ
  const sums = scratchF64(scratch, Dp);
  for (let j = 0; j < held; j++)
    for (let d = 0; d < Dp; d++) {
      const at = kRaw + <usize>((j * Dp + d) * 4);
      const mu = load<f32>(mean + <usize>(d * 4));
      store<f32>(at, (load<f32>(at) - mu) + mu);
    }
  if (load<i32>(rec, C_SMOOTH) != 0) {
    memory.fill(sums, 0, <usize>(Dp * 8));
    for (let b = 0; b < full; b++) {
      dequantizeBlock(rec, b, buf);
      addRows(buf, KEY_BLOCK, Dp, sums);
    }
    addRows(kRaw, held, Dp, sums);
    for (let d = 0; d < Dp; d++) store<f32>(next + <usize>(d * 4), <f32>(load<f64>(sums + <usize>(d * 8)) / <f64>len));
  } else memory.fill(next, 0, <usize>(Dp * 4));
  for (let b = 0; b < full; b++) {
    dequantizeBlock(rec, b, buf);
    storeKeyBlock(buf, KEY_BLOCK, Dp, next, kOut, sK, b, scratch);
  }
  memory.copy(mean, next, <usize>(Dp * 4));
  if (held > 0) storeKeyBlock(kRaw, held, Dp, mean, kOut, sK, full, scratch);
}
