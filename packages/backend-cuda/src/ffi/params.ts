/**
 * sa_params (csrc/sageattn.h) packed into JavaScript memory. Its fields and types are core's `SA_PARAMS` schema
 * (packages/core/src/schema.ts) and the offsets follow from C's alignment rules there. The library's build pins the
 * header to the same schema (names, types, offsets: static_asserts from scripts/generate-headers.mjs); at load,
 * `verifyLayout` compares the offsets with the library's own sizeof/offsetof report, so a library built from another
 * checkout fails loudly, naming the field, instead of being passed garbage.
 */
import { layoutOf, SA_PARAMS } from "@sageattn/core";
import type { Native } from "./symbols.js";

type Field = (typeof SA_PARAMS.fields)[number];
type Kind = Field["type"];

const layout = layoutOf(SA_PARAMS);

/** [name, kind, byte offset], in declaration order. */
export const PARAMS_FIELDS: readonly (readonly [FieldName, Kind, number])[] = layout.fields.map((f) =>
  [f.name as FieldName, f.type as Kind, f.offset] as const
);

export const PARAMS_SIZE = layout.size;

export type FieldName = Field["name"];
type FieldsOf<K extends Kind> = Extract<Field, { readonly type: K }>["name"];

/** Compares the table with the library's report; returns a description of the first difference, or undefined. */
export function verifyLayout(native: Native): string | undefined {
  const out = new BigInt64Array(PARAMS_FIELDS.length + 1);
  const n = native.sa_params_layout(out, out.length);
  if (n !== out.length) {
    return `sa_params_layout reported ${n} values, core's SA_PARAMS schema has ${out.length - 1} fields`;
  }
  for (let i = 0; i < PARAMS_FIELDS.length; i++) {
    const [name, , offset] = PARAMS_FIELDS[i];
    if (Number(out[i + 1]) !== offset) {
      return `sa_params.${name} is at byte ${out[i + 1]}, core's SA_PARAMS schema puts it at ${offset}`;
    }
  }
  if (Number(out[0]) !== PARAMS_SIZE) {
    return `sizeof(sa_params) is ${out[0]}, core's SA_PARAMS schema gives ${PARAMS_SIZE}`;
  }
  return undefined;
}

const offsetOf: Readonly<Record<FieldName, number>> = layout.offsets;

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
