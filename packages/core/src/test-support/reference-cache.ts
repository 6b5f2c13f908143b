import { rows } from "../conformance/decode-check.js";
import { type KvCacheReference, kvCacheReference, type KvCacheSpec } from "../kv-cache.js";

/**
 * A host oracle cache for `spec`, fed the first Σ appends rows of canonical [B, Hkv, N, D] K and V in appends of the
 * given sizes, in order.
 */
export function referenceCacheFrom(
  spec: KvCacheSpec,
  k: Float32Array,
  v: Float32Array,
  N: number,
  appends: readonly number[],
): KvCacheReference {
  const cache = kvCacheReference(spec);
  const BH = spec.batch * spec.headsKv, D = spec.headDim;
  let len = 0;
  for (const n of appends) {
    cache.append(rows(k, BH, N, D, len, len + n), rows(v, BH, N, D, len, len + n), n);
    len += n;
  }
  return cache;
}
