import { Effect } from "effect";
import {
  type AttentionBackend,
  DeviceError,
  type DeviceTensor,
  type HostTensor,
  jsBackend,
  type PvAccumulation,
  type QkGranularity,
  registerBackend,
  type Tensor,
} from "@sageattn/core";
import { describe, expect, it } from "vitest";
import { exactOnSlice, makeInputs } from "./inputs.js";
import { benchBackend } from "./measure-backend.js";
import type { BenchCase } from "./types.js";

const plan = { warmup: 1, minRuns: 3, maxRuns: 3, budgetMs: 0, longRunMs: 10_000 };
const c: BenchCase = { B: 1, H: 2, N: 64, D: 16, causal: true, dtype: "f32" };

/** The js backend behind a pretend device: tensors live in handles, every upload/download/dispose is counted. */
function fakeDevice(downloadMs: number) {
  const live = new Set<number>();
  let next = 0, downloads = 0;
  const wrap = (t: HostTensor): DeviceTensor => {
    const id = next++;
    live.add(id);
    return {
      kind: "device",
      backend: "fake",
      dtype: t.dtype,
      layout: t.layout,
      shape: t.shape,
      strides: t.strides,
      handle: t,
      dispose: () => void live.delete(id),
    };
  };
  const onHost = (t: Tensor) => (t.kind === "device" ? (t.handle as HostTensor) : t);
  const backend: AttentionBackend = {
    ...jsBackend,
    name: "fake",
    capabilities: { ...jsBackend.capabilities, deviceTensors: true },
    upload: (t) => Effect.succeed(wrap(t)),
    download: (t) =>
      Effect.promise(async () => {
        downloads++;
        const end = performance.now() + downloadMs; // a slow read-back the timing must not count
        while (performance.now() < end) await new Promise((r) => setTimeout(r, 1));
        return t.handle as HostTensor;
      }),
    // A caller's device `out` is written in place, as the contract asks of device backends.
    attention: (p, q, k, v) =>
      Effect.map(jsBackend.attention({ ...p, out: undefined }, onHost(q), onHost(k), onHost(v)), (o) => {
        if (p.out?.kind !== "device") return { output: wrap(o.output as HostTensor) };
        (p.out.handle as HostTensor).data.set((o.output as HostTensor).data);
        return { output: p.out };
      }),
    exactAttention: (p, q, k, v) =>
      Effect.map(
        jsBackend.exactAttention!(p, onHost(q), onHost(k), onHost(v)),
        (o) => ({ output: wrap(o.output as HostTensor) }),
      ),
  };
  // Registered, since ours is timed through the public attention(), which finds backends by name.
  registerBackend({ name: "fake", priority: -1, load: Effect.succeed(backend) });
  return { backend, live, downloads: () => downloads };
}

describe("benchBackend", () => {
  it("host backend: sage and exact timings, accuracy against the exact slice", async () => {
    const inputs = makeInputs(c);
    const r = await benchBackend(jsBackend, inputs, () => exactOnSlice(inputs), plan, () => {});
    expect("ms" in r.ours && r.ours.runs).toBe(3);
    expect(r.exact && "tops" in r.exact && r.exact.tops).toBeGreaterThan(0);
    expect(r.accuracy!.cosine).toBeGreaterThan(0.999);
  });

  it("device backend: uploads once, batches calls closed by synchronize, reads back outside the timing, frees every tensor", async () => {
    const inputs = makeInputs(c);
    const fake = fakeDevice(30);
    const r = await benchBackend(fake.backend, inputs, () => exactOnSlice(inputs), plan, () => {});
    expect(r.accuracy!.cosine).toBeGreaterThan(0.999);
    // A read-back costs 30 ms here; the time per call is the kernel's own, well under one.
    expect("ms" in r.ours && r.ours.ms).toBeLessThan(25);
    // Per kernel (sage, exact): one read-back, of a batch after the calibrating, warm-up and timed runs.
    expect(fake.downloads()).toBe(2);
    expect("runs" in r.ours && r.ours.runs).toBeGreaterThan(plan.minRuns); // several calls per run
    expect(fake.live.size).toBe(0);
  });

  it("a kernel that fails is reported with its tagged reason, not thrown", async () => {
    const inputs = makeInputs(c);
    const broken: AttentionBackend = {
      ...jsBackend,
      name: "broken",
      attention: () => Effect.fail(new DeviceError({ backend: "broken", reason: "OutOfMemory", message: "no room" })),
    };
    registerBackend({ name: "broken", priority: -1, load: Effect.succeed(broken) });
    const r = await benchBackend(broken, inputs, () => exactOnSlice(inputs), plan, () => {});
    expect(r.ours).toEqual({ error: "backend broken failed (OutOfMemory): no room" });
    expect(r.accuracy).toBeNull();
    expect(r.exact && "ms" in r.exact).toBe(true);
  });

  it("--qk-granularity reaches every call of ours through attention(), and never the exact kernel", async () => {
    const inputs = makeInputs(c);
    const seen = { sage: new Set<QkGranularity>(), exact: new Set<QkGranularity>() };
    const spy: AttentionBackend = {
      ...jsBackend,
      name: "granularity-spy",
      attention: (p, q, k, v) => (seen.sage.add(p.qkGranularity), jsBackend.attention(p, q, k, v)),
      exactAttention: (p, q, k, v) => (seen.exact.add(p.qkGranularity), jsBackend.exactAttention!(p, q, k, v)),
    };
    registerBackend({ name: "granularity-spy", priority: -1, load: Effect.succeed(spy) });
    const r = await benchBackend(spy, inputs, () => exactOnSlice(inputs), plan, () => {}, undefined, {
      qkGranularity: "warp",
    });
    expect("ms" in r.ours).toBe(true);
    expect([...seen.sage]).toEqual(["warp"]);
    expect([...seen.exact]).toEqual(["block"]);
    seen.sage.clear();
    await benchBackend(spy, inputs, () => exactOnSlice(inputs), plan, () => {});
    expect([...seen.sage]).toEqual(["block"]); // not passed: the library's default
  });

  it("--pv reaches every call of ours through attention(), and never the exact kernel", async () => {
    const inputs = makeInputs(c);
    const seen = { sage: new Set<PvAccumulation>(), exact: new Set<PvAccumulation>() };
    const spy: AttentionBackend = {
      ...jsBackend,
      name: "pv-spy",
      attention: (p, q, k, v) => (seen.sage.add(p.pvAccumulation), jsBackend.attention(p, q, k, v)),
      exactAttention: (p, q, k, v) => (seen.exact.add(p.pvAccumulation), jsBackend.exactAttention!(p, q, k, v)),
    };
    registerBackend({ name: "pv-spy", priority: -1, load: Effect.succeed(spy) });
    const r = await benchBackend(spy, inputs, () => exactOnSlice(inputs), plan, () => {}, undefined, {
      pvAccumulation: "int8",
    });
    expect("ms" in r.ours).toBe(true);
    expect([...seen.sage]).toEqual(["int8"]);
    expect([...seen.exact]).toEqual(["f16-block"]);
  });

  it("a P·V mode the backend lacks is reported as ours failing, the exact kernel still timed", async () => {
    const inputs = makeInputs(c);
    const f16Only: AttentionBackend = {
      ...jsBackend,
      name: "f16-only",
      capabilities: { ...jsBackend.capabilities, pv: ["f16-block", "f32"] },
    };
    registerBackend({ name: "f16-only", priority: -1, load: Effect.succeed(f16Only) });
    const r = await benchBackend(f16Only, inputs, () => exactOnSlice(inputs), plan, () => {}, undefined, {
      pvAccumulation: "int8",
    });
    expect("error" in r.ours && r.ours.error).toContain("int8 P·V (pvAccumulation) not supported");
    expect(r.accuracy).toBeNull();
    expect(r.exact && "ms" in r.exact).toBe(true);
  });

  it("a granularity the backend lacks is reported as ours failing, the exact kernel still timed", async () => {
    const inputs = makeInputs(c);
    const blockOnly: AttentionBackend = {
      ...jsBackend,
      name: "block-only",
      capabilities: { ...jsBackend.capabilities, qkGranularity: ["block"] },
    };
    registerBackend({ name: "block-only", priority: -1, load: Effect.succeed(blockOnly) });
    const r = await benchBackend(blockOnly, inputs, () => exactOnSlice(inputs), plan, () => {}, undefined, {
      qkGranularity: "row",
    });
    expect("error" in r.ours && r.ours.error).toContain('qkGranularity "row" not supported');
    expect(r.accuracy).toBeNull();
    expect(r.exact && "ms" in r.exact).toBe(true);
  });
});
