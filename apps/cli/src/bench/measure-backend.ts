import { resolveProblem, runToPromise, type AttentionBackend, type DeviceTensor, type HostTensor, type Tensor } from "@sageattn/core";
import { Effect } from "effect";
import { describeError } from "../io/errors.js";
import { attentionOps } from "./format.js";
import { outputSlice, sliceAccuracy, type BenchInputs } from "./inputs.js";
import { measure, type TimingPlan } from "./timing.js";
import type { BackendResult, Failure, Timing } from "./types.js";

type Kernel = NonNullable<AttentionBackend["exactAttention"]>;

/** TOPS for a case at `ms` milliseconds. */
export const topsAt = (inputs: BenchInputs, ms: number) => {
  const c = inputs.case;
  return attentionOps({ B: c.B, H: c.H, Nq: c.N, Nk: c.N, D: c.D, causal: c.causal }) / (ms / 1e3) / 1e12;
};

export const failure = (e: unknown): Failure => ({ error: describeError(e).message });

/**
 * A device run queues this many milliseconds of calls before it waits: the wait is a read-back (the contract has no
 * bare synchronise), and the copy subtracted after it varies by milliseconds for large outputs (512 MB at
 * B4 H32 N16K D128), so it must be small against what it closes. On the H100 (2026-11-25) a 50 ms batch (one or
 * two calls at N = 16K) still left causal and non-causal 1.7× apart in TOPS; 200 ms queues at most ~2.5 GB there.
 */
const DEVICE_BATCH_MS = 200;
const MAX_DEVICE_BATCH = 64;

/**
 * Times one kernel end to end (quantization included). Host backends take host tensors, one call per run.
 * A device backend gets the inputs uploaded once; each run queues a batch of calls, reads the last output back
 * (the portable way to wait for the device), then reads it again and subtracts that second copy, and divides by
 * the batch. The batch size comes from a first, single call.
 */
async function timeKernel(
  backend: AttentionBackend,
  kernel: Kernel,
  inputs: BenchInputs,
  device: { q: Tensor; k: Tensor; v: Tensor } | undefined,
  plan: TimingPlan,
  onRun?: (what: string) => void,
): Promise<{ timing: Timing; last: HostTensor; batch: number }> {
  const p = Effect.runSync(resolveProblem(inputs.q, inputs.k, inputs.v, { causal: inputs.case.causal, validate: false }));
  let last: HostTensor | undefined;
  let batch = 1;
  const deviceRun = async (d: { q: Tensor; k: Tensor; v: Tensor }) => {
    const outs: DeviceTensor[] = [];
    try {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) outs.push((await runToPromise(kernel(p, d.q, d.k, d.v))).output as DeviceTensor);
      last = await runToPromise(backend.download(outs[outs.length - 1]));
      const t1 = performance.now();
      await runToPromise(backend.download(outs[outs.length - 1]));
      // Never below a microsecond: for tiny calls the two read-backs can differ by more than the kernels took.
      return Math.max(1e-3, (t1 - t0 - (performance.now() - t1)) / batch);
    } finally {
      for (const o of outs) o.dispose();
    }
  };
  const hostRun = async () => {
    const t0 = performance.now();
    last = (await runToPromise(kernel(p, inputs.q, inputs.k, inputs.v))).output as HostTensor;
    return performance.now() - t0;
  };
  if (device) {
    onRun?.("calibrating");
    const single = await deviceRun(device);
    batch = Math.min(MAX_DEVICE_BATCH, Math.max(1, Math.ceil(DEVICE_BATCH_MS / Math.max(single, 0.05))));
  }
  const { ms, runs } = await measure(device ? () => deviceRun(device) : hostRun, plan, onRun);
  return { timing: { ms, tops: topsAt(inputs, ms), runs: runs * batch }, last: last!, batch };
}

/** Our SageAttention and the backend's exact kernel on one case, plus accuracy against exact attention on the check slice. */
export async function benchBackend(
  backend: AttentionBackend,
  inputs: BenchInputs,
  exactSlice: () => Float64Array,
  plan: TimingPlan,
  onStep: (label: string) => void,
  onRun?: (what: string) => void,
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
      const r = await timeKernel(backend, backend.attention, inputs, device, plan, onRun);
      ours = r.timing;
      accuracy = sliceAccuracy(outputSlice(r.last, inputs.case), exactSlice());
    } catch (e) {
      ours = failure(e);
    }
    onStep(`${backend.name} exact`);
    let exact: Timing | Failure | null = null;
    if (backend.exactAttention) {
      try {
        exact = (await timeKernel(backend, backend.exactAttention, inputs, device, plan, onRun)).timing;
      } catch (e) {
        exact = failure(e);
      }
    }
    return { backend: backend.name, device: backend.device, ours, exact, accuracy };
  } finally {
    if (device) for (const t of Object.values(device)) if (t.kind === "device") t.dispose();
  }
}
