// GPU-only behaviour of the cuda backend: device-resident tensors, adoption of a raw pointer, memory that stays flat
// over many calls, and out-of-memory as a tagged error. Without a usable GPU every test here is skipped, visibly,
// with the reason the backend gave (the CI machine has none). scripts/device-check.ts runs the same checks (and the
// conformance cases) on the GPU machine, where vitest is not available.
import {
  accuracy,
  attention,
  encode16,
  hostTensor,
  makeQKV,
  registerBackend,
  resolveProblem,
  toCanonicalF32,
} from "@sageattn/core";
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import type { CudaBackend } from "./backend.js";
import { DeviceMemory } from "./device-tensor.js";
import { openLibrary } from "./ffi/library.js";
import { provider } from "./index.js";

registerBackend(provider);
const exit = await Effect.runPromiseExit(provider.load);
const backend = Exit.isSuccess(exit) ? (exit.value as CudaBackend) : undefined;
const why = Exit.isFailure(exit) && exit.cause._tag === "Fail"
  ? `${exit.cause.error.reason}: ${exit.cause.error.message}`
  : "";
const title = backend ? `cuda on ${backend.device}` : `cuda GPU tests skipped — backend unavailable (${why})`;

describe.skipIf(!backend)(title, () => {
  const cuda = backend as CudaBackend;

  it("keeps tensors on the device: device in → device out, equal to the host path; adopted pointers are not freed", async () => {
    const { q, k, v } = makeQKV({ B: 2, Hq: 4, Hkv: 2, Nq: 300, Nk: 300, D: 64 }, "k-bias", 5);
    const hq = hostTensor(q, [2, 4, 300, 64]), hk = hostTensor(k, [2, 2, 300, 64]), hv = hostTensor(v, [2, 2, 300, 64]);
    const host = await attention(hq, hk, hv, { backend: "cuda", causal: true });
    const [dq, dk, dv] = await Promise.all([hq, hk, hv].map((t) => Effect.runPromise(cuda.upload(t))));
    const adopted = cuda.adopt((dk.handle as { ptr: bigint }).ptr, {
      dtype: "f32",
      layout: "HND",
      shape: [2, 2, 300, 64],
    });
    const dev = await attention(dq, adopted, dv, { backend: "cuda", causal: true });
    expect(dev.output.kind).toBe("device");
    adopted.dispose();
    const again = await attention(dq, dk, dv, { backend: "cuda", causal: true });
    for (const r of [dev, again]) {
      const back = await Effect.runPromise(cuda.download(r.output as never));
      expect(accuracy(toCanonicalF32(back), toCanonicalF32(host.output as never)).maxAbs).toBe(0);
    }
    for (const t of [dq, dk, dv, dev.output, again.output]) (t as { dispose(): void }).dispose();
  });

  it("leaves device memory flat over 2000 device-resident calls (B1 H1 N128 D64 f16)", async () => {
    const { q, k, v } = makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 128, Nk: 128, D: 64 }, "gaussian", 9);
    const f16 = (x: Float32Array) => hostTensor(encode16(x, "f16"), [1, 1, 128, 64], { dtype: "f16" });
    const [dq, dk, dv] = await Promise.all([f16(q), f16(k), f16(v)].map((t) => Effect.runPromise(cuda.upload(t))));
    const p = Effect.runSync(resolveProblem(dq, dk, dv, {}));
    const once = () => (Effect.runSync(cuda.attention(p, dq, dk, dv)).output as { dispose(): void }).dispose();
    for (let i = 0; i < 100; i++) once();
    const before = await Effect.runPromise(cuda.memoryInfo);
    const live = cuda.liveAllocations();
    for (let i = 0; i < 2000; i++) once();
    const after = await Effect.runPromise(cuda.memoryInfo);
    expect(cuda.liveAllocations()).toBe(live);
    expect(Math.abs(after.free - before.free)).toBeLessThanOrEqual(2 ** 20);
    for (const t of [dq, dk, dv]) t.dispose();
  });

  it("turns an impossible allocation into DeviceError/OutOfMemory and keeps working", async () => {
    const lib = await Effect.runPromise(openLibrary);
    const err = await Effect.runPromise(Effect.flip(new DeviceMemory(lib.native, 0n).alloc(2 ** 50)));
    expect(err._tag).toBe("DeviceError");
    expect(err._tag === "DeviceError" && err.reason).toBe("OutOfMemory");
    const { q, k, v } = makeQKV({ B: 1, Hq: 2, Hkv: 2, Nq: 64, Nk: 64, D: 64 }, "gaussian", 3);
    const t = (x: Float32Array) => hostTensor(x, [1, 2, 64, 64]);
    await expect(attention(t(q), t(k), t(v), { backend: "cuda" })).resolves.toBeDefined();
  });
});
