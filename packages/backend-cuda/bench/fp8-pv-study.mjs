// How accurate can FP8 (e4m3) P·V be on issue 16's inputs? Gaussian Q, K, V with a per-channel K bias (N(0, 2²) per
// channel), D 128, N 4096, two heads; everything exact in f64 (Q·Kᵀ unquantized, K smoothed by its mean, which
// softmax ignores) except P and V as each variant rounds them:
//   f16            P and V to f16: SageAttention's f16 P·V, without INT8 Q·Kᵀ
//   P e4m3         P to e4m3 of 448·P against the row's max (the largest P maps to 448), V exact
//   V e4m3         V per channel to e4m3 of v·448/max|v| (core's quantizeChannelsE4m3, as its fp8 oracle), P exact
//   P and V e4m3   both: what an FP8 wgmma multiplies, with exact sums
// Row sums are exact. Prints cos and rel-L1 against exact attention per head. The rounding of the operands alone sets
// the ceiling of any FP8 P·V kernel on these inputs. After `npm run build -w @sageattn/core`:
//   node packages/backend-cuda/bench/fp8-pv-study.mjs    (about a minute)
import { E4M3_MAX } from "../../core/dist/constants.js";
import { roundF16 } from "../../core/dist/dtype.js";
import { quantizeChannelsE4m3, roundE4m3 } from "../../core/dist/fp8.js";
import { kBiasHead } from "./normals.mjs";

const [N, D, H] = [4096, 128, 2];

const VARIANTS = ["f16", "P e4m3", "V e4m3", "P and V e4m3"];

function head(seed) {
  const { q, k, v } = kBiasHead(seed, N, D);
  // V as f16, and as e4m3 with one scale per channel (the value each stands for, back in f64)
  const v16 = Float64Array.from(v, roundF16);
  const e4 = quantizeChannelsE4m3(v, 0, N, D);
  const v8 = e4.values.map((x, i) => x * e4.scales[i % D]);
  const Vs = [v16, v, v8, v8];
  const scale = 1 / Math.sqrt(D);
  // Per variant: Σ y·r, Σ y², Σ |y − r| over every output element y (r: exact); and Σ r², Σ |r|.
  const dot = new Float64Array(VARIANTS.length),
    out2 = new Float64Array(VARIANTS.length),
    l1 = new Float64Array(VARIANTS.length);
  let ref2 = 0, refL1 = 0;
  const s = new Float64Array(N), o = Array.from({ length: VARIANTS.length + 1 }, () => new Float64Array(D));
  for (let i = 0; i < N; i++) {
    let m = -Infinity;
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let d = 0; d < D; d++) acc += q[i * D + d] * k[j * D + d];
      s[j] = acc * scale;
      m = Math.max(m, s[j]);
    }
    for (const row of o) row.fill(0);
    let l = 0;
    for (let j = 0; j < N; j++) {
      const p = Math.exp(s[j] - m);
      l += p;
      const p8 = roundE4m3(p * E4M3_MAX) / E4M3_MAX;
      const ps = [roundF16(p), p8, p, p8];
      for (let d = 0; d < D; d++) o[VARIANTS.length][d] += p * v[j * D + d];
      for (let x = 0; x < VARIANTS.length; x++) {
        const vx = Vs[x], px = ps[x], ox = o[x];
        for (let d = 0; d < D; d++) ox[d] += px * vx[j * D + d];
      }
    }
    const ref = o[VARIANTS.length];
    for (let d = 0; d < D; d++) {
      const r = ref[d] / l;
      ref2 += r * r;
      refL1 += Math.abs(r);
      for (let x = 0; x < VARIANTS.length; x++) {
        const y = o[x][d] / l;
        dot[x] += y * r;
        out2[x] += y * y;
        l1[x] += Math.abs(y - r);
      }
    }
  }
  return VARIANTS.map((_, x) => [dot[x] / Math.sqrt(out2[x] * ref2), l1[x] / refL1]);
}

const heads = Array.from({ length: H }, (_, h) => head(1000 + 10 * h));
for (let x = 0; x < VARIANTS.length; x++) {
  const row = heads.map((r) => `cos ${r[x][0].toFixed(6)} rel-L1 ${r[x][1].toFixed(4)}`).join("   ");
  console.log(`${VARIANTS[x].padEnd(14)} ${row}`);
}
