/**
 * Task record layouts shared with the kernels (assembly/tiles.ts defines them; keep the two in step).
 * Field values are byte offsets inside a record.
 */
export const ATTN_RECORD_BYTES = 72;
export const A = {
  q: 0, nq: 4, i0: 8, rows: 12, k: 16, sK: 20, v: 24, sV: 28, nk: 32, out: 36, stats: 40, kmean: 44,
  mask: 48, maskKind: 52, maskStride: 56, causal: 60, Dp: 64, fold: 68,
} as const;

export const KV_RECORD_BYTES = 40;
export const P = { k: 0, v: 4, nk: 8, kmean: 12, kOut: 16, sK: 20, vOut: 24, sV: 28, Dp: 32, smooth: 36 } as const;

/** KV-cache record (assembly/tiles.ts C_*): one per (batch entry, kv head), for append and requantize. */
export const CACHE_RECORD_BYTES = 56;
export const C = {
  Dp: 0, len: 4, n: 8, first: 12, smooth: 16, mean: 20, k: 24, sK: 28, v: 32, sV: 36, kRaw: 40, vRaw: 44, kIn: 48, vIn: 52,
} as const;

/** Decode split record (D_*): one per (batch entry, kv head, row tile, key-block range). */
export const DECODE_RECORD_BYTES = 64;
export const DR = {
  q: 0, nq: 4, i0: 8, nr: 12, nh: 16, k: 20, sK: 24, v: 28, sV: 32, nk: 36, kb0: 40, kb1: 44, part: 48, causal: 52, Dp: 56, fold: 60,
} as const;

/** Decode merge record (M_*): one per row tile. */
export const MERGE_RECORD_BYTES = 40;
export const MR = { part: 0, splits: 4, rows: 8, out: 12, stats: 16, q: 20, kmean: 24, Dp: 28, partBytes: 32 } as const;

/** Keys per block (K quantization block, online-softmax step). */
export const KEY_BLOCK = 64;

/** P is quantized to [0, P_LEVELS] by the int8 kernel; the kernel's row sums come back divided by it. */
export const P_LEVELS = 8191;

/** The exports every module has: task runners f(table, index, scratch) and two sizes. */
export interface KernelExports {
  readonly prepareKvInt8: (table: number, t: number, scratch: number) => void;
  readonly prepareKvF32: (table: number, t: number, scratch: number) => void;
  readonly attendInt8: (table: number, t: number, scratch: number) => void;
  readonly attendF32: (table: number, t: number, scratch: number) => void;
  readonly cacheAppend: (table: number, t: number, scratch: number) => void;
  readonly cacheRequantize: (table: number, t: number, scratch: number) => void;
  readonly decodeSplit: (table: number, t: number, scratch: number) => void;
  readonly decodeMergeTile: (table: number, t: number, scratch: number) => void;
  readonly quantizeQueries: (q: number, nq: number, i0: number, rows: number, Dp: number, fold: number, out: number, scales: number) => void;
  readonly scratchBytes: (Dp: number) => number;
  readonly tileRows: () => number;
}

export type TaskKind = "prepareKvInt8" | "prepareKvF32" | "attendInt8" | "attendF32" | "cacheAppend" | "cacheRequantize" | "decodeSplit" | "decodeMergeTile";
