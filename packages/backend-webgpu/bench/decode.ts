// Decode with a KV cache (issue 14), for Deno as one bundled file: per-step latency of the webgpu cache through the
// public `createKvCache` (device-resident K/V rows and queries, one reused device `out`), beside onnxruntime-web's
// WebGPU MultiHeadAttention with past K/V (the peer) on the same inputs.
//   node scripts/bundle-wgsl.mjs && deno bundle --sloppy-imports --platform=deno -o bench-out/decode.js bench/decode.ts
//   deno run -A bench-out/decode.js [--nk 1024,4096,32768] [--nq 1,4] [--h 32] [--hkv 8] [--d 128] [--steps 64]
//     [--batches 5] [--batch-ms 200] [--warmup-ms 1000] [--ort-dir DIR] [--build webgpu|all]
// Without --ort-dir (a folder with onnxruntime-web's dist files, as for ort-webgpu-mha.ts) the peer is skipped.
// Per call: calls queued back to back, each batch waited for once (synchronize), the wait cancelled by timing batches
// of K and 2K calls (bench/timing.ts: Deno's wait returns on a poll tick about 11 ms after it is asked; the earlier
// tables divided one batch by K, which at the K = 4 the appends got read as 3 ms per append); "wait in" is that way.
// Per configuration (B = 1, f16, HND; causal when Nq > 1, bottom-right):
//   attend: one cache filled to exactly Nk rows, `attend` repeated.
//   append: Nq rows appended on a second cache from Nk rows on (an append re-quantizes one block). The new rows are
//     views (adopt) into one GPUBuffer of `--steps`·Nq rows per K and V, as a model writing its new K/V into one
//     buffer would pass them; when a batch would pass the cache's capacity (Nk + steps·Nq), the cache is made and
//     prefilled again before it, untimed.
//   step: append + attend, one after the other, the same way (so Nk grows by up to steps·Nq).
//   ort: session.run of MultiHeadAttention with past_key/past_value of Nk − Nq rows and the Nq new rows, its output
//     and present K/V left on the GPU, timed like attend. MHA has no GQA: its 32 kv heads are the 8 repeated (the
//     math is the same; ort reads 4× the K/V bytes, and copies past into present every step, as MHA must).
// Accuracy: both outputs against float64 exact attention of the same f16 inputs, and against each other (rel-L1).
import { Effect } from "effect";
import {
  accuracy,
  createKvCache,
  type DeviceTensor,
  dispose,
  download,
  encode16,
  type HostTensor,
  hostTensor,
  type KvCache,
  makeQKV,
  synchronize,
  upload,
} from "@sageattn/core";
import { multiHeadAttentionModel } from "@sageattn/core/onnx";
import { provider, type WebGPUBackend } from "../src/index.ts";
import { getBackend, registerBackend } from "@sageattn/core";
import { gpuTensor, loadOrt, openWebGpuSession, type OrtSession } from "./ort-web.ts";
import { timePerCall } from "./timing.ts";

declare const Deno: { readonly args: string[]; readonly version: { deno: string }; cwd(): string };

const args = Deno.args;
const str = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const list = (name: string, dflt: string) => str(name, dflt).split(",").filter((x) => x !== "").map(Number);
const nks = list("nk", "1024,4096,32768");
const nqs = list("nq", "1,4");
const H = Number(str("h", "32")), HKV = Number(str("hkv", "8")), D = Number(str("d", "128"));
const batches = Number(str("batches", "5"));
// Appends of room per cache (steps·Nq rows past Nk): a batch of 2K appends must fit, so K is at most steps / 2.
const steps = Math.max(Number(str("steps", "1536")), 24);
const batchMs = Number(str("batch-ms", "200")), warmupMs = Number(str("warmup-ms", "1000"));
const ortDirArg = args.includes("--ort-dir") ? str("ort-dir", ".") : undefined;
const build = str("build", "webgpu");

registerBackend(provider);

const timing = { batches, batchMs, warmupMs };

const f16 = (x: Float32Array, shape: readonly [number, number, number, number]) =>
  hostTensor(encode16(x, "f16"), shape, { dtype: "f16" });

/** Rows [r0, r1) of every head of a canonical [1, heads, n, D] array. */
function rowsOf(src: Float32Array, heads: number, n: number, r0: number, r1: number): Float32Array {
  const out = new Float32Array(heads * (r1 - r0) * D);
  for (let h = 0; h < heads; h++) out.set(src.subarray((h * n + r0) * D, (h * n + r1) * D), h * (r1 - r0) * D);
  return out;
}

function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Float64 exact attention of every query row over the first nk rows of the f16-rounded inputs, [H, nq, D]. */
function exactOf(x: Inputs, nk: number, nq: number): Float64Array {
  const r16 = (a: Float32Array) => Float32Array.from(encode16(a, "f16") as Uint16Array, half);
  const [q, k, v] = [r16(x.q), r16(x.k), r16(x.v)];
  const out = new Float64Array(H * nq * D);
  const s = new Float64Array(nk);
  for (let h = 0; h < H; h++) {
    const kv = Math.floor(h / (H / HKV));
    for (let i = 0; i < nq; i++) {
      const last = nq > 1 ? i + nk - nq : nk - 1;
      let max = -Infinity;
      for (let j = 0; j <= last; j++) {
        let dot = 0;
        for (let c = 0; c < D; c++) dot += q[(h * nq + i) * D + c] * k[(kv * x.total + j) * D + c];
        s[j] = dot / Math.sqrt(D);
        max = Math.max(max, s[j]);
      }
      let sum = 0;
      for (let j = 0; j <= last; j++) {
        const w = Math.exp(s[j] - max);
        sum += w;
        for (let c = 0; c < D; c++) out[(h * nq + i) * D + c] += w * v[(kv * x.total + j) * D + c];
      }
      for (let c = 0; c < D; c++) out[(h * nq + i) * D + c] /= sum;
    }
  }
  return out;
}

interface Inputs {
  readonly q: Float32Array; // [1, H, nq, D]
  readonly k: Float32Array; // [1, HKV, total, D]
  readonly v: Float32Array;
  readonly total: number;
}

interface Result {
  nk: number;
  nq: number;
  /** Milliseconds per call, wait cancelled (timing.ts), and T(K) / K with the wait in. */
  attend: number;
  append: number;
  step: number;
  attendWithWait: number;
  appendWithWait: number;
  stepWithWait: number;
  /** Calls per shorter batch: attend, append, step. */
  k: [number, number, number];
  ort?: number;
  ortError?: string;
  relL1VsOrt?: number;
  /** rel-L1 against float64 exact attention of the f16 inputs (ours, ort). */
  exact: number;
  ortExact?: number;
  out: Float32Array; // our attend output at Nk, canonical [H, nq, D]
}

async function ours(x: Inputs, nk: number, nq: number): Promise<Result> {
  const causal = nq > 1;
  const backend = (await getBackend("webgpu")) as WebGPUBackend;
  const device = backend.gpuDevice();
  const dev = (data: Float32Array, heads: number, n: number) => upload(f16(data, [1, heads, n, D]), "webgpu");
  const make = (capacity: number): Promise<KvCache> =>
    createKvCache({ backend: "webgpu", batch: 1, headsKv: HKV, headDim: D, capacity, dtype: "f16" });
  const q = await dev(x.q, H, nq);
  const out = await dev(new Float32Array(H * nq * D), H, nq);
  const prefill = [
    await dev(rowsOf(x.k, HKV, x.total, 0, nk), HKV, nk),
    await dev(rowsOf(x.v, HKV, x.total, 0, nk), HKV, nk),
  ];
  // The rows appended after the prefill, [1, HKV, steps·nq, D] f16 in one GPUBuffer each; step s appends a view.
  const room = steps * nq;
  const buffers: GPUBuffer[] = [];
  const rowsBuffer = (src: Float32Array) => {
    const bits = encode16(rowsOf(src, HKV, x.total, nk, nk + room), "f16") as Uint16Array<ArrayBuffer>;
    const b = device.createBuffer({ size: bits.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, bits);
    buffers.push(b);
    return b;
  };
  const [kRows, vRows] = [rowsBuffer(x.k), rowsBuffer(x.v)];
  const view = (b: GPUBuffer, s: number) =>
    Effect.runPromise(backend.adopt(b, {
      dtype: "f16",
      shape: [1, HKV, nq, D],
      strides: [HKV * room * D, room * D, D, 1],
      offset: s * nq * D,
    }));
  const stepRows: DeviceTensor[][] = [];
  for (let s = 0; s < steps; s++) stepRows.push([await view(kRows, s), await view(vRows, s)]);
  const wait = () => synchronize("webgpu");
  try {
    // attend at exactly Nk rows.
    const a = await make(nk);
    await a.append(prefill[0], prefill[1]);
    const attend = await timePerCall(() => a.attend(q, { causal, out }), wait, timing);
    const got = (await download(out)) as HostTensor;
    const outF32 = Float32Array.from(got.data as Uint16Array, half);
    await a.dispose();
    // append, then step, each on a cache from Nk rows on, made again (untimed) when a batch would not fit.
    const timeSteps = async (withAttend: boolean) => {
      let c: KvCache | undefined;
      let s = 0;
      const fresh = async () => {
        await c?.dispose();
        c = await make(nk + room);
        await c.append(prefill[0], prefill[1]);
        s = 0;
        await wait();
      };
      const timed = await timePerCall(
        async () => {
          await c!.append(stepRows[s][0], stepRows[s][1]);
          s++;
          if (withAttend) await c!.attend(q, { causal, out });
        },
        wait,
        {
          ...timing,
          maxK: Math.floor(steps / 2),
          before: async (calls) => {
            if (c === undefined || s + calls > steps) await fresh();
          },
        },
      );
      await c?.dispose();
      return timed;
    };
    const append = await timeSteps(false);
    const step = await timeSteps(true);
    return {
      nk,
      nq,
      attend: attend.perCall,
      append: append.perCall,
      step: step.perCall,
      attendWithWait: attend.withWait,
      appendWithWait: append.withWait,
      stepWithWait: step.withWait,
      k: [attend.k, append.k, step.k],
      out: outF32,
      exact: accuracy(outF32, exactOf(x, nk, nq)).relL1,
    };
  } finally {
    for (const t of [q, out, ...prefill]) t.dispose();
    for (const b of buffers) b.destroy();
  }
}

// ---- the onnxruntime-web peer (ort-web.ts loads it; see ort-webgpu-mha.ts for how the repo drives ort web) ----
const loaded = ortDirArg === undefined ? undefined : await loadOrt(ortDirArg, build);
const ort = loaded?.ort;
const ortVersion = loaded?.version ?? "-";
const sessions: OrtSession[] = [];

/** [1, heads, n, D] canonical rows (kv heads repeated to H for MHA) as f16 bits in BSH [1, n, H·D] or BNSH [1, H, n, D]. */
function ortBits(
  x: Float32Array,
  heads: number,
  n: number,
  r0: number,
  r1: number,
  bsh: boolean,
): Uint16Array<ArrayBuffer> {
  const rep = H / heads;
  const rows = r1 - r0;
  const out = new Uint16Array(H * rows * D);
  for (let h = 0; h < H; h++) {
    for (let r = 0; r < rows; r++) {
      const src = x.subarray(((Math.floor(h / rep) * n) + r0 + r) * D, ((Math.floor(h / rep) * n) + r0 + r + 1) * D);
      out.set(encode16(src, "f16") as Uint16Array, bsh ? (r * H + h) * D : (h * rows + r) * D);
    }
  }
  return out;
}

async function peer(x: Inputs, nk: number, nq: number): Promise<{ ms: number; out: Float32Array }> {
  const o = ort!;
  const { session, device } = await openWebGpuSession(
    o,
    multiHeadAttentionModel({
      heads: H,
      headDim: D,
      scale: 1 / Math.sqrt(D),
      causal: nq > 1,
      dtype: "f16",
      past: true,
    }),
  );
  sessions.push(session);
  const buffers: GPUBuffer[] = [];
  const gpu = (bits: Uint16Array<ArrayBuffer>, dims: number[]) => gpuTensor(o, device, bits, dims, buffers);
  const past = nk - nq;
  const feeds = {
    query: gpu(ortBits(x.q, H, nq, 0, nq, true), [1, nq, H * D]),
    key: gpu(ortBits(x.k, HKV, x.total, past, nk, true), [1, nq, H * D]),
    value: gpu(ortBits(x.v, HKV, x.total, past, nk, true), [1, nq, H * D]),
    past_key: gpu(ortBits(x.k, HKV, x.total, 0, past, false), [1, H, past, D]),
    past_value: gpu(ortBits(x.v, HKV, x.total, 0, past, false), [1, H, past, D]),
  };
  try {
    const run = async () => {
      const r = await session.run(feeds);
      for (const t of Object.values(r)) t.dispose();
    };
    const ms = (await timePerCall(run, () => device.queue.onSubmittedWorkDone(), timing)).perCall;
    const r = await session.run(feeds);
    const raw = await r.output.getData();
    for (const t of Object.values(r)) t.dispose();
    const bsh = raw instanceof Uint16Array ? Float32Array.from(raw, half) : Float32Array.from(raw);
    // BSH [1, nq, H·D] → [H, nq, D], as our output.
    const out = new Float32Array(H * nq * D);
    for (let i = 0; i < nq; i++) {
      for (let h = 0; h < H; h++) out.set(bsh.subarray((i * H + h) * D, (i * H + h + 1) * D), (h * nq + i) * D);
    }
    return { ms, out };
  } finally {
    for (const b of buffers) b.destroy();
  }
}

const results: Result[] = [];
for (const nk of nks) {
  for (const nq of nqs) {
    const total = nk + steps * nq;
    const raw = makeQKV({ B: 1, Hq: H, Hkv: HKV, Nq: nq, Nk: total, D }, "gaussian", 11);
    const x: Inputs = { q: raw.q, k: raw.k, v: raw.v, total };
    const r = await ours(x, nk, nq);
    if (ort) {
      try {
        const p = await peer(x, nk, nq);
        r.ort = p.ms;
        r.relL1VsOrt = accuracy(r.out, p.out).relL1;
        r.ortExact = accuracy(p.out, exactOf(x, nk, nq)).relL1;
      } catch (e) {
        r.ortError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      }
    }
    results.push(r);
    // Each row as it finishes (one JSON line on stderr), so a run cut short still says what it measured.
    const { out: _, ...row } = r;
    console.error(JSON.stringify(row));
  }
}

console.log(
  `deno ${Deno.version.deno}; onnxruntime-web ${ortVersion} (${
    ort ? build : "not run"
  }); B=1 H=${H} Hkv=${HKV} D=${D} f16; causal when Nq > 1`,
);
console.log(
  `per call: median of ${batches} pairs of batches of K and 2K back-to-back calls, (T(2K) − T(K)) / K (the wait ` +
    `cancelled); "wait in": T(K) / K; appends from Nk on, up to ${steps} per cache\n`,
);
console.log(
  "| Nk | Nq | attend | append | step (append + attend) | ort MHA with past | ort / attend | ort / step | wait in: attend, append, step | K: attend, append, step | rel-L1 vs exact: ours, ort | rel-L1 ours vs ort |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
const ms = (x: number | undefined) => (x === undefined ? "—" : `${(x * 1e3).toFixed(1)} µs`);
for (const r of results) {
  console.log(
    `| ${r.nk} | ${r.nq} | ${ms(r.attend)} | ${ms(r.append)} | ${ms(r.step)} | ${
      r.ort !== undefined ? ms(r.ort) : r.ortError ? `failed: ${r.ortError}` : "—"
    } | ` +
      `${r.ort !== undefined ? `${(r.ort / r.attend).toFixed(2)}×` : "—"} | ${
        r.ort !== undefined ? `${(r.ort / r.step).toFixed(2)}×` : "—"
      } | ${ms(r.attendWithWait)}, ${ms(r.appendWithWait)}, ${ms(r.stepWithWait)} | ${r.k.join(", ")} | ${
        r.exact.toExponential(1)
      }, ${r.ortExact?.toExponential(1) ?? "—"} | ${r.relL1VsOrt?.toExponential(1) ?? "—"} |`,
  );
}
for (const s of sessions) await s.release().catch(() => {});
await dispose();
