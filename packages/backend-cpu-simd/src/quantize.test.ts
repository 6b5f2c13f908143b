// The kernels' quantization is bit-exact with core's (the sage oracle's) quantizeRows and channelMean.
import { channelMean, K_BLOCK, LOG2E, makeQKV, Q_BLOCK, qFold, quantizeRows } from "@sageattn/core";
import { describe, expect, it } from "vitest";
import { ARENA_BASE, Engine } from "./engine.js";
import { paddedHeadDim } from "./plan.js";
import { KV_RECORD_BYTES, P } from "./records.js";

const engine = await Engine.create("simd128", false);
const k = engine.kernels;
const TILE = k.tileRows();

/** Rows [N][D] into wasm memory at `at` as [N][Dp] (padding zero). */
function put(src: Float32Array, N: number, D: number, at: number): void {
  const Dp = paddedHeadDim(D);
  const f32 = engine.f32;
  for (let n = 0; n < N; n++) for (let d = 0; d < Dp; d++) f32[(at >> 2) + n * Dp + d] = d < D ? src[n * D + d] : 0;
}

/** Values on the rounding ties of a unit scale: amax 127 then x.5 values of both signs. */
function ties(N: number, D: number): Float32Array {
  const out = new Float32Array(N * D);
  for (let i = 0; i < out.length; i++) out[i] = i % 7 === 0 ? 127 : ((i % 254) - 127) + 0.5;
  return out;
}

describe("query quantization matches core's quantizeRows bit for bit", () => {
  const cases: [string, number, number, Float32Array, number][] = [
    ["gaussian N=300 D=64", 300, 64, makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 300, Nk: 1, D: 64 }, "gaussian", 5).q, 1 / 8],
    [
      "heavy-tail N=129 D=40",
      129,
      40,
      makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 129, Nk: 1, D: 40 }, "heavy-tail", 6).q,
      1 / Math.sqrt(40),
    ],
    ["ties N=130 D=3, fold 1", 130, 3, ties(130, 3), 1 / LOG2E],
  ];
  for (const [name, N, D, q, smScale] of cases) {
    it(name, () => {
      const Dp = paddedHeadDim(D);
      const at = ARENA_BASE, out = at + N * Dp * 4, scales = out + TILE * Dp * 2;
      engine.ensure(scales + TILE * 4);
      put(q, N, D, at);
      const want = quantizeRows(q, 0, N, D, Q_BLOCK, qFold(smScale));
      for (let i0 = 0; i0 < N; i0 += TILE) {
        const rows = Math.min(TILE, N - i0);
        k.quantizeQueries(at, N, i0, rows, Dp, qFold(smScale), out, scales);
        const got = new Int16Array(engine.memory.buffer, out, rows * Dp);
        const gotScales = new Float32Array(engine.memory.buffer, scales, rows);
        for (let r = 0; r < rows; r++) {
          expect(gotScales[r], `scale of row ${i0 + r}`).toBe(want.scales[Math.floor((i0 + r) / Q_BLOCK)]);
          for (let d = 0; d < D; d++) {
            if (got[r * Dp + d] !== want.values[(i0 + r) * D + d]) {
              expect(got[r * Dp + d], `q[${i0 + r}][${d}]`).toBe(want.values[(i0 + r) * D + d]);
            }
          }
        }
      }
    });
  }
});

describe("key smoothing and quantization match core's channelMean + quantizeRows bit for bit", () => {
  const cases: [string, number, number, Float32Array, boolean][] = [
    ["k-bias N=200 D=64", 200, 64, makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 1, Nk: 200, D: 64 }, "k-bias", 7).k, true],
    ["heavy-tail N=65 D=40", 65, 40, makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 1, Nk: 65, D: 40 }, "heavy-tail", 8).k, true],
    ["ties N=64 D=5, no smoothing", 64, 5, ties(64, 5), false],
  ];
  for (const [name, N, D, kv, smooth] of cases) {
    it(name, () => {
      const Dp = paddedHeadDim(D);
      const blocks = Math.ceil(N / K_BLOCK);
      const kAt = ARENA_BASE, vAt = kAt + N * Dp * 4, mean = vAt + N * Dp * 4, kq = mean + Dp * 4;
      const sK = kq + blocks * K_BLOCK * Dp * 2, vq = sK + blocks * 4, sV = vq + blocks * K_BLOCK * Dp * 2;
      const rec = sV + blocks * Dp * 4, scratch = rec + KV_RECORD_BYTES;
      engine.ensure(scratch + k.scratchBytes(Dp));
      put(kv, N, D, kAt);
      put(kv, N, D, vAt);
      const i32 = engine.i32;
      const fields: [number, number][] = [
        [P.k, kAt],
        [P.v, vAt],
        [P.nk, N],
        [P.kmean, mean],
        [P.kOut, kq],
        [P.sK, sK],
        [P.vOut, vq],
        [P.sV, sV],
        [P.Dp, Dp],
        [P.smooth, smooth ? 1 : 0],
      ];
      for (const [off, val] of fields) i32[(rec + off) >> 2] = val;
      k.prepareKvInt8(rec, 0, scratch);
      const wantMean = smooth ? channelMean(kv, 0, N, D) : new Float32Array(D);
      const gotMean = new Float32Array(engine.memory.buffer, mean, Dp);
      for (let d = 0; d < D; d++) expect(gotMean[d], `mean[${d}]`).toBe(wantMean[d]);
      const want = quantizeRows(kv, 0, N, D, K_BLOCK, 1, wantMean);
      const gotScales = new Float32Array(engine.memory.buffer, sK, blocks);
      const got = new Int16Array(engine.memory.buffer, kq, blocks * K_BLOCK * Dp);
      for (let b = 0; b < blocks; b++) expect(gotScales[b], `scale of block ${b}`).toBe(want.scales[b]);
      for (let j = 0; j < N; j++) {
        const b = Math.floor(j / K_BLOCK), jj = j % K_BLOCK;
        for (let d = 0; d < D; d++) {
          // block layout: [Dp/2 channel pairs][64 keys][2]
          const g = got[b * K_BLOCK * Dp + ((d >> 1) * K_BLOCK + jj) * 2 + (d & 1)];
          if (g !== want.values[j * D + d]) expect(g, `k[${j}][${d}]`).toBe(want.values[j * D + d]);
        }
      }
    });
  }
});
