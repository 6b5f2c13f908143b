import { type Problem, segments } from "./problem.js";
import { rowVisibility } from "./visibility.js";

/** Oracle output: O as canonical HND [B, Hq, Nq, D] and the natural-log LSE [B, Hq, Nq] (−∞ for a row that sees nothing). */
export interface Reference {
  readonly output: Float64Array;
  readonly lse: Float64Array;
}

/**
 * Exact attention in float64 on canonical HND f32 inputs: softmax(smScale·QKᵀ + mask)·V. A row whose Q·K products
 * include a NaN or ±inf (inputs not validated) comes out NaN, and ±inf/NaN in a visible V row reaches the output:
 * non-finite inputs propagate rather than vanish.
 */
export function exactReference(p: Problem, q: Float32Array, k: Float32Array, v: Float32Array): Reference {
  const { Hq, Hkv, Nq, Nk, D, group, smScale } = p;
  const output = new Float64Array(p.B * Hq * Nq * D);
  const lse = new Float64Array(p.B * Hq * Nq).fill(-Infinity);
  const s = new Float64Array(Nk);
  for (const seg of segments(p)) {
    for (let h = 0; h < Hq; h++) {
      const kvBase = ((seg.b * Hkv + Math.floor(h / group)) * Nk + seg.k0) * D;
      for (let i = 0; i < seg.nq; i++) {
        const row = (seg.b * Hq + h) * Nq + seg.q0 + i;
        const qBase = row * D;
        const { limit, bias } = rowVisibility(p, seg, h, i);
        let max = -Infinity;
        let poisoned = false;
        for (let j = 0; j < limit; j++) {
          let dot = 0;
          const kb = kvBase + j * D;
          for (let d = 0; d < D; d++) dot += q[qBase + d] * k[kb + d];
          if (!Number.isFinite(dot)) poisoned = true;
          const x = dot * smScale + (bias ? bias(j) : 0);
          s[j] = x;
          if (x > max) max = x;
        }
        if (poisoned) {
          output.fill(NaN, qBase, qBase + D);
          lse[row] = NaN;
          continue;
        }
        if (max === -Infinity) continue; // nothing visible: output stays 0, lse −∞
        let sum = 0;
        for (let j = 0; j < limit; j++) {
          const e = Math.exp(s[j] - max);
          s[j] = e;
          sum += e;
        }
        for (let j = 0; j < limit; j++) {
          const w = s[j] / sum; // no skip at w = 0: 0·inf must stay NaN
          const vb = kvBase + j * D;
          for (let d = 0; d < D; d++) output[qBase + d] += w * v[vb + d];
        }
        lse[row] = max + Math.log(sum);
      }
    }
  }
  return { output, lse };
}
