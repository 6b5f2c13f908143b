/**
 * Indicative timings of the cpu-simd kernels (int8 and exact f32) on one shape, end to end through the backend
 * (host f32 in, host f32 out; quantization included). Optional peer: onnxruntime-node's MultiHeadAttention.
 *   npm run bench -- [N] [threads] [--ort] [--causal]   (Node, after `npm run build`)
 *   npx bun bench/quick.ts 2048 2 --ort
 * GFLOPS count 4·B·H·N²·D (halved when causal).
 */
import { Effect } from "effect";
import { hostTensor, makeQKV, resolveProblem } from "@sageattn/core";
import { makeCpuSimd } from "@sageattn/backend-cpu-simd";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const N = Number(args[0] ?? 2048);
const threads = Number(args[1] ?? 2);
const causal = process.argv.includes("--causal");
const B = 1, H = 8, D = 64;
const flops = (4 * B * H * N * N * D) / (causal ? 2 : 1);

const x = makeQKV({ B, Hq: H, Hkv: H, Nq: N, Nk: N, D }, "gaussian", 7);
const q = hostTensor(x.q, [B, H, N, D]), k = hostTensor(x.k, [B, H, N, D]), v = hostTensor(x.v, [B, H, N, D]);
const p = Effect.runSync(resolveProblem(q, k, v, { causal }));
const backend = await Effect.runPromise(makeCpuSimd({ threads }));

async function time(label: string, f: () => Promise<unknown>): Promise<number> {
  const budgetMs = 4000;
  await f(); // warm-up: lets V8 tier the kernels up
  await f();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < budgetMs && times.length < 20)) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const best = times[0];
  console.log(
    `${label.padEnd(28)} ${best.toFixed(1).padStart(8)} ms  ${
      (flops / best / 1e6).toFixed(1).padStart(6)
    } GFLOPS  (median ${times[times.length >> 1].toFixed(1)} ms, ${times.length} runs)`,
  );
  return best;
}

const runtime = (globalThis as { Bun?: { version: string } }).Bun
  ? `bun ${(globalThis as { Bun?: { version: string } }).Bun!.version}`
  : (globalThis as { Deno?: { version: { deno: string } } }).Deno
  ? `deno`
  : `node ${process.version}`;
console.log(
  `cpu-simd ${backend.details.build}, threads ${backend.details.threads}, ${runtime}; B=${B} H=${H} N=${N} D=${D} causal=${causal} (${backend.device})`,
);
const tInt8 = await time("int8 (sage)", () => Effect.runPromise(backend.attention(p, q, k, v)));
const tExact = await time("exact f32", () => Effect.runPromise(backend.exactAttention!(p, q, k, v)));
console.log(`int8 / exact speed-up: ${(tExact / tInt8).toFixed(2)}×`);

if (process.argv.includes("--ort")) {
  const { ortMultiHeadAttention } = await import("./ort-peer.js");
  const run = await ortMultiHeadAttention(x.q, x.k, x.v, { B, H, N, D, threads });
  const tOrt = await time("onnxruntime-node MHA", run);
  console.log(`int8 / onnxruntime-node: ${(tOrt / tInt8).toFixed(2)}×`);
}
await Effect.runPromise(backend.dispose);
