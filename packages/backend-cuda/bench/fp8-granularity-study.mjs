// Does a finer Q/K granularity bring "fp8" P·V past SageAttention2's FP8 kernel in accuracy (issue 16)? Core's sage
// oracle (what the kernels match in conformance) against exact attention on fp8-pv-study.mjs's inputs (Gaussian Q, K,
// V with a per-channel K bias, D 128, N 4096, two heads), "fp8" at the default ("block") and "thread" granularity, and
// the default f32 sums for scale. Prints cos and rel-L1 over both heads. After `npm run build -w @sageattn/core`:
//   node packages/backend-cuda/bench/fp8-granularity-study.mjs    (about ten minutes)
import { Effect } from "effect";
import { exactReference, hostTensor, resolveProblem, sageReference } from "../../core/dist/index.js";
import { kBiasHead } from "./normals.mjs";

const [N, D, H] = [4096, 128, 2];
const CASES = [["block", "fp8"], ["thread", "fp8"], ["block", "f32"]];

const q = new Float32Array(H * N * D), k = new Float32Array(H * N * D), v = new Float32Array(H * N * D);
for (let h = 0; h < H; h++) {
  const head = kBiasHead(1000 + 10 * h, N, D); // fp8-pv-study.mjs's heads
  q.set(head.q, h * N * D);
  k.set(head.k, h * N * D);
  v.set(head.v, h * N * D);
}
const tensor = (a) => hostTensor(a, [1, H, N, D]);
const problem = (options) => Effect.runSync(resolveProblem(tensor(q), tensor(k), tensor(v), options));
const exact = exactReference(problem({}), q, k, v).output;
for (const [qkGranularity, pvAccumulation] of CASES) {
  const out = sageReference(problem({ qkGranularity, pvAccumulation }), q, k, v).output;
  let dot = 0, out2 = 0, ref2 = 0, l1 = 0, refL1 = 0;
  for (let i = 0; i < out.length; i++) {
    dot += out[i] * exact[i];
    out2 += out[i] * out[i];
    ref2 += exact[i] * exact[i];
    l1 += Math.abs(out[i] - exact[i]);
    refL1 += Math.abs(exact[i]);
  }
  console.log(
    `${qkGranularity} ${pvAccumulation}: cos ${(dot / Math.sqrt(out2 * ref2)).toFixed(6)}, rel-L1 ${
      (l1 / refL1).toFixed(4)
    }`,
  );
}
