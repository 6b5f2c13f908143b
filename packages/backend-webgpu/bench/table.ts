// The README's WebGPU table, for Deno as one bundled file (no node_modules): SageAttention through the public
// `attention()` with device-resident webgpu tensors and one reused `out`, and this backend's exact f16 kernel on the
// same tensors and `out` (the public API has no exact kernel, so it is called on the loaded backend with the same
// resolved problem). Two timings each: the median of calls each waited for on its own (`synchronize`), and the mean
// of calls queued back to back with one wait at the end (what a pipeline of calls sees; it also shows whether the
// runtime's wait adds a floor to the first).
//   deno bundle --sloppy-imports --platform=deno -o bench-out/table.js bench/table.ts
//   deno run -A table.js [--sizes 1024,4096,16384] [--causal-sizes 4096] [--h 32] [--d 128] [--iters 20]
//     [--warmup-ms 2000] [--no-exact]
// TOPS = 4·B·H·N²·D / t (÷2 causal). B = 1, f16 inputs and output, HND.
import {
  attention,
  dispose,
  encode16,
  getBackend,
  hostTensor,
  makeQKV,
  registerBackend,
  resolveProblem,
  synchronize,
  upload,
  type AttentionOptions,
  type DeviceTensor,
} from "@sageattn/core";
import { Effect } from "effect";
import { provider } from "../src/index.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? [];
const str = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const list = (name: string, dflt: string) => str(name, dflt).split(",").filter((x) => x !== "").map(Number);
const sizes = list("sizes", "1024,4096,16384");
const causalSizes = list("causal-sizes", args.includes("--sizes") ? "" : "4096");
const H = Number(str("h", "32")), D = Number(str("d", "128")), iters = Number(str("iters", "20"));
const warmupMs = Number(str("warmup-ms", "2000"));
const withExact = !args.includes("--no-exact");

registerBackend(provider);
const backend = await getBackend("webgpu");

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Timing {
  median: number;
  backToBack: number;
}

/** Milliseconds per call (median of `iters` waited for; mean of `iters` back to back), after a warm-up. */
async function time(call: () => Promise<unknown>): Promise<Timing> {
  const w0 = performance.now();
  for (let i = 0; i < 2 || performance.now() - w0 < warmupMs; i++) {
    await call();
    await synchronize("webgpu");
  }
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await call();
    await synchronize("webgpu");
    times.push(performance.now() - t0);
  }
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) await call();
  await synchronize("webgpu");
  return { median: median(times), backToBack: (performance.now() - t0) / iters };
}

interface Row {
  n: number;
  causal: boolean;
  sage: Timing;
  exact?: Timing;
}

async function measure(n: number, causal: boolean): Promise<Row> {
  const shape = [1, H, n, D] as const;
  const { q, k, v } = makeQKV({ B: 1, Hq: H, Hkv: H, Nq: n, Nk: n, D }, "gaussian", 7);
  const f16 = (x: Float32Array) => upload(hostTensor(encode16(x, "f16"), shape, { dtype: "f16" }), "webgpu");
  const [qd, kd, vd, out] = await Promise.all([f16(q), f16(k), f16(v), f16(new Float32Array(H * n * D))]);
  const options: AttentionOptions = { backend: "webgpu", causal, out };
  try {
    const sage = await time(() => attention(qd, kd, vd, options));
    let exact: Timing | undefined;
    if (withExact && backend.exactAttention) {
      const p = Effect.runSync(resolveProblem(qd, kd, vd, options));
      const run = backend.exactAttention;
      exact = await time(() => Effect.runPromise(run(p, qd, kd, vd)));
    }
    return { n, causal, sage, exact };
  } finally {
    for (const t of [qd, kd, vd, out] as DeviceTensor[]) t.dispose();
  }
}

const rows: Row[] = [];
for (const n of sizes) rows.push(await measure(n, false));
for (const n of causalSizes) rows.push(await measure(n, true));

const tops = (r: Row, ms: number) => (4 * H * r.n * r.n * D) / (r.causal ? 2 : 1) / (ms / 1e3) / 1e12;
const cell = (r: Row, ms: number | undefined) => (ms === undefined ? "—" : `${ms.toFixed(3)} ms, ${tops(r, ms).toFixed(1)} TOPS`);
const runtime = (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno ?? "?";
console.log(`device: ${backend.device}; deno ${runtime}; details ${JSON.stringify(backend.details)}`);
console.log(`B=1 H=${H} D=${D} f16, device tensors, reused out; ${iters} calls each way after the warm-up\n`);
console.log("| N | causal | SageAttention `attention()`, median synchronized | back to back | exact f16 kernel, median | back to back | sage / exact (median) |");
console.log("|---|---|---|---|---|---|---|");
for (const r of rows)
  console.log(
    `| ${r.n} | ${r.causal ? "yes" : "no"} | ${cell(r, r.sage.median)} | ${cell(r, r.sage.backToBack)} | ${cell(r, r.exact?.median)} | ` +
      `${cell(r, r.exact?.backToBack)} | ${r.exact ? `${(r.exact.median / r.sage.median).toFixed(2)}×` : "—"} |`,
  );
const plain = new Map(rows.filter((r) => !r.causal).map((r) => [r.n, r]));
for (const r of rows.filter((r) => r.causal)) {
  const base = plain.get(r.n);
  if (base) console.log(`\ncausal N=${r.n}: ${(tops(r, r.sage.median) / tops(base, base.sage.median)).toFixed(2)}× the non-causal TOPS (medians)`);
}
await dispose();
