/**
 * sa_kv_params (csrc/sageattn.h): an sa_params (`base`, written with ParamsBuffer's setters) followed by the cache's
 * address, capacity and length. `verifyKvLayout` compares this side's offsets with the library's report at load.
 */
import { PARAMS_SIZE, ParamsBuffer } from "./params.js";
import type { Native } from "./symbols.js";

export const KV_PARAMS_FIELDS = [
  ["base", 0],
  ["cache", PARAMS_SIZE],
  ["capacity", PARAMS_SIZE + 8],
  ["length", PARAMS_SIZE + 12],
] as const;

export const KV_PARAMS_SIZE = PARAMS_SIZE + 16;

/** Compares the table with sa_kv_params_layout; a description of the first difference, or undefined. */
export function verifyKvLayout(native: Native): string | undefined {
  const out = new BigInt64Array(KV_PARAMS_FIELDS.length + 1);
  const n = native.sa_kv_params_layout(out, out.length);
  if (n !== out.length) return `sa_kv_params_layout reported ${n} values, this side knows ${out.length}`;
  if (Number(out[0]) !== KV_PARAMS_SIZE) return `sizeof(sa_kv_params) is ${out[0]}, this side packs ${KV_PARAMS_SIZE}`;
  for (let i = 0; i < KV_PARAMS_FIELDS.length; i++) {
    const [name, offset] = KV_PARAMS_FIELDS[i];
    if (Number(out[i + 1]) !== offset) {
      return `sa_kv_params.${name} is at byte ${out[i + 1]}, this side writes it at ${offset}`;
    }
  }
  return undefined;
}

/** One reusable sa_kv_params buffer. */
export class KvParamsBuffer extends ParamsBuffer {
  constructor() {
    super(KV_PARAMS_SIZE);
  }
  setCache(ptr: bigint, capacity: number, length: number): this {
    this.u64[PARAMS_SIZE >> 3] = ptr;
    this.i32[(PARAMS_SIZE + 8) >> 2] = capacity;
    this.i32[(PARAMS_SIZE + 12) >> 2] = length;
    return this;
  }
}
