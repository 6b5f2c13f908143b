// The README's WebGPU table, for Deno as one bundled file (no node_modules): SageAttention through the public
// `attention()` with device-resident webgpu tensors and one reused `out`, and this backend's exact f16 kernel on the
// same tensors and `out` (the public API has no exact kernel, so it is called on the loaded backend with the same
// resolved problem).
// Per call: calls queued back to back, each batch waited for once, the wait cancelled by timing batches of K and 2K
// calls (bench/timing.ts: Deno's wait returns on a poll tick about 11 ms after it is asked, so one batch divided by
// K would carry w / K); K is chosen so a batch lasts about `--batch-ms`. The table also shows one call waited for on
// its own ("one call, waited", the median of `--iters`; that is the tick, not the call) and the batch of K divided
// by K ("wait in", the way the tables before 2026-12-04 were made).
//   deno bundle --sloppy-imports --platform=deno -o bench-out/table.js bench/table.ts
//   deno run -A table.js [--sizes 1024,4096,16384] [--causal-sizes 4096] [--h 32] [--d 128] [--iters 10]
//     [--batches 5] [--batch-ms 300] [--warmup-ms 2000] [--no-exact] [--profile] [--subgroups]
//     [--ort-dir DIR [--build webgpu|all] [--ort-max-n 4096]] [--sweep [--sweep-top 6] [--sweep-tiles a,b]]
// --profile: per row, after the timings, GPU milliseconds per kernel (timestamp queries, one pass per kernel) of one
// SageAttention call on the same tensors and out, through a second backend on the same GPUDevice; its shares are
// what to read (profiled calls run one pass per dispatch and wait for their stamps, so clocks and totals differ).
// --subgroups: per row, SageAttention also on a second backend made with `subgroups: true` (its own GPUDevice with
// the feature, copies of the tensors and out), called on the backend directly, timed the same way and its `out`
// checked like the table's; printed under the table after a line saying whether the subgroup variant ran (and the
// check's subgroup size) or, if not, subgroupCheck's reason (details.subgroups), then its ratio to the default path.
// --ort-dir DIR (a folder with onnxruntime-web's dist files, see ort-web.ts; --build webgpu|all, default webgpu, the
// native EP): per row up to --ort-max-n (default 4096), onnxruntime-web's WebGPU MultiHeadAttention (fp16, BSH
// [1, N, H·D] GPUBuffers in, output left on the GPU; causal rows with `unidirectional`, which the native EP honours)
// on the same f16 inputs, timed the same way on ort's own GPUDevice: session.run queued back to back (it returns
// once the work is submitted; no read-back), the slope between batches of K and 2K calls. Each includes ort's host
// side per run (wasm, its command encoding), as ours includes `attention()`'s. Its output is checked like ours.
// Without --ort-dir the table says ort was skipped.
// --sweep: instead of the table, every INT8 kernel configuration at --sizes (default 4096,16384), see sweep.ts;
// the fastest --sweep-top (default 6) again in long batches and at the later sizes; --sweep-tiles a,b,… only those.
// TOPS = 4·B·H·N²·D / t (÷2 causal). B = 1, f16 inputs and output, HND. After SageAttention's timing its `out` is
// checked on 16 sampled rows against float64 exact attention of the same f16 inputs (last column).
import {
  accuracy,
  attention,
  type AttentionOptions,
  BOUNDS,
  type DeviceTensor,
  dispose,
  download,
  encode16,
  getBackend,
  type HostTensor,
  hostTensor,
  makeQKV,
  registerBackend,
  resolveProblem,
  synchronize,
  upload,
} from "@sageattn/core";
import { multiHeadAttentionModel } from "@sageattn/core/onnx";
import { Cause, Effect, Exit } from "effect";
import { makeWith, provider } from "../src/index.ts";
import { bshToHnd, gpuTensor, hndToBsh, loadOrt, openWebGpuSession, type OrtSession } from "./ort-web.ts";
import { sweep } from "./sweep.ts";
import { median, type PerCall, timePerCall } from "./timing.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? [];
const str = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const list = (name: string, dflt: string) => str(name, dflt).split(",").filter((x) => x !== "").map(Number);
const sizes = list("sizes", "1024,4096,16384");
const causalSizes = list("causal-sizes", args.includes("--sizes") ? "" : "4096");
const H = Number(str("h", "32")), D = Number(str("d", "128")), iters = Number(str("iters", "10"));
const batches = Number(str("batches", "5")), batchMs = Number(str("batch-ms", "300"));
const warmupMs = Number(str("warmup-ms", "2000"));
const withExact = !args.includes("--no-exact");
const withProfile = args.includes("--profile");
const withSubgroups = args.includes("--subgroups");
const ortDirArg = args.includes("--ort-dir") ? str("ort-dir", ".") : undefined;
const ortMaxN = Number(str("ort-max-n", "4096"));

if (args.includes("--sweep")) {
  const only = args.includes("--sweep-tiles") ? str("sweep-tiles", "").split(",") : undefined;
  const ok = await sweep({
    sizes: list("sizes", "4096,16384"),
    h: H,
    d: D,
    top: Number(str("sweep-top", "6")),
    only,
  });
  (globalThis as unknown as { Deno: { exit(code: number): never } }).Deno.exit(ok ? 0 : 1);
}

registerBackend(provider);
const peer = ortDirArg === undefined ? undefined : await loadOrt(ortDirArg, str("build", "webgpu"));
const backend = await getBackend("webgpu");

interface Timing extends PerCall {
  /** Milliseconds of one call waited for on its own (the runtime's wait included). */
  waited: number;
}

const wait = () => synchronize("webgpu");

/** See the header: back to back (timing.ts), then `iters` single calls each waited for. */
async function time(call: () => Promise<unknown>, until: () => Promise<void> = wait): Promise<Timing> {
  const timed = await timePerCall(call, until, { batches, batchMs, warmupMs });
  const single: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await call();
    await until();
    single.push(performance.now() - t0);
  }
  return { ...timed, waited: median(single) };
}

interface Row {
  n: number;
  causal: boolean;
  sage: Timing;
  exact?: Timing;
  /** SageAttention's `out` against float64 exact attention on sampled rows. */
  check: { rows: number; cosine: number; relL1: number };
  /** --profile: GPU milliseconds per kernel of one SageAttention call. */
  stages?: Record<string, number>;
  /** --subgroups: SageAttention on a backend asked for subgroups, whether it got them, and its output's check. */
  subgroups?: { timing?: Timing; detail: string; check?: Row["check"]; error?: string };
  /** --ort-dir: onnxruntime-web's MHA on the same inputs, or why it has no time. */
  ort?: OrtResult;
}

interface OrtResult {
  timing?: PerCall;
  check?: Row["check"];
  /** Not run (N over --ort-max-n), or what failed. */
  skipped?: string;
  error?: string;
}

// Released at the end only: releasing ort's last session destroys its GPUDevice (see ort-webgpu-mha.ts).
const ortSessions: OrtSession[] = [];

/** onnxruntime-web's WebGPU MHA on the f16 inputs (HND bits of q, k, v), timed and checked (see the header). */
async function ortRow(bits: Uint16Array[], n: number, causal: boolean): Promise<OrtResult | undefined> {
  if (!peer) return undefined;
  if (n > ortMaxN) return { skipped: `N over --ort-max-n ${ortMaxN}` };
  const ort = peer.ort;
  const buffers: GPUBuffer[] = [];
  try {
    const model = multiHeadAttentionModel({ heads: H, headDim: D, scale: 1 / Math.sqrt(D), causal, dtype: "f16" });
    const { session, device } = await openWebGpuSession(ort, model);
    ortSessions.push(session);
    const [query, key, value] = bits.map((b) => gpuTensor(ort, device, hndToBsh(b, H, n, D), [1, n, H * D], buffers));
    const feeds = { query, key, value };
    const run = async () => {
      const r = await session.run(feeds);
      for (const t of Object.values(r)) t.dispose();
    };
    const timing = await timePerCall(run, () => device.queue.onSubmittedWorkDone(), { batches, batchMs, warmupMs });
    const r = await session.run(feeds);
    const raw = await r.output.getData();
    for (const t of Object.values(r)) t.dispose();
    const bsh = raw instanceof Uint16Array ? raw : (encode16(Float32Array.from(raw), "f16") as Uint16Array);
    return { timing, check: checkRows(bits[0], bits[1], bits[2], bshToHnd(bsh, H, n, D), n, causal) };
  } catch (e) {
    return { error: e instanceof Error ? `${e.name}: ${e.message.split("\n")[0]}` : String(e) };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

/** SageAttention on a second backend asked for subgroups (own device, copies of the tensors and out), timed. */
async function withSubgroupsOf(
  inputs: HostTensor[],
  outHost: HostTensor,
  causal: boolean,
): Promise<NonNullable<Row["subgroups"]>> {
  const made = await Effect.runPromiseExit(makeWith({ subgroups: true }));
  if (Exit.isFailure(made)) {
    return { detail: "?", error: `backend not made: ${Cause.pretty(made.cause).split("\n")[0]}` };
  }
  const sg = made.value;
  try {
    const [q, k, v, out] = await Promise.all([...inputs, outHost].map((t) => Effect.runPromise(sg.upload(t))));
    const p = Effect.runSync(resolveProblem(q, k, v, { causal, out }));
    const device = sg.gpuDevice();
    const timing = await time(
      () => Effect.runPromise(sg.attention(p, q, k, v)),
      () => device.queue.onSubmittedWorkDone(),
    );
    const bits = (t: HostTensor) => t.data as Uint16Array;
    const got = bits(await Effect.runPromise(sg.download(out)));
    const n = inputs[0].shape[2];
    const check = checkRows(bits(inputs[0]), bits(inputs[1]), bits(inputs[2]), got, n, causal);
    for (const t of [q, k, v, out]) t.dispose();
    return { timing, detail: sg.details.subgroups ?? "?", check };
  } catch (e) {
    // A pipeline the device's compiler refuses, say: reported in the table's output rather than ending the run.
    return { detail: sg.details.subgroups ?? "?", error: e instanceof Error ? e.message.split("\n")[0] : String(e) };
  } finally {
    await Effect.runPromise(sg.dispose);
  }
}

/**
 * GPU milliseconds per kernel of SageAttention on copies of these tensors and out (the third of three calls), on a
 * second backend with timestamp queries (its own GPUDevice: the feature is asked for at device creation), or
 * undefined where the adapter has none.
 */
async function stagesOf(
  inputs: HostTensor[],
  outHost: HostTensor,
  causal: boolean,
): Promise<Record<string, number> | undefined> {
  const prof = await Effect.runPromise(makeWith({ profile: true }));
  try {
    if (!prof.gpuDevice().features.has("timestamp-query")) return undefined;
    const [q, k, v, out] = await Promise.all([...inputs, outHost].map((t) => Effect.runPromise(prof.upload(t))));
    const p = Effect.runSync(resolveProblem(q, k, v, { causal, out }));
    for (let i = 0; i < 3; i++) await Effect.runPromise(prof.attention(p, q, k, v));
    for (const t of [q, k, v, out]) t.dispose();
    return prof.lastKernelTimes();
  } finally {
    await Effect.runPromise(prof.dispose);
  }
}

const ROWS_CHECKED = 16;

/** f16 bits to a number. */
function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Float64 exact attention of sampled query rows (heads and positions spread out, the last row included) from the
 * f16 inputs the kernels saw, against those rows of the f16 output; all tensors [1, H, n, D] contiguous.
 */
function checkRows(q: Uint16Array, k: Uint16Array, v: Uint16Array, got: Uint16Array, n: number, causal: boolean) {
  const want: number[] = [];
  const have: number[] = [];
  for (let r = 0; r < ROWS_CHECKED; r++) {
    const flat = Math.round((r * (H * n - 1)) / (ROWS_CHECKED - 1));
    const h = Math.floor(flat / n), i = flat % n;
    const last = causal ? i : n - 1;
    const qi = Array.from({ length: D }, (_, c) => half(q[(h * n + i) * D + c]));
    const s = new Float64Array(last + 1);
    let max = -Infinity;
    for (let j = 0; j <= last; j++) {
      let dot = 0;
      for (let c = 0; c < D; c++) dot += qi[c] * half(k[(h * n + j) * D + c]);
      s[j] = dot / Math.sqrt(D);
      max = Math.max(max, s[j]);
    }
    const o = new Float64Array(D);
    let sum = 0;
    for (let j = 0; j <= last; j++) {
      const w = Math.exp(s[j] - max);
      sum += w;
      for (let c = 0; c < D; c++) o[c] += w * half(v[(h * n + j) * D + c]);
    }
    for (let c = 0; c < D; c++) {
      want.push(o[c] / sum);
      have.push(half(got[(h * n + i) * D + c]));
    }
  }
  const a = accuracy(have, want);
  return { rows: ROWS_CHECKED, cosine: a.cosine, relL1: a.relL1 };
}

async function measure(n: number, causal: boolean): Promise<Row> {
  const shape = [1, H, n, D] as const;
  const { q, k, v } = makeQKV({ B: 1, Hq: H, Hkv: H, Nq: n, Nk: n, D }, "gaussian", 7);
  const host = (x: Float32Array) => hostTensor(encode16(x, "f16"), shape, { dtype: "f16" });
  const [qh, kh, vh] = [host(q), host(k), host(v)];
  const outHost = host(new Float32Array(H * n * D));
  const [qd, kd, vd, out] = await Promise.all([qh, kh, vh, outHost].map((t) => upload(t, "webgpu")));
  const options: AttentionOptions = { backend: "webgpu", causal, out };
  try {
    const sage = await time(() => attention(qd, kd, vd, options));
    const bits = (t: HostTensor) => t.data as Uint16Array;
    const check = checkRows(bits(qh), bits(kh), bits(vh), bits((await download(out)) as HostTensor), n, causal);
    let exact: Timing | undefined;
    if (withExact && backend.exactAttention) {
      const p = Effect.runSync(resolveProblem(qd, kd, vd, options));
      const run = backend.exactAttention;
      exact = await time(() => Effect.runPromise(run(p, qd, kd, vd)));
    }
    const stages = withProfile ? await stagesOf([qh, kh, vh], outHost, causal) : undefined;
    const subgroups = withSubgroups ? await withSubgroupsOf([qh, kh, vh], outHost, causal) : undefined;
    const ort = await ortRow([bits(qh), bits(kh), bits(vh)], n, causal);
    return { n, causal, sage, exact, check, stages, subgroups, ort };
  } finally {
    for (const t of [qd, kd, vd, out] as DeviceTensor[]) t.dispose();
  }
}

// Each row is also one JSON line on stderr as soon as it is measured: a run cut off by a time limit keeps its rows
// (the table below is printed only at the end).
const rows: Row[] = [];
for (const [n, causal] of [...sizes.map((n) => [n, false] as const), ...causalSizes.map((n) => [n, true] as const)]) {
  rows.push(await measure(n, causal));
  console.error(JSON.stringify(rows.at(-1)));
}

const tops = (r: Row, ms: number) => (4 * H * r.n * r.n * D) / (r.causal ? 2 : 1) / (ms / 1e3) / 1e12;
const cell = (
  r: Row,
  ms: number | undefined,
) => (ms === undefined ? "—" : `${ms.toFixed(3)} ms, ${tops(r, ms).toFixed(1)} TOPS`);
const runtime = (globalThis as { Deno?: { version: { deno: string } } }).Deno?.version.deno ?? "?";
console.log(`device: ${backend.device}; deno ${runtime}; details ${JSON.stringify(backend.details)}`);
console.log(
  `B=1 H=${H} D=${D} f16, device tensors, reused out; per call: median of ${batches} pairs of batches of K and 2K ` +
    `back-to-back calls, (T(2K) − T(K)) / K; an idle wait took ${rows[0]?.sage.idleWait.toFixed(2)} ms\n`,
);
console.log(
  peer
    ? `onnxruntime-web ${peer.version} (${str("build", "webgpu")}) from ${ortDirArg}, up to N = ${ortMaxN}: ` +
      `WebGPU MultiHeadAttention on its own GPUDevice, timed the same way\n`
    : "onnxruntime-web: skipped (no --ort-dir)\n",
);
// Outside BOUNDS.clearlyWrong against float64, an output is flagged whatever its speed.
const verdict = (c: Row["check"]) =>
  `cos ${c.cosine.toFixed(5)}, rel-L1 ${c.relL1.toExponential(1)}${
    c.cosine >= BOUNDS.clearlyWrong.minCosine && c.relL1 <= BOUNDS.clearlyWrong.maxRelL1 ? "" : " WRONG"
  }`;
const ortCell = (r: Row) => {
  const o = r.ort;
  if (!o) return "skipped";
  if (o.skipped || o.error) return o.skipped ?? `failed: ${o.error}`;
  return `${cell(r, o.timing!.perCall)} (K ${o.timing!.k}; ${verdict(o.check!)})`;
};
console.log(
  "| N | causal | SageAttention `attention()` | exact f16 kernel | sage / exact | ort-web WebGPU MHA | ort / sage | wait in: T(K) / K, sage / exact | one call, waited: sage / exact | K | sage vs float64 |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const ortMs = r.ort?.timing?.perCall;
  console.log(
    `| ${r.n} | ${r.causal ? "yes" : "no"} | ${cell(r, r.sage.perCall)} | ${cell(r, r.exact?.perCall)} | ` +
      `${r.exact ? `${(r.exact.perCall / r.sage.perCall).toFixed(2)}×` : "—"} | ${ortCell(r)} | ${
        ortMs === undefined ? "—" : `**${(ortMs / r.sage.perCall).toFixed(1)}×**`
      } | ${r.sage.withWait.toFixed(3)} / ${r.exact ? r.exact.withWait.toFixed(3) : "—"} ms | ${
        r.sage.waited.toFixed(2)
      } / ${r.exact ? r.exact.waited.toFixed(2) : "—"} ms | ` +
      `${r.sage.k} / ${r.exact?.k ?? "—"} | ${verdict(r.check)} (${r.check.rows} rows) |`,
  );
}
if (withSubgroups) {
  const made = rows.map((r) => r.subgroups!).find((sg) => sg.detail !== "?");
  const detail = made?.detail ?? `? (${rows[0]?.subgroups?.error})`;
  console.log(
    detail.startsWith("on")
      ? `\nSubgroup variant ON, it ran in the rows below unless they say FAILED (details.subgroups: ${detail}); ` +
        `SageAttention on that backend, called directly, same timing:`
      : `\nSubgroup variant OFF, it did not run: ${detail.replace(/^off: /, "")}. The rows below time the ` +
        `workgroup-memory path again on a second device:`,
  );
  for (const r of rows) {
    const sg = r.subgroups!;
    const at = `N=${r.n}${r.causal ? " causal" : ""}`;
    if (!sg.timing || !sg.check) {
      console.log(`${at}: FAILED: ${sg.error}; subgroups ${sg.detail}`);
      continue;
    }
    console.log(
      `${at}: ${cell(r, sg.timing.perCall)} (wait in ${sg.timing.withWait.toFixed(3)} ms), ${
        (r.sage.perCall / sg.timing.perCall).toFixed(3)
      }× the default path's speed; ${verdict(sg.check)}; subgroups ${sg.detail}`,
    );
  }
}
if (withProfile) {
  console.log("\nGPU time per kernel, one profiled SageAttention call (timestamp queries):");
  for (const r of rows) {
    const st = r.stages;
    const total = st ? Object.values(st).reduce((a, x) => a + x, 0) : 0;
    console.log(
      `N=${r.n}${r.causal ? " causal" : ""}: ${
        st
          ? `${
            Object.entries(st).map(([k, ms]) => `${k} ${ms.toFixed(3)} ms (${((100 * ms) / total).toFixed(0)} %)`)
              .join(", ")
          }; sum ${total.toFixed(3)} ms`
          : "no timestamp queries on this device"
      }`,
    );
  }
}
const plain = new Map(rows.filter((r) => !r.causal).map((r) => [r.n, r]));
for (const r of rows.filter((r) => r.causal)) {
  const base = plain.get(r.n);
  if (base) {
    console.log(
      `\ncausal N=${r.n}: ${(tops(r, r.sage.perCall) / tops(base, base.sage.perCall)).toFixed(2)}× the non-causal TOPS`,
    );
  }
}
for (const session of ortSessions) await session.release().catch(() => {});
await dispose();
