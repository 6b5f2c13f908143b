// Issue #12 case 1: above 2 GiB of wasm memory, byte addresses must still become the right array indices (a signed
// `>> 2` made them negative: writes dropped, kernels reading zeros, success returned), and a call too large for
// wasm32 or for the kernels' i32 offsets must fail with a tagged DeviceError before anything is written.
import {
  CPU_ATTN_RECORD,
  CPU_KV_RECORD,
  hostTensor,
  layoutOf,
  LOG2E,
  type Problem,
  resolveProblem,
} from "@sageattn/core";
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { makeCpuSimd } from "./backend.js";
import { planCall, planLimit, writeRecords } from "./plan.js";
import { A, ATTN_RECORD_BYTES, KV_RECORD_BYTES, P } from "./records.js";

/** Stands in for a view of a 4 GiB memory: remembers each write by index (no 4 GiB allocation). */
function recorder(): { view: Int32Array & Float32Array; writes: Map<number, number> } {
  const writes = new Map<number, number>();
  const view = new Proxy({}, {
    set: (_, key, value: number) => {
      writes.set(Number(key), value);
      return true;
    },
  });
  return { view: view as Int32Array & Float32Array, writes };
}

const problemFor = (
  qShape: [number, number, number, number],
  kvShape: [number, number, number, number],
  options = {},
): Problem => {
  const t = (s: number[]) => hostTensor(new Float32Array(s[3]), s as never, { strides: [0, 0, 0, 1] });
  return Effect.runSync(resolveProblem(t(qShape), t(kvShape), t(kvShape), { validate: false, ...options }));
};

describe("plan addresses above 2 GiB", () => {
  // The repro: K/V [1,1,64,256], Q [1,16,73728,256] f32 — Q and the output take 1.13 GiB each.
  const p = problemFor([1, 16, 73728, 256], [1, 1, 64, 256]);
  const plan = planCall(p, false, 1, 4096, 64);

  it("lays the call out past 2^31 and within the wasm32 limit", () => {
    expect(plan.out + 16 * 73728 * 256 * 4).toBeGreaterThan(2 ** 31);
    expect(plan.attnTable).toBeGreaterThan(2 ** 31);
    expect(planLimit(p, plan)).toBeUndefined();
  });

  it("writes every record at a non-negative index, the one its byte address names", () => {
    const i32 = recorder(), f32 = recorder();
    writeRecords(plan, p, i32.view, f32.view, 64);
    let lowest = Infinity;
    for (const i of [...i32.writes.keys(), ...f32.writes.keys()]) lowest = Math.min(lowest, i);
    expect(lowest, "lowest index written").toBeGreaterThanOrEqual(0);
    const first = plan.attnTable / 4;
    // The last attention record: head 15, tile 0, whose output rows lie past 2 GiB (stored as the u32's bits).
    const last = first + (plan.attnCount - 1) * (ATTN_RECORD_BYTES / 4);
    expect(i32.writes.get(last + A.nq / 4)).toBe(73728);
    expect(i32.writes.get(last + A.i0 / 4)).toBe(0);
    const out = i32.writes.get(last + A.out / 4)! >>> 0;
    expect(out, "output address").toBe(plan.out + 15 * 73728 * 256 * 4);
    expect(out).toBeGreaterThan(2 ** 31);
    expect(f32.writes.get(first + A.fold / 4)).toBeCloseTo(Math.fround((1 / 16) * LOG2E), 6);
    const kv = plan.kvTable / 4;
    expect(i32.writes.get(kv + P.nk / 4)).toBe(64);
    // Every field core's schemas declare is written (the f32 ones through the f32 view).
    for (const f of layoutOf(CPU_ATTN_RECORD).fields) {
      expect((f.type === "f32" ? f32 : i32).writes.has(first + f.offset / 4), `attention record ${f.name}`).toBe(true);
    }
    for (const f of layoutOf(CPU_KV_RECORD).fields) {
      expect(i32.writes.has(kv + f.offset / 4), `kv record ${f.name}`).toBe(true);
    }
    expect(i32.writes.size).toBe(plan.kvCount * (KV_RECORD_BYTES / 4) + plan.attnCount * (ATTN_RECORD_BYTES / 4 - 1));
  });
});

describe("plan limits", () => {
  it("over 4 GiB: OutOfMemory", () => {
    const p = problemFor([1, 32, 73728, 256], [1, 1, 64, 256]);
    expect(planLimit(p, planCall(p, false, 1, 4096, 64))).toMatchObject({ reason: "OutOfMemory" });
  });
  it("a 2 GiB boolean mask slice (the kernels' i32 mask offsets): LimitExceeded", () => {
    const base = problemFor([1, 1, 65536, 8], [1, 1, 32768, 8]);
    // Only the mask's size matters to the plan: a stand-in for 2 GiB of mask bytes.
    const p: Problem = {
      ...base,
      mask: { kind: "boolean", data: { byteLength: 2 ** 31 } as Uint8Array, shape: [1, 1, 65536, 32768] },
    };
    expect(planLimit(p, planCall(p, false, 1, 4096, 64))).toMatchObject({ reason: "LimitExceeded" });
    expect(planLimit(base, planCall(base, false, 1, 4096, 64))).toBeUndefined();
  });
});

describe("the backend refuses a call past its limits before writing", () => {
  it("a 4.5 GiB call fails with DeviceError OutOfMemory and memory does not grow", async () => {
    const b = await Effect.runPromise(makeCpuSimd({ threads: 1 }));
    try {
      const before = b.wasmMemoryBytes();
      const q = hostTensor(new Float32Array(256), [1, 32, 73728, 256], { strides: [0, 0, 0, 1] });
      const kv = hostTensor(new Float32Array(256), [1, 1, 64, 256], { strides: [0, 0, 0, 1] });
      const p = Effect.runSync(resolveProblem(q, kv, kv, { validate: false }));
      const e = await Effect.runPromise(Effect.flip(b.attention(p, q, kv, kv)));
      expect(e).toMatchObject({ _tag: "DeviceError", reason: "OutOfMemory", backend: "cpu-simd" });
      expect(b.wasmMemoryBytes()).toBe(before);
    } finally {
      await Effect.runPromise(b.dispose);
    }
  });
});

// The repro end to end (5 GiB of host and wasm memory, ~10 s on 2 cores): run with SAGEATTN_BIG_TESTS=1.
const big =
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.SAGEATTN_BIG_TESTS === "1";
describe.runIf(big)("a 2.25 GiB call (SAGEATTN_BIG_TESTS=1)", () => {
  it("rows whose addresses lie past 2 GiB equal the same rows run alone", async () => {
    const b = await Effect.runPromise(makeCpuSimd({ threads: 2 }));
    try {
      const H = 16, N = 73728, D = 256;
      const q = new Float32Array(H * N * D);
      for (let i = 0; i < q.length; i += 97) q[i] = Math.sin(i);
      const k = hostTensor(Float32Array.from({ length: 64 * D }, (_, i) => Math.cos(i * 0.3)), [1, 1, 64, D]);
      const v = hostTensor(Float32Array.from({ length: 64 * D }, (_, i) => Math.sin(i * 0.11)), [1, 1, 64, D]);
      const call = async (t: ReturnType<typeof hostTensor>) => {
        const p = Effect.runSync(resolveProblem(t, k, v, { validate: false }));
        const { output } = await Effect.runPromise(b.attention(p, t, k, v));
        if (output.kind !== "host") throw new Error("cpu-simd returned a device tensor for host inputs");
        return output.data as Float32Array;
      };
      const whole = await call(hostTensor(q, [1, H, N, D]));
      const from = ((H - 1) * N + N - 128) * D;
      const alone = await call(hostTensor(q.subarray(from, from + 128 * D), [1, 1, 128, D]));
      expect(Array.from(whole.subarray(from, from + 128 * D))).toEqual(Array.from(alone));
      expect(alone.some((x) => x !== 0)).toBe(true);
    } finally {
      await Effect.runPromise(b.dispose);
    }
  }, 300_000);
});
