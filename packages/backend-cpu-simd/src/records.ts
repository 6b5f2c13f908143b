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
  readonly quantizeQueries: (q: number, nq: number, i0: number, rows: number, Dp: number, fold: number, out: number, scales: number) => void;
  readonly scratchBytes: (Dp: number) => number;
  readonly tileRows: () => number;
}

export type TaskKind = "prepareKvInt8" | "prepareKvF32" | "attendInt8" | "attendF32";
