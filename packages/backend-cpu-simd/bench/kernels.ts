/**
 * Kernel-only timings on the calling thread (no copies in or out, no workers): where the time goes inside the
 * int8 and exact kernels. `npm run bench:kernels -- [N] [D] [--causal]`; BUILD=relaxed-simd under Bun or Deno.
 */
import { hostTensor, makeQKV, resolveProblem } from "@sageattn/core";
import { Effect } from "effect";
import { type Build, Engine } from "../src/engine.js";
import { writeCanonical } from "../src/io.js";
import { paddedHeadDim, planCall, writeRecords } from "../src/plan.js";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const N = Number(args[0] ?? 1024), D = Number(args[1] ?? 64), B = 1, H = 8;
const x = makeQKV({ B, Hq: H, Hkv: H, Nq: N, Nk: N, D }, "gaussian", 7);
const q = hostTensor(x.q, [B, H, N, D]), k = hostTensor(x.k, [B, H, N, D]), v = hostTensor(x.v, [B, H, N, D]);
const p = Effect.runSync(resolveProblem(q, k, v, { causal: process.argv.includes("--causal") }));
const engine = await Engine.create((process.env.BUILD as Build | undefined) ?? "simd128", false);
const kernels = engine.kernels, tileRows = kernels.tileRows();
const flops = (4 * B * H * N * N * D) / (p.causal ? 2 : 1);
console.log(`${engine.build}, one thread, B=${B} H=${H} N=${N} D=${D} causal=${p.causal}`);
for (const exact of [false, true]) {
  const plan = planCall(p, exact, 1, kernels.scratchBytes(paddedHeadDim(D)), tileRows);
  engine.ensure(plan.end);
  for (const [t, at] of [[q, plan.q], [k, plan.k], [v, plan.v]] as const) {
    writeCanonical(t, engine.f32, at >> 2, plan.Dp);
  }
  writeRecords(plan, p, engine.i32, engine.f32, tileRows);
  const prepare = exact ? kernels.prepareKvF32 : kernels.prepareKvInt8,
    attend = exact ? kernels.attendF32 : kernels.attendInt8;
  // Best of 10 by wall clock, and by this process's CPU time (less sensitive to other jobs on a shared machine).
  let bestPrep = Infinity, bestAttend = Infinity, bestCpu = Infinity;
  for (let it = 0; it < 10; it++) {
    const t0 = performance.now();
    for (let t = 0; t < plan.kvCount; t++) prepare(plan.kvTable, t, plan.scratch);
    const t1 = performance.now();
    const c0 = process.cpuUsage();
    for (let t = 0; t < plan.attnCount; t++) attend(plan.attnTable, t, plan.scratch);
    const c = process.cpuUsage(c0);
    const t2 = performance.now();
    bestPrep = Math.min(bestPrep, t1 - t0);
    bestAttend = Math.min(bestAttend, t2 - t1);
    bestCpu = Math.min(bestCpu, (c.user + c.system) / 1000);
  }
  console.log(
    `${exact ? "exact f32" : "int8     "}  K/V pre-pass ${bestPrep.toFixed(2)} ms  attention ${
      bestAttend.toFixed(1)
    } ms (CPU ${bestCpu.toFixed(1)} ms)  ${(flops / bestAttend / 1e6).toFixed(1)} GFLOPS`,
  );
}
