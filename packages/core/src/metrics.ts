/** How close an output is to a reference, on the flattened tensors. */
export interface Accuracy {
  /** Cosine similarity. */
  readonly cosine: number;
  /** Σ|a − b| / Σ|b|. */
  readonly relL1: number;
  readonly rmse: number;
  readonly maxAbs: number;
  /** Elements of `actual` that are NaN or ±inf. */
  readonly nonFinite: number;
}

/** Compares `actual` with `reference` (same length). Identical all-zero tensors count as cosine 1. */
export function accuracy(actual: ArrayLike<number>, reference: ArrayLike<number>): Accuracy {
  if (actual.length !== reference.length) {
    throw new RangeError(`lengths differ: ${actual.length} vs ${reference.length}`);
  }
  let dot = 0, na = 0, nb = 0, l1 = 0, ref1 = 0, sq = 0, maxAbs = 0, nonFinite = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], b = reference[i];
    if (!Number.isFinite(a)) {
      nonFinite++;
      continue;
    }
    dot += a * b;
    na += a * a;
    nb += b * b;
    const e = Math.abs(a - b);
    l1 += e;
    ref1 += Math.abs(b);
    sq += e * e;
    if (e > maxAbs) maxAbs = e;
  }
  const cosine = na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb);
  const relL1 = ref1 === 0 ? (l1 === 0 ? 0 : Infinity) : l1 / ref1;
  return { cosine, relL1, rmse: Math.sqrt(sq / Math.max(1, actual.length)), maxAbs, nonFinite };
}
