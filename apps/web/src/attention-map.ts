import { causalLimit, channelMean, K_BLOCK, Q_BLOCK, qFold, quantizeRows } from "@sageattn/core";
import type { Grid } from "./heatmap.js";

/** Sizes of the canonical HND f32 inputs (batch entry 0 is the one drawn). */
export interface MapSizes {
  readonly Hq: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
  readonly causal: boolean;
  readonly smScale: number;
}

/** Row-wise softmax of `logit(i, j)` over the keys query i may see; hidden keys are NaN. `exp` picks the base. */
function softmaxRows(s: MapSizes, logit: (i: number, j: number) => number, exp: (x: number) => number): Grid {
  const values = new Float64Array(s.Nq * s.Nk).fill(NaN);
  const row = new Float64Array(s.Nk);
  for (let i = 0; i < s.Nq; i++) {
    const limit = s.causal ? causalLimit(i, s.Nq, s.Nk) : s.Nk;
    let max = -Infinity;
    for (let j = 0; j < limit; j++) {
      row[j] = logit(i, j);
      if (row[j] > max) max = row[j];
    }
    let sum = 0;
    for (let j = 0; j < limit; j++) sum += row[j] = exp(row[j] - max);
    for (let j = 0; j < limit; j++) values[i * s.Nk + j] = row[j] / sum;
  }
  return { rows: s.Nq, cols: s.Nk, values };
}

/** Exact attention probabilities P = softmax(smScale·q·kᵀ) of query head `h`, in float64. */
export function exactAttentionMap(s: MapSizes, q: Float32Array, k: Float32Array, h: number): Grid {
  const qBase = h * s.Nq * s.D;
  const kBase = Math.floor(h / (s.Hq / s.Hkv)) * s.Nk * s.D;
  return softmaxRows(
    s,
    (i, j) => {
      let dot = 0;
      for (let d = 0; d < s.D; d++) dot += q[qBase + i * s.D + d] * k[kBase + j * s.D + d];
      return dot * s.smScale;
    },
    Math.exp,
  );
}

/**
 * The probabilities SageAttention's INT8 logits give for query head `h`: K smoothed by its token mean, Q (scale and
 * log2 e folded in) quantized per 128-token block, K per 64-token block, with core's quantizer; logits are the exact
 * int32 dot times both scales, in base 2. The softmax itself is exact, so the map isolates the INT8 error.
 */
export function sageAttentionMap(s: MapSizes, q: Float32Array, k: Float32Array, h: number): Grid {
  const kvHead = Math.floor(h / (s.Hq / s.Hkv));
  const mean = channelMean(k, kvHead * s.Nk, s.Nk, s.D);
  const qi = quantizeRows(q, h * s.Nq, s.Nq, s.D, Q_BLOCK, qFold(s.smScale));
  const ki = quantizeRows(k, kvHead * s.Nk, s.Nk, s.D, K_BLOCK, 1, mean);
  return softmaxRows(
    s,
    (i, j) => {
      let dot = 0;
      for (let d = 0; d < s.D; d++) dot += qi.values[i * s.D + d] * ki.values[j * s.D + d];
      return dot * qi.scales[Math.floor(i / Q_BLOCK)] * ki.scales[Math.floor(j / K_BLOCK)];
    },
    (x) => 2 ** x,
  );
}

/** Cell-wise |a − b| of two maps of the same size (hidden cells stay NaN). */
export function absDifference(a: Grid, b: Grid): Grid {
  const values = new Float64Array(a.values.length);
  for (let i = 0; i < values.length; i++) values[i] = Math.abs(a.values[i] - b.values[i]);
  return { rows: a.rows, cols: a.cols, values };
}

/** |O − O_ref| per (query, channel) of query head `h`, from canonical HND outputs of batch entry 0. */
export function outputError(s: MapSizes, out: ArrayLike<number>, ref: ArrayLike<number>, h: number): Grid {
  const base = h * s.Nq * s.D;
  const values = new Float64Array(s.Nq * s.D);
  for (let i = 0; i < values.length; i++) values[i] = Math.abs(out[base + i] - ref[base + i]);
  return { rows: s.Nq, cols: s.D, values };
}
