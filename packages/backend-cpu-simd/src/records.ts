/**
 * The task records the kernels read, laid out from core's schemas (CPU_ATTN_RECORD, CPU_KV_RECORD, CPU_CACHE_RECORD, CPU_DECODE_RECORD,
 * CPU_MERGE_RECORD); the build
 * generates the kernels' A_/P_/C_/D_/M_ offsets from the same schemas (scripts/build-wasm.mjs). Field values are byte offsets
 * inside a record.
 */
import {
  CPU_ATTN_RECORD,
  CPU_CACHE_RECORD,
  CPU_DECODE_RECORD,
  CPU_KV_RECORD,
  CPU_MERGE_RECORD,
  K_BLOCK,
  layoutOf,
} from "@sageattn/core";

const attnRecord = layoutOf(CPU_ATTN_RECORD);
const kvRecord = layoutOf(CPU_KV_RECORD);
const cacheRecord = layoutOf(CPU_CACHE_RECORD);
const decodeRecord = layoutOf(CPU_DECODE_RECORD);
const mergeRecord = layoutOf(CPU_MERGE_RECORD);

export const ATTN_RECORD_BYTES = attnRecord.size;
/** Byte offsets of an attention task record's fields. */
export const A = attnRecord.offsets;

export const KV_RECORD_BYTES = kvRecord.size;
/** Byte offsets of a key/value record's fields. */
export const P = kvRecord.offsets;

/** Keys per block (K quantization block, online-softmax step): core's K_BLOCK. */
export const KEY_BLOCK = K_BLOCK;

export const CACHE_RECORD_BYTES = cacheRecord.size;
/** Byte offsets of a KV-cache record's fields (append, requantize). */
export const C = cacheRecord.offsets;

export const DECODE_RECORD_BYTES = decodeRecord.size;
/** Byte offsets of a decode split record's fields. */
export const DR = decodeRecord.offsets;

export const MERGE_RECORD_BYTES = mergeRecord.size;
/** Byte offsets of a decode merge record's fields. */
export const MR = mergeRecord.offsets;

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
  readonly quantizeQueries: (
    q: number,
    nq: number,
    i0: number,
    rows: number,
    Dp: number,
    fold: number,
    out: number,
    scales: number,
  ) => void;
  readonly scratchBytes: (Dp: number) => number;
  readonly tileRows: () => number;
}

export type TaskKind =
  | "prepareKvInt8"
  | "prepareKvF32"
  | "attendInt8"
  | "attendF32"
  | "cacheAppend"
  | "cacheRequantize"
  | "decodeSplit"
  | "decodeMergeTile";
