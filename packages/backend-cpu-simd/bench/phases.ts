/**
 * Where an end-to-end call's time goes: the backend's threaded path taken apart (copies in, K/V pre-pass, attention
 * tiles, copy out into a fresh array), each phase timed, medians of several calls after warm-up.
 * `npm run bench:phases -- [N] [threads]` (Node; 2 threads by default).
 */
import { hostTensor, makeQKV, resolveProblem } from "@sageattn/core";
import { Effect } from "effect";
import { COUNTER_AT, Engine } from "../src/engine.js";
import { readCanonical, writeCanonical } from "../src/io.js";
import { paddedHeadDim, planCall, writeRecords } from "../src/plan.js";
import { WorkerPool } from "../src/pool.js";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const N = Number(args[0] ?? 2048), threads = Number(args[1] ?? 2), D = 64, B = 1, H = 8;
const x = makeQKV({ B, Hq: H, Hkv: H, Nq: N, Nk: N, D }, "gaussian", 7);
const q = hostTensor(x.q, [B, H, N, D]), k = hostTensor(x.k, [B, H, N, D]), v = hostTensor(x.v, [B, H, N, D]);
const p = Effect.runSync(resolveProblem(q, k, v, {}));
const engine = await Engine.create("simd128", true);
const kernels = engine.kernels, tileRows = kernels.tileRows();
const pool = await WorkerPool.start(threads - 1, engine.module, engine.bytes, engine.memory);
const flops = 4 * B * H * N * N * D;

const phases = ["copy in", "K/V pre-pass", "attention", "copy out", "total"] as const;
const samples: Record<string, number[]> = Object.fromEntries(phases.map((ph) => [ph, []]));
const plan = planCall(p, false, threads, kernels.scratchBytes(paddedHeadDim(D)), tileRows);
engine.ensure(plan.end);
const run = (fn: "prepareKvInt8" | "attendInt8", table: number, count: number) =>
  pool.run(
    [{ fn, table, count }],
    engine.memory,
    COUNTER_AT,
    plan.scratch,
    plan.scratchBytes,
    (_, t) => kernels[fn](table, t, plan.scratch),
  );
for (let it = 0; it < 12; it++) {
  const t0 = performance.now();
  for (const [t, at] of [[q, plan.q], [k, plan.k], [v, plan.v]] as const) {
    writeCanonical(t, engine.f32, at >> 2, plan.Dp);
  }
  writeRecords(plan, p, engine.i32, engine.f32, tileRows);
  const t1 = performance.now();
  await run("prepareKvInt8", plan.kvTable, plan.kvCount);
  const t2 = performance.now();
  await run("attendInt8", plan.attnTable, plan.attnCount);
  const t3 = performance.now();
  readCanonical(engine.f32, plan.out >> 2, { B, H, N, D }, plan.Dp, "f32", "HND");
  const t4 = performance.now();
  if (it < 3) continue; // warm-up: tier-up of the kernels and of this loop
  [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0].forEach((ms, i) => samples[phases[i]].push(ms));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`int8, ${threads} threads, B=${B} H=${H} N=${N} D=${D}`);
for (const ph of phases) console.log(`${ph.padEnd(14)} ${median(samples[ph]).toFixed(2).padStart(8)} ms`);
console.log(
  `end to end ${(flops / median(samples.total) / 1e6).toFixed(1)} GFLOPS, attention alone ${
    (flops / median(samples.attention) / 1e6).toFixed(1)
  }`,
);
pool.dispose();
