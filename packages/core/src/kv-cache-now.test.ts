// A decode loop's steps (append a row, attend with the same q and options object) run at once on a backend whose cache
// offers `appendNow`/`attendNow`. These tests hold that shortcut to the Effect path: same outputs as the js oracle's
// cache, typed errors, nothing appended by a rejected call, and a disposed cache never reached again.
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import type { AttentionBackend, BackendProvider } from "./backend.js";
import { DeviceError, InvalidInput } from "./errors.js";
import { jsBackend } from "./js-backend.js";
import { createKvCache } from "./kv-cache-api.js";
import type { BackendKvCache } from "./kv-cache.js";
import { makeQKV } from "./random.js";
import { registerBackend } from "./registry.js";
import { type DeviceTensor, type HostTensor, hostTensor, type Tensor } from "./tensor.js";
import { hostOf, standIn } from "./test-support/stand-in-device.js";

const B = 1, Hkv = 2, Hq = 4, D = 32, Nq = 1, N = 130;
const { q, k, v } = makeQKV({ B, Hq, Hkv, Nq, Nk: N, D }, "k-bias", 21);

// "Device" tensors that wrap host tensors; the stand-in backend's cache is the js oracle's, reached at once or as an
// Effect, and records which way each call came.
const wrapT = (h: HostTensor) => standIn("test-kv-now", h);
const calls: string[] = [];
const provider: BackendProvider = {
  name: "test-kv-now",
  priority: -1,
  load: Effect.sync((): AttentionBackend => ({
    ...jsBackend,
    name: "test-kv-now",
    capabilities: { ...jsBackend.capabilities, deviceTensors: true },
    kvCache: (spec) =>
      Effect.map(jsBackend.kvCache!(spec), (inner): BackendKvCache => {
        const attendInto = (out: { output: Tensor; lse?: Float32Array }, target: Tensor | undefined) => {
          if (target === undefined) return { output: wrapT(out.output as HostTensor), lse: out.lse };
          (hostOf(target).data as Float32Array).set((out.output as HostTensor).data as Float32Array);
          return { output: target, lse: out.lse };
        };
        return {
          append: (kk, vv) => {
            calls.push("append");
            return inner.append(hostOf(kk), hostOf(vv));
          },
          appendNow: (kk, vv) => {
            calls.push("appendNow");
            Effect.runSync(inner.append(hostOf(kk), hostOf(vv)));
          },
          attend: (p, qq) => {
            calls.push("attend");
            return Effect.map(inner.attend({ ...p, out: undefined }, hostOf(qq)), (o) => attendInto(o, p.out));
          },
          attendNow: (p, qq) => {
            calls.push("attendNow");
            return attendInto(Effect.runSync(inner.attend({ ...p, out: undefined }, hostOf(qq))), p.out);
          },
          requantize: inner.requantize,
          dispose: inner.dispose,
        };
      }),
  })),
};
registerBackend(provider);

/** Rows [r0, r1) of each kv head of a canonical [B, Hkv, N, D] array, as a tensor. */
const rows = (src: Float32Array, r0: number, r1: number) => {
  const out = new Float32Array(B * Hkv * (r1 - r0) * D);
  for (let h = 0; h < B * Hkv; h++) out.set(src.subarray((h * N + r0) * D, (h * N + r1) * D), h * (r1 - r0) * D);
  return hostTensor(out, [B, Hkv, r1 - r0, D]);
};
const options = { batch: B, headsKv: Hkv, headDim: D, capacity: N, dtype: "f32" as const };

describe("a decode loop on a cache with appendNow/attendNow", () => {
  it("runs repeated steps at once and matches the js oracle's cache step by step", async () => {
    const fast = await createKvCache({ ...options, backend: "test-kv-now" });
    const oracle = await createKvCache({ ...options, backend: "js" });
    const qd = wrapT(hostTensor(q, [B, Hq, Nq, D]));
    const out = wrapT(hostTensor(new Float32Array(B * Hq * Nq * D), [B, Hq, Nq, D]));
    const opts = { out, causal: true };
    calls.length = 0;
    await fast.append(wrapT(rows(k, 0, 100)), wrapT(rows(v, 0, 100)));
    await oracle.append(rows(k, 0, 100), rows(v, 0, 100));
    for (let len = 100; len < 104; len++) {
      await fast.append(wrapT(rows(k, len, len + 1)), wrapT(rows(v, len, len + 1)));
      await oracle.append(rows(k, len, len + 1), rows(v, len, len + 1));
      const got = await fast.attend(qd, opts);
      const want = await oracle.attend(hostTensor(q, [B, Hq, Nq, D]), { causal: true });
      expect(got.output).toBe(out);
      expect(Array.from(out.host.data as Float32Array)).toEqual(Array.from((want.output as HostTensor).data));
    }
    // The first attend resolves the problem through the Effect path; every later one repeats it at once.
    expect(calls).toEqual([
      "appendNow",
      "appendNow",
      "attend",
      "appendNow",
      "attendNow",
      "appendNow",
      "attendNow",
      "appendNow",
      "attendNow",
    ]);
    expect(fast.length).toBe(104);
    await fast.dispose();
    await oracle.dispose();
  });

  it("rejects with the tagged error, appends nothing, and never reaches a disposed cache", async () => {
    const cache = await createKvCache({ ...options, backend: "test-kv-now" });
    calls.length = 0;
    await cache.append(wrapT(rows(k, 0, 10)), wrapT(rows(v, 0, 10)));
    const over = await cache.append(wrapT(rows(k, 0, N)), wrapT(rows(v, 0, N))).catch((e: unknown) => e);
    expect(over).toBeInstanceOf(InvalidInput);
    expect((over as InvalidInput).reason).toBe("OutOfRange");
    expect(cache.length).toBe(10);
    expect(calls).toEqual(["appendNow"]);
    await cache.dispose();
    const late = await cache.attend(wrapT(hostTensor(q, [B, Hq, Nq, D]))).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(DeviceError);
    expect((late as DeviceError).reason).toBe("Disposed");
    const lateAppend = await cache.append(wrapT(rows(k, 10, 11)), wrapT(rows(v, 10, 11))).catch((e: unknown) => e);
    expect(lateAppend).toBeInstanceOf(DeviceError);
    expect(calls).toEqual(["appendNow"]);
  });
});
