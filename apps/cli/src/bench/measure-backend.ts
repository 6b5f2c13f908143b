import {
  attention,
  type AttentionBackend,
  type AttentionOptions,
  type DeviceTensor,
  type HostTensor,
  hostTensor,
  resolveProblem,
  runToPromise,
  type Tensor,
} from "@sageattn/core";
import { Effect } from "effect";
import { describeError } from "../errors.js";
import { attentionOps } from "./format.js";
import { type BenchInputs, outputSlice, sliceAccuracy } from "./inputs.js";
import { measure, type TimingPlan } from "./timing.js";
import type { BackendResult, Failure, Timing } from "./types.js";

type Kernel = NonNullable<AttentionBackend["exactAttention"]>;

/** Options of ours that the bench varies: passed to every call of our SageAttention, never to the exact kernel. */
export type SageOptions = Pick<AttentionOptions, "qkGranularity" | "pvAccumulation">;

/** TOPS for a case at `ms` milliseconds. */
export const topsAt = (inputs: BenchInputs, ms: number) => {
  const c = inputs.case;
  return attentionOps({ B: c.B, H: c.H, Nq: c.N, Nk: c.N, D: c.D, causal: c.causal }) / (ms / 1e3) / 1e12;
};

export const failure = (e: unknown): Failure => ({ error: describeError(e).message });

/** A device run queues this many milliseconds of calls, then waits for them with the backend's `synchronize`. */
const DEVICE_BATCH_MS = 200;
const MAX_DEVICE_BATCH = 256;

/**
 * Times one kernel end to end (quantization included). Host backends take host tensors, one call per run. A device
 * backend gets the inputs uploaded once; ours runs through the public `attention()` writing into one reused `out`
 * tensor (what a steady-state caller does), the exact kernel through the backend with its outputs disposed; each
 * run queues a batch of calls, waits with `synchronize`, and divides the wall time by the batch, so host overhead
 * per call is counted the way a user sees it. The batch size comes from a first, single call. The accuracy check
 * reads the output of one more batch after the timed ones (downloading every run's output cost seconds at 32K).
 */
async function timeKernel(
  backend: AttentionBackend,
  kernel: Kernel | "public",
  inputs: BenchInputs,
  device: { q: Tensor; k: Tensor; v: Tensor } | undefined,
  plan: TimingPlan,
  sage: SageOptions,
  onRun?: (what: string) => void,
): Promise<{ timing: Timing; last: HostTensor; batch: number }> {
  const options = { causal: inputs.case.causal, validate: false };
  const p = Effect.runSync(resolveProblem(inputs.q, inputs.k, inputs.v, options));
  let last: HostTensor | undefined;
  let batch = 1;
  const call = (q: Tensor, k: Tensor, v: Tensor, out?: Tensor) =>
    kernel === "public"
      ? attention(q, k, v, { ...options, ...sage, backend: backend.name, out })
      : runToPromise(kernel(p, q, k, v));
  // `keep`: download the batch's last output for the accuracy check (1 GiB at B4 H32 N32K D128, so only once).
  const deviceRun = async (d: { q: Tensor; k: Tensor; v: Tensor; out: DeviceTensor }, keep = false) => {
    const outs: DeviceTensor[] = [];
    try {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) {
        const r = await call(d.q, d.k, d.v, kernel === "public" ? d.out : undefined);
        if (r.output !== d.out) outs.push(r.output as DeviceTensor);
      }
      await runToPromise(backend.synchronize);
      const ms = Math.max(1e-3, (performance.now() - t0) / batch);
      if (keep) last = await runToPromise(backend.download(outs.length ? outs[outs.length - 1] : d.out));
      return ms;
    } finally {
      for (const o of outs) o.dispose();
    }
  };
  const hostRun = async () => {
    const t0 = performance.now();
    last = (await call(inputs.q, inputs.k, inputs.v)).output as HostTensor;
    return performance.now() - t0;
  };
  if (device) {
    const shape = inputs.q.shape;
    const out = await runToPromise(
      backend.upload(
        hostTensor(
          inputs.q.dtype === "f32" ? new Float32Array(inputs.q.data.length) : new Uint16Array(inputs.q.data.length),
          shape,
          { dtype: inputs.q.dtype },
        ),
      ),
    );
    const d = { ...device, out };
    try {
      onRun?.("calibrating");
      const single = await deviceRun(d);
      batch = Math.min(MAX_DEVICE_BATCH, Math.max(1, Math.ceil(DEVICE_BATCH_MS / Math.max(single, 0.05))));
      const { ms, runs } = await measure(() => deviceRun(d), plan, onRun);
      onRun?.("output of one more batch, for the accuracy check");
      await deviceRun(d, true); // after the timed runs, so repeated calls are what gets checked
      return { timing: { ms, tops: topsAt(inputs, ms), runs: runs * batch }, last: last!, batch };
    } finally {
      out.dispose();
    }
  }
  const { ms, runs } = await measure(hostRun, plan, onRun);
  return { timing: { ms, tops: topsAt(inputs, ms), runs }, last: last!, batch };
}

/**
 * Our SageAttention (with `sage`'s options) and the backend's exact kernel on one case, plus accuracy against exact
 * attention on the check slice.
 */
export async function benchBackend(
  backend: AttentionBackend,
  inputs: BenchInputs,
  exactSlice: () => Float64Array,
  plan: TimingPlan,
  onStep: (label: string) => void,
  onRun?: (what: string) => void,
  sage: SageOptions = {},
): Promise<BackendResult> {
  let device: { q: Tensor; k: Tensor; v: Tensor } | undefined;
  try {
    if (backend.capabilities.deviceTensors) {
      const up = (t: HostTensor) => runToPromise(backend.upload(t));
      device = { q: await up(inputs.q), k: await up(inputs.k), v: await up(inputs.v) };
    }
  } catch (e) {
    return { backend: backend.name, device: backend.device, ours: failure(e), exact: null, accuracy: null };
  }
  try {
    onStep(`${backend.name} sage`);
    let ours: Timing | Failure;
    let accuracy: BackendResult["accuracy"] = null;
    try {
      const r = await timeKernel(backend, "public", inputs, device, plan, sage, onRun);
      ours = r.timing;
      accuracy = sliceAccuracy(outputSlice(r.last, inputs.case), exactSlice());
    } catch (e) {
      ours = failure(e);
    }
    onStep(`${backend.name} exact`);
    let exact: Timing | Failure | null = null;
    if (backend.exactAttention) {
      try {
        exact = (await timeKernel(backend, backend.exactAttention, inputs, device, plan, {}, onRun)).timing;
      } catch (e) {
        exact = failure(e);
      }
    }
    return { backend: backend.name, device: backend.device, ours, exact, accuracy };
  } finally {
    if (device) { for (const t of Object.values(device)) if (t.kind === "device") t.dispose(); }
  }
}
