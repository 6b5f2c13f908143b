// Which Q/K quantization granularity keeps attention accurate on massive channels (issue 16)? On B1 H4 N1024 D128
// Gaussian Q, K, V with channels 3, 17 and 40 of Q and K scaled ×20 and key 0 a sink (every channel 30/8), K smoothed
// by its token mean, Q·Kᵀ quantized to INT8 round-to-nearest with one scale per `bq` query rows and per `bk` keys, and
// everything else exact (f64 softmax and P·V): the error of the Q·Kᵀ quantization alone, as cosine and rel-L1 against
// the unquantized attention. Runs in about 20 s: node packages/backend-cuda/bench/qk-granularity-study.mjs
import { normals } from "./normals.mjs";
const [N, D, H] = [1024, 128, 4];
const CONFIGS = [[128, 64], [16, 64], [16, 16], [8, 8], [1, 64], [1, 16], [1, 1], [1, "t64"], [1, "t128"]]; // [bq, bk]
// bk "t64" / "t128": 16 / 32 keys per scale, not adjacent but laid out as an MMA accumulator holds them — within each
// 64- / 128-key block, the keys whose column mod 8 lies in the same pair {2t, 2t + 1}, t = 0..3 (one thread's columns)

function quantize(x, rows, bs) {
  if (typeof bs === "string") return quantizeStrided(x, rows, Number(bs.slice(1)));
  const out = new Float64Array(x.length);
  for (let r0 = 0; r0 < rows; r0 += bs) {
    const i0 = r0 * D, i1 = Math.min(rows, r0 + bs) * D;
    let m = 0;
    for (let i = i0; i < i1; i++) m = Math.max(m, Math.abs(x[i]));
    const s = m === 0 ? 1 : m / 127;
    for (let i = i0; i < i1; i++) out[i] = Math.round(x[i] / s) * s;
  }
  return out;
}

function quantizeStrided(x, rows, block) {
  const out = new Float64Array(x.length);
  const group = (r) => Math.floor(r / block) * 4 + ((r % 8) >> 1);
  const m = new Float64Array(Math.ceil(rows / block) * 4);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < D; c++) m[group(r)] = Math.max(m[group(r)], Math.abs(x[r * D + c]));
  }
  for (let r = 0; r < rows; r++) {
    const s = m[group(r)] === 0 ? 1 : m[group(r)] / 127;
    for (let c = 0; c < D; c++) out[r * D + c] = Math.round(x[r * D + c] / s) * s;
  }
  return out;
}

function attention(q, k, v) {
  const out = new Float64Array(N * D), s = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let m = -Infinity;
    for (let j = 0; j < N; j++) {
      let d = 0;
      for (let c = 0; c < D; c++) d += q[i * D + c] * k[j * D + c];
      s[j] = d;
      if (d > m) m = d;
    }
    let l = 0;
    for (let j = 0; j < N; j++) l += s[j] = Math.exp(s[j] - m);
    for (let c = 0; c < D; c++) {
      let a = 0;
      for (let j = 0; j < N; j++) a += s[j] * v[j * D + c];
      out[i * D + c] = a / l;
    }
  }
  return out;
}

for (const seed of [1, 2]) {
  const seen = new Map(CONFIGS.map((c) => [c.join("/"), []]));
  for (let h = 0; h < H; h++) {
    const base = 1000 * seed + 10 * h;
    const q = normals(base + 1, N * D), k = normals(base + 2, N * D), v = normals(base + 3, N * D);
    for (let r = 0; r < N; r++) for (const c of [3, 17, 40]) q[r * D + c] *= 20, k[r * D + c] *= 20;
    k.fill(30 / 8, 0, D);
    for (let i = 0; i < q.length; i++) q[i] /= Math.sqrt(D);
    const mean = new Float64Array(D);
    for (let j = 0; j < N; j++) for (let c = 0; c < D; c++) mean[c] += k[j * D + c] / N;
    const kc = k.map((x, i) => x - mean[i % D]);
    const exact = attention(q, kc, v);
    for (const [bq, bk] of CONFIGS) {
      const o = attention(quantize(q, N, bq), quantize(kc, N, bk), v);
      let dot = 0, a2 = 0, b2 = 0, err = 0, tot = 0;
      for (let i = 0; i < o.length; i++) {
        dot += o[i] * exact[i], a2 += o[i] ** 2, b2 += exact[i] ** 2;
        err += Math.abs(o[i] - exact[i]), tot += Math.abs(exact[i]);
      }
      seen.get(`${bq}/${bk}`).push([dot / Math.sqrt(a2 * b2), err / tot]);
    }
  }
  for (const [key, xs] of seen) {
    const cos = xs.map((x) => x[0]), rel = xs.map((x) => x[1]);
    const [bq, bk] = key.split("/");
    console.log(
      `seed ${seed}  Q per ${bq.padStart(3)} rows, K per ${bk.padStart(2)} keys:  worst head cos ${
        Math.min(...cos).toFixed(5)
      }` +
        `, best ${Math.max(...cos).toFixed(5)}, mean rel-L1 ${(rel.reduce((a, b) => a + b) / rel.length).toFixed(4)}`,
    );
  }
}
