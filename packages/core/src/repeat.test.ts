// A call that repeats the previous one (same tensors, same unchanged options object) skips validation and selection
// and, where the backend offers `attentionNow`, the Effect runtime. These tests hold that shortcut to the full path:
// what a user changes between calls is always seen, a disposed backend is never called again, and the outputs equal
// the js oracle's.
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { attention, dispose } from "./api.js";
import type { AttentionBackend, BackendProvider } from "./backend.js";
import { DeviceError } from "./errors.js";
import { jsBackend } from "./js-backend.js";
import { accuracy } from "./metrics.js";
import type { Problem } from "./problem.js";
import { registerBackend } from "./registry.js";
import { type DeviceTensor, type HostTensor, hostTensor, type Tensor } from "./tensor.js";
import { hostOf, standIn } from "./test-support/stand-in-device.js";

// A "device" backend whose tensors wrap host tensors and whose calls run the js oracle at once.
const calls: { problem: Problem; now: boolean }[] = [];
let loads = 0;
let failNow = false;
const wrapT = (h: HostTensor) => standIn("test-device", h);
const run = (p: Problem, q: Tensor, k: Tensor, v: Tensor) => {
  const r = Effect.runSync(jsBackend.attention({ ...p, out: undefined }, hostOf(q), hostOf(k), hostOf(v)));
  const output = p.out ?? wrapT(r.output as HostTensor);
  if (p.out) (hostOf(p.out).data as Float32Array).set((r.output as HostTensor).data as Float32Array);
  return { output, lse: r.lse };
};
const provider: BackendProvider = {
  name: "test-device",
  priority: -1,
  load: Effect.sync((): AttentionBackend => {
    loads++;
    let disposed = false;
    const alive = () => {
      if (disposed) throw new DeviceError({ backend: "test-device", reason: "Disposed", message: "disposed" });
    };
    return {
      ...jsBackend,
      name: "test-device",
      capabilities: { ...jsBackend.capabilities, deviceTensors: true },
      attention: (p, q, k, v) =>
        Effect.suspend(() => {
          alive();
          calls.push({ problem: p, now: false });
          return Effect.succeed(run(p, q, k, v));
        }),
      attentionNow: (p, q, k, v) => {
        alive();
        if (failNow) {
          throw new DeviceError({ backend: "test-device", reason: "KernelFailed", message: "launch failed" });
        }
        calls.push({ problem: p, now: true });
        return run(p, q, k, v);
      },
      dispose: Effect.sync(() => {
        disposed = true;
      }),
    };
  }),
};
registerBackend(provider);

const data = (seed: number) => Float32Array.from({ length: 2 * 16 * 32 }, (_, i) => Math.sin(i * 0.37 + seed));
const host = (seed: number) => hostTensor(data(seed), [1, 2, 16, 32]);

describe("a repeated device call", () => {
  it("skips validation (same Problem object), runs attentionNow, and matches the oracle", async () => {
    const [q, k, v] = [host(1), host(2), host(3)].map(wrapT);
    const out = wrapT(hostTensor(new Float32Array(2 * 16 * 32), [1, 2, 16, 32]));
    const options = { backend: "test-device", out };
    calls.length = 0;
    await attention(q, k, v, options);
    await attention(q, k, v, options);
    await attention(q, k, v, options);
    expect(calls.map((c) => c.now)).toEqual([false, true, true]);
    expect(calls[1].problem).toBe(calls[0].problem);
    const want = Effect.runSync(jsBackend.attention(calls[0].problem, hostOf(q), hostOf(k), hostOf(v)));
    expect(accuracy(hostOf(out).data as Float32Array, (want.output as HostTensor).data as Float32Array).maxAbs).toBe(0);
  });

  it("sees an option changed in place, a new tensor and a new options object", async () => {
    const [q, k, v] = [host(4), host(5), host(6)].map(wrapT);
    const options: { backend: string; causal?: boolean } = { backend: "test-device" };
    calls.length = 0;
    const a = await attention(q, k, v, options);
    options.causal = true;
    const b = await attention(q, k, v, options);
    expect(calls[1].now).toBe(false);
    expect(calls[1].problem.causal).toBe(true);
    const c = await attention(q, k, v, options);
    expect(calls[2].now).toBe(true);
    expect(calls[2].problem.causal).toBe(true);
    const q2 = wrapT(host(7));
    await attention(q2, k, v, options);
    expect(calls[3].now).toBe(false);
    await attention(q, k, v, { ...options });
    expect(calls[4].now).toBe(false);
    // Causal changes the answer, so the second call really ran with it.
    const diff = accuracy(hostOf(a.output).data as Float32Array, hostOf(b.output).data as Float32Array);
    expect(diff.maxAbs).toBeGreaterThan(1e-3);
    expect(accuracy(hostOf(b.output).data as Float32Array, hostOf(c.output).data as Float32Array).maxAbs).toBe(0);
  });

  it("after dispose() loads the backend afresh instead of calling the disposed one", async () => {
    const [q, k, v] = [host(8), host(9), host(10)].map(wrapT);
    const options = { backend: "test-device" };
    await attention(q, k, v, options);
    const before = loads;
    await dispose();
    calls.length = 0;
    await attention(q, k, v, options);
    expect(loads).toBe(before + 1);
    expect(calls.map((c) => c.now)).toEqual([false]);
  });

  it("rejects with the backend's own tagged error on the fast path, and recovers", async () => {
    const [q, k, v] = [host(11), host(12), host(13)].map(wrapT);
    const options = { backend: "test-device" };
    await attention(q, k, v, options);
    failNow = true;
    await expect(attention(q, k, v, options)).rejects.toMatchObject({
      _tag: "DeviceError",
      reason: "KernelFailed",
      message: "launch failed",
    });
    failNow = false;
    calls.length = 0;
    await attention(q, k, v, options);
    expect(calls.map((c) => c.now)).toEqual([true]);
  });
});
