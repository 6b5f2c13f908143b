// Benchmark and accuracy check of the webgpu backend, for Deno (run as a single bundled file on the GPU machine):
//   deno run -A --sloppy-imports bench/bench.ts [--n 4096] [--h 32] [--d 128] [--causal] [--iters 10] [--profile]
//     [--batches 5] [--batch-ms 300]
//     [--check [--heavy]]   (accuracy against the oracles first; --heavy: only the heavy-tail distribution)
//     [--tiles 64x64r8,32x64r8,…]   (SageAttention once per forced tile, same device and tensors)
//     [--pv f32]   (SageAttention with P·V in f32 throughout instead of f16 per K block)  [--no-exact]
// Times SageAttention and this backend's exact f16 kernel on the same device tensors in the same run,
// end-to-end (smoothing, quantization and V conversion included) into one reused output tensor, calls back to back,
// the runtime's wait cancelled (timing.ts: batches of K and 2K calls, K at least --iters, each pair about
// --batch-ms long), TOPS = 4·B·H·Nq·Nk·D / t (÷2 causal).
import {
  accuracy,
  type AttentionOptions,
  BOUNDS,
  type DeviceTensor,
  type Distribution,
  DISTRIBUTIONS,
  encode16,
  exactReference,
  type HostTensor,
  hostTensor,
  makeQKV,
  resolveProblem,
  sageReference,
  toCanonicalF32,
} from "@sageattn/core";
import { checkOutput } from "@sageattn/core/conformance/check";
import { Effect } from "effect";
import { makeWith, type WebGPUBackend } from "../src/index.ts";
import { chooseTile, paddedHeadDim } from "../src/tiles.ts";
import { timePerCall } from "./timing.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? [];
const flag = (name: string) => args.includes(`--${name}`);
const str = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const num = (name: string, dflt: number) => Number(str(name, String(dflt)));

function f16Tensor(values: Float32Array, shape: [number, number, number, number]): HostTensor {
  return hostTensor(encode16(values, "f16"), shape, { dtype: "f16" });
}

async function timeIt(
  backend: WebGPUBackend,
  exact: boolean,
  q: DeviceTensor,
  k: DeviceTensor,
  v: DeviceTensor,
  options: AttentionOptions,
  iters: number,
): Promise<number> {
  // One output tensor for all calls, as a steady-state caller keeps one (no buffer is created per call).
  const out = await Effect.runPromise(
    backend.upload(hostTensor(
      new Uint16Array(q.shape.reduce((a, x) => a * x, 1)),
      q.shape,
      { dtype: "f16", layout: q.layout },
    )),
  );
  const p = Effect.runSync(resolveProblem(q, k, v, { ...options, out }));
  const run = exact ? backend.exactAttention! : backend.attention;
  const once = () => Effect.runPromise(run(p, q, k, v));
  // Warm-up of two seconds, so that the GPU's clocks are up before the timed calls (half a second was not enough
  // on the H200: the first configuration timed in a process could read twice as slow).
  const timed = await timePerCall(once, () => backend.gpuDevice().queue.onSubmittedWorkDone(), {
    batches: num("batches", 5),
    batchMs: num("batch-ms", 300),
    warmupMs: 2000,
    minK: iters,
  });
  out.dispose();
  return timed.perCall / 1000;
}

// The tile a kernel gets on this device, as "64x64r8" (what chooseTile picks, forced or not).
function tileName(backend: WebGPUBackend, kernel: "int8" | "exact", d: number, forced?: string): string {
  const t = chooseTile(
    kernel,
    paddedHeadDim(d),
    "f16",
    backend.gpuDevice().limits.maxComputeWorkgroupStorageSize,
    forced,
  );
  return t ? `${t.bq}x${t.bk}${kernel === "int8" ? `r${t.rq}` : ""}` : "none";
}

async function speed(backend: WebGPUBackend) {
  const B = num("b", 1), H = num("h", 32), N = num("n", 4096), D = num("d", 128), iters = num("iters", 10);
  const causal = flag("causal");
  const pvAccumulation = str("pv", "f16-block") === "f32" ? "f32" : "f16-block";
  const tiles = str("tiles", "").split(",").filter((t) => t !== "");
  const shape: [number, number, number, number] = [B, H, N, D];
  const { q, k, v } = makeQKV({ B, Hq: H, Hkv: H, Nq: N, Nk: N, D }, "gaussian", 7);
  const up = (t: HostTensor) => Effect.runPromise(backend.upload(t));
  const [qd, kd, vd] = await Promise.all([up(f16Tensor(q, shape)), up(f16Tensor(k, shape)), up(f16Tensor(v, shape))]);
  const ops = (4 * B * H * N * N * D) / (causal ? 2 : 1);
  const tops = (t: number) => `${(t * 1e3).toFixed(2)} ms = ${(ops / t / 1e12).toFixed(2)} TOPS`;
  const head = `speed B=${B} H=${H} N=${N} D=${D} f16 causal=${causal}`;
  // The exact kernel is timed before and after the SageAttention tiles; the faster of the two is the baseline.
  const timeExact =
    () => (flag("no-exact") ? Promise.resolve(Number.NaN) : timeIt(backend, true, qd, kd, vd, { causal }, iters));
  let tExact = await timeExact();
  console.log(`${head}: exact f16 [${tileName(backend, "exact", D)}] ${tops(tExact)}`);
  const sage: Array<[string, number]> = [];
  // Each forced tile on a backend of its own over the same GPUDevice (the tensors stay where they are).
  for (const tile of tiles.length > 0 ? tiles : [undefined]) {
    const b = tile ? await Effect.runPromise(makeWith({ device: backend.gpuDevice(), tile })) : backend;
    const tSage = await timeIt(b, false, qd, kd, vd, { causal, pvAccumulation }, iters);
    const name = `sage [${tileName(b, "int8", D, tile)}, P·V ${pvAccumulation}]`;
    console.log(`${head}: ${name} ${tops(tSage)}`);
    sage.push([name, tSage]);
    if (b !== backend) await Effect.runPromise(b.dispose);
  }
  if (!flag("no-exact")) {
    const again = await timeExact();
    console.log(`${head}: exact f16 [${tileName(backend, "exact", D)}] again ${tops(again)}`);
    tExact = Math.min(tExact, again);
  }
  for (const [name, t] of sage) {
    console.log(
      `${head}: ${name} ${tops(t)}; exact f16 (the faster run) ${tops(tExact)}; sage/exact speed-up ${
        (tExact / t).toFixed(2)
      }×`,
    );
  }
  if (flag("profile")) {
    // A second backend with timestamp queries: one pass per kernel, GPU time of each (not part of the timings above).
    const prof = await Effect.runPromise(makeWith({ profile: true, tile: tiles[0] }));
    const [qp, kp, vp] = await Promise.all([q, k, v].map((x) => Effect.runPromise(prof.upload(f16Tensor(x, shape)))));
    for (const exact of [false, true]) {
      const p = Effect.runSync(
        resolveProblem(qp, kp, vp, { causal, pvAccumulation: exact ? undefined : pvAccumulation }),
      );
      for (let i = 0; i < 2; i++) {
        ((await Effect.runPromise((exact ? prof.exactAttention! : prof.attention)(p, qp, kp, vp)))
          .output as DeviceTensor).dispose();
      }
      const times = prof.lastKernelTimes();
      const fmt = times
        ? Object.entries(times).map(([k, ms]) => `${k} ${ms.toFixed(3)} ms`).join(", ")
        : "no timestamp queries on this device";
      const kernel = times?.[exact ? "attention_exact" : "attention_int8"];
      console.log(
        `profile ${exact ? "exact" : "sage "}: ${fmt}${
          kernel ? ` (kernel alone ${(ops / (kernel / 1e3) / 1e12).toFixed(2)} TOPS)` : ""
        }`,
      );
    }
    await Effect.runPromise(prof.dispose);
  }
  for (const t of [qd, kd, vd]) t.dispose();
}

// Accuracy of SageAttention (on `sageBackend`, which may force a tile) and of the exact kernel (on `backend`).
async function check(backend: WebGPUBackend, sageBackend: WebGPUBackend) {
  const shapes = [
    { B: 1, Hq: 2, Hkv: 2, Nq: 512, Nk: 512, D: 128, causal: false },
    { B: 1, Hq: 4, Hkv: 2, Nq: 300, Nk: 700, D: 64, causal: true },
  ];
  for (const s of shapes) {
    for (const dist of (flag("heavy") ? ["heavy-tail"] : DISTRIBUTIONS) as readonly Distribution[]) {
      const { q, k, v } = makeQKV(s, dist, 11);
      const qt = f16Tensor(q, [s.B, s.Hq, s.Nq, s.D]);
      const kt = f16Tensor(k, [s.B, s.Hkv, s.Nk, s.D]);
      const vt = f16Tensor(v, [s.B, s.Hkv, s.Nk, s.D]);
      const p = Effect.runSync(resolveProblem(qt, kt, vt, { causal: s.causal, outputDtype: "f32" }));
      // The oracles see what the kernels see: the f16 inputs.
      const [qc, kc, vc] = [qt, kt, vt].map(toCanonicalF32);
      const sage = sageReference(p, qc, kc, vc);
      const exact = exactReference(p, qc, kc, vc);
      const got = (await Effect.runPromise(sageBackend.attention(p, qt, kt, vt))).output as HostTensor;
      const gotExact = (await Effect.runPromise(backend.exactAttention!(p, qt, kt, vt))).output as HostTensor;
      const a = accuracy(got.data as Float32Array, exact.output);
      // Held to the oracle of its P·V mode with the conformance suite's own check and bounds.
      const checked = checkOutput({
        problem: p,
        q: qc,
        k: kc,
        v: vc,
        output: got.data as Float32Array,
        capabilities: sageBackend.capabilities,
      });
      const b = checked.vsSage;
      const c = accuracy(gotExact.data as Float32Array, exact.output);
      const o = accuracy(Float32Array.from(sage.output), exact.output);
      // DESIGN's bounds against exact attention; where the sage oracle itself misses them, the algorithm does.
      const inBounds = (x: { cosine: number; relL1: number }) =>
        x.cosine >= BOUNDS.exact.minCosine && x.relL1 <= BOUNDS.exact.maxRelL1;
      const ok = checked.ok && c.cosine >= BOUNDS.exact.minCosine && (inBounds(a) || !inBounds(o));
      const note = inBounds(a)
        ? ""
        : inBounds(o)
        ? " (outside DESIGN's bounds)"
        : " (outside DESIGN's bounds, as is the sage oracle)";
      console.log(
        `check ${ok ? "ok  " : "FAIL"} Hq${s.Hq} Hkv${s.Hkv} Nq${s.Nq} Nk${s.Nk} D${s.D} causal=${s.causal} ${dist}: ` +
          `sage vs exact cos ${a.cosine.toFixed(6)} relL1 ${
            a.relL1.toExponential(2)
          }${note}; sage oracle vs exact cos ${o.cosine.toFixed(6)} ` +
          `relL1 ${o.relL1.toExponential(2)}; vs sage oracle relL1 ${b.relL1.toExponential(2)}; ` +
          `exact kernel vs exact cos ${c.cosine.toFixed(6)} relL1 ${c.relL1.toExponential(2)}`,
      );
    }
  }
}

const backend = await Effect.runPromise(makeWith({}));
console.log(`device: ${backend.device}`);
console.log(`details: ${JSON.stringify(backend.details)}`);
if (flag("check")) {
  const tile = str("tiles", "").split(",")[0] || undefined;
  const sage = tile ? await Effect.runPromise(makeWith({ device: backend.gpuDevice(), tile })) : backend;
  console.log(
    `check: SageAttention on tile ${tileName(sage, "int8", 128, tile)} at D=128, ${
      tileName(sage, "int8", 64, tile)
    } at D=64`,
  );
  await check(backend, sage);
}
await speed(backend);
await Effect.runPromise(backend.dispose);
