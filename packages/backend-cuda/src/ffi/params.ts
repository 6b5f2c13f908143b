/**
 * sa_params (csrc/sageattn.h) packed into JavaScript memory. The field table below is what this side believes the
 * C layout is; `verifyLayout` compares it with the library's own sizeof/offsetof report at load, so a header change
 * that this file missed fails loudly instead of passing garbage to the GPU.
 */
import type { Native } from "./symbols.js";

type Kind = "u64" | "i64x4" | "i32" | "u32" | "f32";

/** [name, kind, byte offset], in declaration order. */
export const PARAMS_FIELDS = [
  ["q", "u64", 0], ["k", "u64", 8], ["v", "u64", 16], ["o", "u64", 24], ["lse", "u64", 32],
  ["cu_seqlens_q", "u64", 40], ["cu_seqlens_k", "u64", 48], ["workspace", "u64", 56], ["workspace_size", "u64", 64],
  ["stream", "u64", 72],
  ["q_strides", "i64x4", 80], ["k_strides", "i64x4", 112], ["v_strides", "i64x4", 144], ["o_strides", "i64x4", 176],
  ["batch", "i32", 208], ["heads_q", "i32", 212], ["heads_kv", "i32", 216], ["seqlen_q", "i32", 220],
  ["seqlen_k", "i32", 224], ["head_dim", "i32", 228], ["num_seqs", "i32", 232], ["max_seqlen_q", "i32", 236],
  ["max_seqlen_k", "i32", 240], ["dtype", "i32", 244], ["out_dtype", "i32", 248], ["layout", "i32", 252],
  ["flags", "u32", 256], ["sm_scale", "f32", 260],
] as const satisfies readonly (readonly [string, Kind, number])[];

export const PARAMS_SIZE = 264;

export type FieldName = (typeof PARAMS_FIELDS)[number][0];
type FieldsOf<K extends Kind> = Extract<(typeof PARAMS_FIELDS)[number], readonly [string, K, number]>[0];

/** Compares the table with the library's report; returns a description of the first difference, or undefined. */
export function verifyLayout(native: Native): string | undefined {
  const out = new BigInt64Array(PARAMS_FIELDS.length + 1);
  const n = native.sa_params_layout(out, out.length);
  if (n !== out.length) return `sa_params_layout reported ${n} values, this side knows ${out.length}`;
  if (Number(out[0]) !== PARAMS_SIZE) return `sizeof(sa_params) is ${out[0]}, this side packs ${PARAMS_SIZE}`;
  for (let i = 0; i < PARAMS_FIELDS.length; i++) {
    const [name, , offset] = PARAMS_FIELDS[i];
    if (Number(out[i + 1]) !== offset) return `sa_params.${name} is at byte ${out[i + 1]}, this side writes it at ${offset}`;
  }
  return undefined;
}

const offsetOf = Object.fromEntries(PARAMS_FIELDS.map(([n, , o]) => [n, o])) as Record<FieldName, number>;

/** One reusable sa_params buffer, written through typed views (no per-call allocation). */
export class ParamsBuffer {
  readonly bytes: Uint8Array;
  protected readonly u64: BigUint64Array;
  protected readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly f32: Float32Array;

  /** `size` over PARAMS_SIZE: a struct that begins with an sa_params (sa_kv_params). */
  constructor(size: number = PARAMS_SIZE) {
    this.bytes = new Uint8Array(size);
    this.u64 = new BigUint64Array(this.bytes.buffer);
    this.i32 = new Int32Array(this.bytes.buffer);
    this.u32 = new Uint32Array(this.bytes.buffer);
    this.f32 = new Float32Array(this.bytes.buffer);
  }

  clear(): this {
    this.bytes.fill(0);
    return this;
  }
  setU64(name: FieldsOf<"u64">, value: bigint): this {
    this.u64[offsetOf[name] >> 3] = value;
    return this;
  }
  /** Four non-negative int64 strides, written as 32-bit halves (no BigInt per call: this is on the hot path). */
  setStrides(name: FieldsOf<"i64x4">, s: readonly number[]): this {
    const at = offsetOf[name] >> 2;
    for (let i = 0; i < 4; i++) {
      this.i32[at + 2 * i] = s[i] >>> 0;
      this.i32[at + 2 * i + 1] = Math.floor(s[i] / 4294967296);
    }
    return this;
  }
  /**
   * Whether the fields that decide the workspace size (shapes, varlen lengths, flags, varlen on/off) equal those
   * of `saved`; copies them into `saved` when they differ. Integer compares: no allocation on the hot path.
   */
  sameSizeAs(saved: Int32Array): boolean {
    const from = offsetOf.batch >> 2, to = (offsetOf.flags >> 2) + 1;
    const varlen = this.u64[offsetOf.cu_seqlens_q >> 3] !== 0n ? 1 : 0;
    let same = saved[to - from] === varlen;
    for (let i = from; i < to && same; i++) same = saved[i - from] === this.i32[i];
    if (!same) {
      saved.set(this.i32.subarray(from, to));
      saved[to - from] = varlen;
    }
    return same;
  }

  /** Scratch for sameSizeAs. */
  static sizeFields(): Int32Array {
    return new Int32Array(((offsetOf.flags - offsetOf.batch) >> 2) + 2).fill(-1);
  }

  setI32(name: FieldsOf<"i32">, value: number): this {
    this.i32[offsetOf[name] >> 2] = value;
    return this;
  }
  setU32(name: FieldsOf<"u32">, value: number): this {
    this.u32[offsetOf[name] >> 2] = value >>> 0;
    return this;
  }
  setF32(name: FieldsOf<"f32">, value: number): this {
    this.f32[offsetOf[name] >> 2] = value;
    return this;
  }
}
