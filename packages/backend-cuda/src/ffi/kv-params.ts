/**
 * sa_kv_params (csrc/sageattn.h): an sa_params (`base`, written with ParamsBuffer's setters) followed by the cache's
 * address, capacity and length. Offsets and size come from core's `SA_KV_PARAMS` schema (sa_params' fields, then the
 * cache's); the build pins the C struct to it (scripts/generate-headers.mjs) and `verifyKvLayout` compares the offsets
 * with the library's report at load, naming the first field that differs.
 */
import { layoutOf, SA_KV_PARAMS } from "@sageattn/core";
import { ParamsBuffer } from "./params.js";
import type { Native } from "./symbols.js";

const layout = layoutOf(SA_KV_PARAMS);

/** [name, byte offset] in the order sa_kv_params_layout reports them (base is the embedded sa_params, at 0). */
export const KV_PARAMS_FIELDS: readonly (readonly [string, number])[] = [
  ["base", 0],
  ["cache", layout.offsets.cache],
  ["capacity", layout.offsets.capacity],
  ["length", layout.offsets.length],
];

export const KV_PARAMS_SIZE = layout.size;

/** Compares the schema with sa_kv_params_layout; a description of the first difference, or undefined. */
export function verifyKvLayout(native: Native): string | undefined {
  const out = new BigInt64Array(KV_PARAMS_FIELDS.length + 1);
  const n = native.sa_kv_params_layout(out, out.length);
  if (n !== out.length) {
    return `sa_kv_params_layout reported ${n} values, core's SA_KV_PARAMS schema has ${out.length - 1}`;
  }
  for (let i = 0; i < KV_PARAMS_FIELDS.length; i++) {
    const [name, offset] = KV_PARAMS_FIELDS[i];
    if (Number(out[i + 1]) !== offset) {
      return `sa_kv_params.${name} is at byte ${out[i + 1]}, core's SA_KV_PARAMS schema puts it at ${offset}`;
    }
  }
  if (Number(out[0]) !== KV_PARAMS_SIZE) {
    return `sizeof(sa_kv_params) is ${out[0]}, core's SA_KV_PARAMS schema gives ${KV_PARAMS_SIZE}`;
  }
  return undefined;
}

/** One reusable sa_kv_params buffer. */
export class KvParamsBuffer extends ParamsBuffer {
  constructor() {
    super(KV_PARAMS_SIZE);
  }
  setCache(ptr: bigint, capacity: number, length: number): this {
    this.u64[layout.offsets.cache >> 3] = ptr;
    this.i32[layout.offsets.capacity >> 2] = capacity;
    this.i32[layout.offsets.length >> 2] = length;
    return this;
  }
}
