// Peer benchmark: onnxruntime-web's WebGPU MultiHeadAttention (com.microsoft contrib op, fp16) in Deno, on the same
// WebGPU adapter our kernels use, with GPU-resident inputs and outputs so the timing holds no host copies.
//   deno run -A ort-webgpu-mha.js [--ort-dir DIR] [--build webgpu|all] [--shapes 1x32x4096x128,...] [--causal]
//     [--iters 20] [--check-rows 64] [--verbose]   (ort's verbose log: which EP each node was placed on)
// DIR holds onnxruntime-web's dist files (ort.<build>.min.mjs and the ort-wasm-simd-threaded.* .mjs/.wasm it loads);
// default: the folder this script is in. --build webgpu is ort's native WebGPU EP (asyncify wasm), --build all its
// JS-side EP (JSEP wasm); both are asked for as executionProviders ["webgpu"]. Each shape is BxHxNxD (…c: causal).
// Prints one JSON line per result; a failure (ort cannot initialise WebGPU, session creation, a run, a wrong answer)
// is a JSON line with "ok": false, the stage and the exact error, and the script exits 1.
import { accuracy, BOUNDS, encode16, makeQKV } from "@sageattn/core";
import { multiHeadAttentionModel } from "@sageattn/core/onnx";
import { gpuTensor, loadOrt, openWebGpuSession, type Ort, type OrtSession, type OrtTensor } from "./ort-web.ts";

/** What this script uses of Deno's globals (the repo has no Deno type package). */
declare const Deno: {
  readonly args: string[];
  readonly version: { deno: string };
  cwd(): string;
  exit(code: number): never;
};

const args = Deno.args;
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const build = opt("build", "webgpu");
const causalAll = args.includes("--causal");
const verbose = args.includes("--verbose");
const iters = Number(opt("iters", "20"));
const checkRows = Number(opt("check-rows", "64"));
// "BxHxNxD", with a trailing "c" for causal (--causal makes every shape causal).
const shapes = opt("shapes", "1x32x4096x128").split(",").map((s) => {
  const [B, H, N, D] = s.replace(/c$/, "").split("x").map(Number);
  return { B, H, N, D, causal: causalAll || s.endsWith("c") };
});

const base = { peer: "onnxruntime-web MultiHeadAttention", build, ep: "webgpu", runtime: `deno ${Deno.version.deno}` };
let version = "?";
let adapterName = "?";
const emit = (o: Record<string, unknown>) =>
  console.log(JSON.stringify({ ...base, version, adapter: adapterName, ...o }));
const message = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));
function fail(stage: string, e: unknown, extra: Record<string, unknown> = {}): never {
  emit({ ok: false, stage, error: message(e), ...extra });
  console.error(`FAILED (${stage}): onnxruntime-web ${build} WebGPU MHA: ${message(e)}`);
  Deno.exit(1);
}

// Loading ort and letting it create its WebGPU device: ort picks the adapter, features and limits it wants, and the
// input buffers are then made on that same device (a GPU buffer from another device would not be accepted).
let ort: Ort;
try {
  ({ ort, version } = await loadOrt(opt("ort-dir", "."), build, verbose));
} catch (e) {
  fail("load", e);
}

// ort's native EP makes its device with the first session (before that env.webgpu.device resolves to undefined), so
// the device is fetched once a session exists; a session that cannot be created at all is the WebGPU start failing.
let device: GPUDevice | undefined;
async function openSession(model: Uint8Array): Promise<OrtSession> {
  let opened: { session: OrtSession; device: GPUDevice };
  try {
    opened = await openWebGpuSession(ort, model, verbose);
  } catch (e) {
    if (!device) fail("webgpu-init", e);
    throw e;
  }
  if (!device) {
    try {
      device = opened.device;
      // GPUDevice.adapterInfo where the runtime has it, else the adapter ort kept.
      const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo ?? ort.env.webgpu.adapter?.info;
      adapterName = info
        ? `${info.description || info.device || "?"} (vendor ${info.vendor}${
          info.isFallbackAdapter ? ", fallback adapter" : ""
        })`
        : "?";
    } catch (e) {
      fail("webgpu-device", e);
    }
  }
  return opened.session;
}

/** f16 bits → number, for outputs that ort hands back as Uint16Array (when it does not use Float16Array). */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** HND f32 [B,H,N,D] → MHA's BSH [B,N,H·D] as f16 bits, plus the f16-rounded values the reference must use. */
function toBSH16(
  x: Float32Array,
  B: number,
  H: number,
  N: number,
  D: number,
): { bits: Uint16Array<ArrayBuffer>; values: Float32Array } {
  const bits = new Uint16Array(x.length);
  const tmp = new Float32Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        tmp.set(x.subarray(((b * H + h) * N + n) * D, ((b * H + h) * N + n + 1) * D));
        bits.set(encode16(tmp, "f16"), ((b * N + n) * H + h) * D);
      }
    }
  }
  return { bits, values: Float32Array.from(bits, halfToFloat) };
}

/** Exact attention (float64) of one query row of one head, from the f16 inputs in BSH layout. */
function referenceRow(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  b: number,
  h: number,
  i: number,
  H: number,
  N: number,
  D: number,
  causal: boolean,
): Float64Array {
  const stride = H * D, qo = (b * N + i) * stride + h * D, scale = 1 / Math.sqrt(D);
  const last = causal ? i : N - 1;
  const s = new Float64Array(last + 1);
  let max = -Infinity;
  for (let j = 0; j <= last; j++) {
    let dot = 0;
    const ko = (b * N + j) * stride + h * D;
    for (let c = 0; c < D; c++) dot += q[qo + c] * k[ko + c];
    s[j] = dot * scale;
    if (s[j] > max) max = s[j];
  }
  const out = new Float64Array(D);
  let sum = 0;
  for (let j = 0; j <= last; j++) {
    const p = Math.exp(s[j] - max);
    sum += p;
    const vo = (b * N + j) * stride + h * D;
    for (let c = 0; c < D; c++) out[c] += p * v[vo + c];
  }
  for (let c = 0; c < D; c++) out[c] /= sum;
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

let failed = false;
// Sessions are released only at the end: releasing ort's last session destroys its GPUDevice (the native EP does
// not preserve it), and the next session's device would then not be the one the input buffers were made on.
const sessions: OrtSession[] = [];
for (const { B, H, N, D, causal } of shapes) {
  const shape = { B, H, N, D, dtype: "f16", causal, io: "gpu-buffer" };
  let stage = "session";
  const buffers: GPUBuffer[] = [];
  try {
    const session = await openSession(
      multiHeadAttentionModel({ heads: H, headDim: D, scale: 1 / Math.sqrt(D), causal, dtype: "f16" }),
    );
    sessions.push(session);
    const dev = device!;
    // The same tensors as bench.ts (gaussian, seed 7), transposed into MHA's [B, N, H·D].
    stage = "inputs";
    const qkv = makeQKV({ B, Hq: H, Hkv: H, Nq: N, Nk: N, D }, "gaussian", 7);
    const [q, k, v] = [qkv.q, qkv.k, qkv.v].map((x) => toBSH16(x, B, H, N, D));
    const dims = [B, N, H * D];
    const upload = (bits: Uint16Array<ArrayBuffer>) => gpuTensor(ort, dev, bits, dims, buffers);
    const feeds = { query: upload(q.bits), key: upload(k.bits), value: upload(v.bits) };
    await dev.queue.onSubmittedWorkDone();

    // One run is session.run plus the GPU finishing it: ort returns once the work is submitted, not done.
    stage = "run";
    const once = async (keep = false) => {
      const out = await session.run(feeds);
      await dev.queue.onSubmittedWorkDone();
      if (keep) return out.output;
      out.output.dispose();
    };
    // Warm-up: shaders compiled, buffers pooled, clocks up (at least three runs and two seconds, as bench.ts does).
    const w0 = performance.now();
    for (let i = 0; i < 3 || performance.now() - w0 < 2000; i++) await once();
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await once();
      times.push(performance.now() - t0);
    }
    // Also back to back with one wait at the end, the way bench.ts times our kernels (queued work may overlap).
    const outs: OrtTensor[] = [];
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) outs.push((await session.run(feeds)).output);
    await dev.queue.onSubmittedWorkDone();
    const backToBack = (performance.now() - t0) / iters;
    for (const o of outs) o.dispose();

    // The answer of one more run, checked on sampled rows against float64 exact attention of the same f16 inputs.
    stage = "check";
    const out = (await once(true))!;
    const raw = await out.getData();
    const got = raw instanceof Uint16Array ? Float32Array.from(raw, halfToFloat) : Float32Array.from(raw);
    out.dispose();
    const rows = Math.min(checkRows, B * H * N);
    const gotRows = new Float64Array(rows * D), refRows = new Float64Array(rows * D);
    for (let r = 0; r < rows; r++) {
      // Spread over batches, heads and positions; the first and last query rows are always among them.
      const flat = rows === 1 ? 0 : Math.round((r * (B * H * N - 1)) / (rows - 1));
      const b = Math.floor(flat / (H * N)), h = Math.floor(flat / N) % H, i = r === rows - 1 ? N - 1 : flat % N;
      refRows.set(referenceRow(q.values, k.values, v.values, b, h, i, H, N, D, causal), r * D);
      const o = (b * N + i) * H * D + h * D;
      gotRows.set(got.subarray(o, o + D), r * D);
    }
    const acc = accuracy(gotRows, refRows);
    // DESIGN's accuracy bounds; an exact fp16 kernel is well inside them, so missing them means a wrong answer.
    const ok = acc.nonFinite === 0 && acc.cosine >= BOUNDS.exact.minCosine && acc.relL1 <= BOUNDS.exact.maxRelL1;
    const flops = (4 * B * H * N * N * D) / (causal ? 2 : 1);
    const tf = (ms: number) => +(flops / (ms / 1e3) / 1e12).toPrecision(4);
    const med = median(times);
    const check = {
      rows,
      cosine: +acc.cosine.toFixed(6),
      relL1: +acc.relL1.toExponential(3),
      maxAbs: +acc.maxAbs.toExponential(3),
      nonFinite: acc.nonFinite,
    };
    // A wrong answer gets no speed: only the check and the failure.
    if (ok) {
      emit({
        ok,
        ...shape,
        iters,
        median_ms: +med.toFixed(3),
        min_ms: +Math.min(...times).toFixed(3),
        back_to_back_ms: +backToBack.toFixed(3),
        tflops_median: tf(med),
        tflops_back_to_back: tf(backToBack),
        check,
      });
    } else {
      emit({ ok, ...shape, stage: "check", error: "output does not match the float64 reference", check });
      console.error(`FAILED (check) B=${B} H=${H} N=${N} D=${D}: cos ${check.cosine} relL1 ${check.relL1}`);
      failed = true;
    }
  } catch (e) {
    emit({ ok: false, ...shape, stage, error: message(e) });
    console.error(`FAILED (${stage}) B=${B} H=${H} N=${N} D=${D}: ${message(e)}`);
    failed = true;
  } finally {
    for (const b of buffers) b.destroy();
  }
}
for (const s of sessions) await s.release().catch(() => {});
if (failed) Deno.exit(1);
