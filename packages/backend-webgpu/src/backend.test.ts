// The webgpu backend on a real adapter (Deno: lavapipe on CI): GPU-resident tensors without read-back, the exact
// kernel, limits, device loss; and, where no adapter is usable (Node, Bun here), the stated reason.
import {
  accuracy,
  BOUNDS,
  type DeviceTensor,
  encode16,
  exactReference,
  type HostTensor,
  hostTensor,
  makeQKV,
  resolveProblem,
  sageReference,
  type Tensor,
  toCanonicalF32,
} from "@sageattn/core";
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import type { BufferHandle } from "./tensors.js";
import { makeWith, type WebGPUBackend } from "./index.js";
import { SKIP_OK } from "./test-support.js";

const loaded = await Effect.runPromiseExit(makeWith({}));
const backend: WebGPUBackend | undefined = Exit.isSuccess(loaded) ? loaded.value : undefined;
const why = Exit.isFailure(loaded) && loaded.cause._tag === "Fail" ? loaded.cause.error : undefined;
const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e);

const shape = { B: 1, Hq: 4, Hkv: 2, Nq: 150, Nk: 200, D: 64 };
const inputs = makeQKV(shape, "k-bias", 5);
const host = {
  q: hostTensor(inputs.q, [1, 4, 150, 64]),
  k: hostTensor(inputs.k, [1, 2, 200, 64]),
  v: hostTensor(inputs.v, [1, 2, 200, 64]),
};
const problem = Effect.runSync(resolveProblem(host.q, host.k, host.v, { causal: true }));
const sage = sageReference(problem, inputs.q, inputs.k, inputs.v);
const exact = exactReference(problem, inputs.q, inputs.k, inputs.v);
const values = (t: Tensor) => (t as HostTensor).data as Float32Array;

describe.skipIf(backend === undefined)(`webgpu on ${backend?.device ?? "no adapter"}`, { timeout: 120_000 }, () => {
  const b = backend as WebGPUBackend;

  it("SageAttention tracks the sage oracle tightly and exact attention within DESIGN's bounds", async () => {
    const out = await run(b.attention(problem, host.q, host.k, host.v));
    const vsSage = accuracy(values(out.output), sage.output);
    const vsExact = accuracy(values(out.output), exact.output);
    expect(vsSage.relL1).toBeLessThanOrEqual(BOUNDS.sageRelL1);
    expect(vsExact.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
    expect(vsExact.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
  });

  it("tracks the sage oracle on the pre-pass's element-wise path (D = 30) and without smoothing", async () => {
    const s = { B: 2, Hq: 2, Hkv: 1, Nq: 70, Nk: 90, D: 30 };
    const x = makeQKV(s, "k-bias", 9);
    const t = (data: Float32Array, h: number, n: number) => hostTensor(data, [s.B, h, n, s.D]);
    const [q, k, v] = [t(x.q, s.Hq, s.Nq), t(x.k, s.Hkv, s.Nk), t(x.v, s.Hkv, s.Nk)];
    for (const smoothK of [true, false]) {
      const p = Effect.runSync(resolveProblem(q, k, v, { causal: true, smoothK, returnLse: true }));
      const want = sageReference(p, x.q, x.k, x.v);
      const got = await run(b.attention(p, q, k, v));
      expect(accuracy(values(got.output), want.output).relL1, `smoothK ${smoothK}`).toBeLessThanOrEqual(
        BOUNDS.sageRelL1,
      );
      const lse = got.lse!;
      for (let r = 0; r < lse.length; r++) {
        expect(Math.abs(lse[r] - want.lse[r]), `smoothK ${smoothK} lse row ${r}`).toBeLessThanOrEqual(
          1e-2 * Math.max(1, Math.abs(want.lse[r])),
        );
      }
    }
  });

  it("asked for subgroups, uses them only where the load-time check passes, and tracks the sage oracle either way", async () => {
    const own = await run(makeWith({ subgroups: true }));
    const has = own.gpuDevice().features.has("subgroups");
    // lavapipe under Deno has no subgroups: the workgroup-memory reductions, and the reason in details.
    expect(own.details.subgroups).toMatch(has ? /^(on|off: )/ : /^off: the device has no subgroups$/);
    for (const pvAccumulation of ["f16-block", "f32"] as const) {
      const p = Effect.runSync(resolveProblem(host.q, host.k, host.v, { causal: true, pvAccumulation }));
      const want = sageReference(p, inputs.q, inputs.k, inputs.v);
      const got = await run(own.attention(p, host.q, host.k, host.v));
      expect(accuracy(values(got.output), want.output).relL1, `${pvAccumulation}, subgroups ${own.details.subgroups}`)
        .toBeLessThanOrEqual(BOUNDS.sageRelL1);
    }
    expect((await run(makeWith({}))).details.subgroups).toBe("off");
    await run(own.dispose);
  });

  it("the exact kernel tracks exact attention", async () => {
    expect(b.capabilities.exactKernel).toBe(true);
    const out = await run(b.exactAttention!(problem, host.q, host.k, host.v));
    const a = accuracy(values(out.output), exact.output);
    expect(a.cosine).toBeGreaterThanOrEqual(0.99999);
    expect(a.relL1).toBeLessThanOrEqual(5e-3);
  });

  it("takes a caller's GPUBuffers and returns a GPUBuffer without mapping anything", async () => {
    const device = b.gpuDevice();
    const buffer = (data: Float32Array) => {
      const g = device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(g, 0, data.buffer, data.byteOffset, data.byteLength);
      return g;
    };
    const q = await run(b.adopt(buffer(inputs.q), { dtype: "f32", shape: [1, 4, 150, 64] }));
    const k = await run(b.adopt(buffer(inputs.k), { dtype: "f32", shape: [1, 2, 200, 64] }));
    const v = await run(b.adopt(buffer(inputs.v), { dtype: "f32", shape: [1, 2, 200, 64] }));
    const proto = GPUBuffer.prototype as { mapAsync: GPUBuffer["mapAsync"] };
    const original = proto.mapAsync;
    let maps = 0;
    proto.mapAsync = function (this: GPUBuffer, ...a: Parameters<GPUBuffer["mapAsync"]>) {
      maps++;
      return original.apply(this, a);
    };
    let out: DeviceTensor;
    try {
      const p = Effect.runSync(resolveProblem(q, k, v, { causal: true }));
      out = (await run(b.attention(p, q, k, v))).output as DeviceTensor;
      await device.queue.onSubmittedWorkDone();
    } finally {
      proto.mapAsync = original;
    }
    expect(maps, "mapAsync calls on the GPUBuffer → GPUBuffer path").toBe(0);
    expect(out.kind).toBe("device");
    expect((out.handle as BufferHandle).buffer).toBeInstanceOf(GPUBuffer);
    const back = await run(b.download(out));
    expect(accuracy(values(back), sage.output).relL1).toBeLessThanOrEqual(BOUNDS.sageRelL1);
    out.dispose();
    out.dispose(); // safe twice
  });

  it("reads adopted f16 buffers at an element offset, in NHD layout, as the host path does", async () => {
    const device = b.gpuDevice();
    const nhd = (t: HostTensor, offset: number) => {
      const [B, H, N, D] = t.shape;
      const src = values(t);
      const bits = new Uint16Array(Math.ceil((offset + src.length) / 2) * 2); // writeBuffer takes whole words
      const enc = encode16(src, "f16");
      for (let h = 0; h < H; h++) {
        for (let n = 0; n < N; n++) {
          bits.set(enc.subarray((h * N + n) * D, (h * N + n + 1) * D), offset + (n * H + h) * D);
        }
      }
      const g = device.createBuffer({ size: bits.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(g, 0, bits);
      const meta = {
        dtype: "f16" as const,
        layout: "NHD" as const,
        shape: [B, N, H, D] as [number, number, number, number],
        offset,
      };
      return {
        tensor: run(b.adopt(g, meta)),
        host: hostTensor(bits.subarray(offset, offset + src.length), meta.shape, meta),
      };
    };
    const [q, k, v] = [nhd(host.q, 3), nhd(host.k, 1), nhd(host.v, 0)];
    const [qd, kd, vd] = await Promise.all([q.tensor, k.tensor, v.tensor]);
    const p = Effect.runSync(resolveProblem(qd, kd, vd, { causal: true, outputDtype: "f32" }));
    const fromDevice = await run(b.download((await run(b.attention(p, qd, kd, vd))).output as DeviceTensor));
    const fromHost = (await run(b.attention(p, q.host, k.host, v.host))).output as HostTensor;
    expect(fromDevice.layout).toBe("NHD");
    expect(accuracy(values(fromDevice), values(fromHost)).maxAbs).toBe(0);
    const vsExact = accuracy(toCanonicalF32(fromHost), exact.output); // exact on the f32 inputs, before f16 rounding
    expect(vsExact.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
    expect(vsExact.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
    // A tensor ending in the last 2 bytes of a buffer whose size is not a multiple of 4 cannot be bound.
    const odd = device.createBuffer({ size: 6, usage: GPUBufferUsage.STORAGE });
    const err = await run(Effect.flip(b.adopt(odd, { dtype: "f16", shape: [1, 1, 1, 3] })));
    expect(err.reason).toBe("LimitExceeded");
    odd.destroy();
  });

  for (const f16 of [true, false]) {
    it(`sums in f32 the kv heads of a device V past f16 blocks' range (shader-f16 ${f16 ? "if present" : "off"})`, async () => {
      // Near-equal logits put P near 1 on every key, so a 64-key block sums to about 64 · 2000 in the wide head: past
      // f16's 65504. Nothing on the host scans device V; the kernel must widen that head itself.
      const own = f16 ? b : await run(makeWith({ f16 }));
      const s = { B: 1, Hq: 4, Hkv: 2, Nq: 64, Nk: 200, D: 64 };
      const x = makeQKV(s, "gaussian", 31);
      for (let i = 0; i < x.q.length; i++) x.q[i] *= 0.01;
      for (let i = x.v.length / 2; i < x.v.length; i++) x.v[i] += 2000; // kv head 1; kv head 0 unchanged
      const hq = hostTensor(x.q, [s.B, s.Hq, s.Nq, s.D]);
      const [hk, hv] = [hostTensor(x.k, [s.B, s.Hkv, s.Nk, s.D]), hostTensor(x.v, [s.B, s.Hkv, s.Nk, s.D])];
      const [qd, kd, vd] = await Promise.all([run(own.upload(hq)), run(own.upload(hk)), run(own.upload(hv))]);
      const want = exactReference(Effect.runSync(resolveProblem(hq, hk, hv, {})), x.q, x.k, x.v);
      for (const pvAccumulation of ["f16-block", undefined] as const) {
        const p = Effect.runSync(resolveProblem(qd, kd, vd, pvAccumulation ? { pvAccumulation } : {}));
        expect(p.pvAccumulation).toBe("f16-block");
        const got = values(await run(own.download((await run(own.attention(p, qd, kd, vd))).output as DeviceTensor)));
        expect(got.every(Number.isFinite), `pvAccumulation ${pvAccumulation}: every output finite`).toBe(true);
        const vs = accuracy(got, want.output);
        expect(vs.cosine).toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
        expect(vs.relL1).toBeLessThanOrEqual(BOUNDS.exact.maxRelL1);
      }
      for (const t of [qd, kd, vd]) t.dispose();
      if (own !== b) await run(own.dispose);
    });
  }

  it("shows a NaN or ∞ of q, k or v in the rows that see it, with validate off (both P·V paths, LSE too)", async () => {
    // Element 0 of q is row 0 of head 0; of k or v, key 0 of kv head 0, which every row of heads 0 and 1 sees.
    for (const fault of [NaN, Infinity]) {
      for (const which of ["q", "k", "v"] as const) {
        for (const pvAccumulation of ["f16-block", "f32"] as const) {
          const data = { q: inputs.q.slice(), k: inputs.k.slice(), v: inputs.v.slice() };
          data[which][0] = fault;
          const [q, k, v] = [
            hostTensor(data.q, [1, 4, 150, 64]),
            hostTensor(data.k, [1, 2, 200, 64]),
            hostTensor(data.v, [1, 2, 200, 64]),
          ];
          const p = Effect.runSync(resolveProblem(q, k, v, { validate: false, returnLse: true, pvAccumulation }));
          const got = await run(b.attention(p, q, k, v));
          const row0 = values(got.output).subarray(0, 64);
          const what = `${fault} in ${which}, ${pvAccumulation}`;
          expect(row0.some((x) => !Number.isFinite(x)), `${what}: row 0`).toBe(true);
          if (which !== "v") expect(Number.isFinite(got.lse![0]), `${what}: LSE of row 0`).toBe(false);
        }
      }
    }
  });

  it("rounds a V past f16's range to ±∞ as core does (validate off), not to a silent 65504", async () => {
    for (const [big, finite] of [[65519, true], [70000, false]] as const) {
      const data = inputs.v.slice();
      data[0] = big; // key 0 of kv head 0, channel 0: every row of heads 0 and 1 sees it
      const v = hostTensor(data, [1, 2, 200, 64]);
      const p = Effect.runSync(resolveProblem(host.q, host.k, v, { validate: false }));
      const row0 = values((await run(b.attention(p, host.q, host.k, v))).output).subarray(0, 64);
      expect(Number.isFinite(row0[0]), `v = ${big}`).toBe(finite);
    }
  });

  it("writes a strided 16-bit out in place (word pairs and lone halves), leaving the bytes between rows alone", async () => {
    const device = b.gpuDevice();
    const [q, k, v] = await Promise.all([host.q, host.k, host.v].map((t) => run(b.upload(t))));
    const [B, H, N, D] = [1, 4, 150, 64];
    for (const dtype of ["f16", "bf16"] as const) {
      const p = Effect.runSync(resolveProblem(q, k, v, { causal: true, outputDtype: dtype }));
      const want = Array.from(
        toCanonicalF32(await run(b.download((await run(b.attention(p, q, k, v))).output as DeviceTensor))),
      );
      // offset 4, pitch a multiple of 4: stored by the INT8 kernel itself; offset 0 with even row pitch: store_output
      // in pairs; offset 3 with odd row pitch: every element merged as a half word.
      for (const [offset, pitch] of [[4, D + 8], [0, D + 6], [3, D + 5]]) {
        const bits = new Uint16Array(Math.ceil((offset + B * H * N * pitch) / 2) * 2).fill(0x7bad);
        const buffer = device.createBuffer({
          size: bits.byteLength,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        });
        device.queue.writeBuffer(buffer, 0, bits);
        const strides = [H * N * pitch, N * pitch, pitch, 1] as const;
        const out = await run(b.adopt(buffer, { dtype, shape: [B, H, N, D], strides, offset }));
        const po = Effect.runSync(resolveProblem(q, k, v, { causal: true, out }));
        // The exact kernel's store goes through the same path: run it first, then SageAttention over it.
        expect((await run(b.exactAttention!(po, q, k, v))).output).toBe(out);
        const viaExact = Array.from(toCanonicalF32(await run(b.download(out))));
        expect(accuracy(Float32Array.from(viaExact), Float32Array.from(want)).cosine, `${dtype} exact kernel into out`)
          .toBeGreaterThanOrEqual(BOUNDS.exact.minCosine);
        const r = await run(b.attention(po, q, k, v));
        expect(r.output).toBe(out);
        const whole = await run(b.adopt(buffer, { dtype, shape: [1, 1, 1, bits.length] }));
        const raw = (await run(b.download(whole))).data as Uint16Array;
        const got = await run(b.download(out));
        expect(Array.from(toCanonicalF32(got)), `${dtype} offset ${offset} pitch ${pitch}`).toEqual(want);
        for (let i = 0; i < raw.length; i++) {
          if (i < offset || (i - offset) % pitch >= D) expect(raw[i], `${dtype} gap element ${i}`).toBe(0x7bad);
        }
        buffer.destroy();
      }
    }
    for (const t of [q, k, v]) t.dispose();
  });

  it("rejects an out that shares GPU memory with an input (InvalidInput)", async () => {
    const device = b.gpuDevice();
    const buffer = device.createBuffer({
      size: 2 * 4 * 150 * 64 * 4,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(buffer, 0, inputs.q.buffer, inputs.q.byteOffset, inputs.q.byteLength);
    const q = await run(b.adopt(buffer, { dtype: "f32", shape: [1, 4, 150, 64] }));
    const [k, v] = await Promise.all([host.k, host.v].map((t) => run(b.upload(t))));
    const apart = await run(b.adopt(buffer, { dtype: "f32", shape: [1, 4, 150, 64], offset: 4 * 150 * 64 }));
    const overlapping = await run(b.adopt(buffer, { dtype: "f32", shape: [1, 4, 150, 64], offset: 64 }));
    const ok = await run(b.attention(Effect.runSync(resolveProblem(q, k, v, { out: apart })), q, k, v));
    expect(ok.output).toBe(apart);
    const err = await run(
      Effect.flip(b.attention(Effect.runSync(resolveProblem(q, k, v, { out: overlapping })), q, k, v)),
    );
    expect(err._tag).toBe("InvalidInput");
    expect((err as { reason?: string }).reason).toBe("InvalidOption");
    buffer.destroy();
    for (const t of [k, v]) t.dispose();
  });

  it("creates no GPU buffers or bind groups in steady state (device inputs with a reused out, and host inputs)", async () => {
    const own = await run(makeWith({}));
    const device = own.gpuDevice();
    const counts = { createBuffer: 0, createBindGroup: 0 };
    // The two methods under one signature, so that either can be wrapped by name.
    const methods = device as unknown as Record<keyof typeof counts, (...a: unknown[]) => unknown>;
    for (const name of Object.keys(counts) as Array<keyof typeof counts>) {
      const original = methods[name].bind(device);
      methods[name] = (...a: unknown[]) => {
        counts[name]++;
        return original(...a);
      };
    }
    const [q, k, v] = await Promise.all([host.q, host.k, host.v].map((t) => run(own.upload(t))));
    const out = await run(own.upload(hostTensor(new Float32Array(4 * 150 * 64), [1, 4, 150, 64])));
    const p = Effect.runSync(resolveProblem(q, k, v, { causal: true, out }));
    const withLse = Effect.runSync(resolveProblem(host.q, host.k, host.v, { causal: true, returnLse: true }));
    const hostCall = () => run(own.attention(withLse, host.q, host.k, host.v));
    for (let i = 0; i < 2; i++) {
      await run(own.attention(p, q, k, v));
      await hostCall();
    }
    expect(counts.createBuffer, "the wrapper sees the warm-up's buffers").toBeGreaterThan(0);
    counts.createBuffer = counts.createBindGroup = 0;
    for (let i = 0; i < 3; i++) {
      await run(own.attention(p, q, k, v));
      const r = await hostCall();
      expect(accuracy(values(r.output), sage.output).relL1).toBeLessThanOrEqual(BOUNDS.sageRelL1);
      expect(r.lse?.length).toBe(4 * 150);
      expect(r.lse?.every(Number.isFinite)).toBe(true);
    }
    expect(counts).toEqual({ createBuffer: 0, createBindGroup: 0 });
    await device.queue.onSubmittedWorkDone();
    expect(accuracy(values(await run(own.download(out))), sage.output).relL1).toBeLessThanOrEqual(BOUNDS.sageRelL1);
    for (const t of [q, k, v, out]) t.dispose();
    await run(own.dispose);
  });

  it("fails with LimitExceeded, before allocating, when a buffer would exceed one binding", async () => {
    const limit = b.gpuDevice().limits.maxStorageBufferBindingSize;
    const n = Math.ceil(limit / (256 * 4)) + 1; // the f32 result [1, 1, n, 256] is over the limit
    const one = (tokens: number) => hostTensor(new Float32Array(1), [1, 1, tokens, 256], { strides: [0, 0, 0, 0] });
    const [q, k, v] = [one(n), one(16), one(16)];
    const p = Effect.runSync(resolveProblem(q, k, v, { validate: false }));
    const err = await run(Effect.flip(b.attention(p, q, k, v)));
    expect(err._tag).toBe("DeviceError");
    expect((err as { reason?: string }).reason).toBe("LimitExceeded");
  });

  it("turns a lost device into DeviceLost for its tensors and recovers with a new device", async () => {
    const own = await run(makeWith({}));
    const first = own.gpuDevice();
    const stale = await run(own.upload(host.q));
    first.destroy();
    await first.lost;
    const out = await run(own.attention(problem, host.q, host.k, host.v));
    expect(own.gpuDevice()).not.toBe(first);
    expect(accuracy(values(out.output), sage.output).relL1).toBeLessThanOrEqual(BOUNDS.sageRelL1);
    const err = await run(
      Effect.flip(own.attention(Effect.runSync(resolveProblem(stale, host.k, host.v)), stale, host.k, host.v)),
    );
    expect((err as { reason?: string }).reason).toBe("DeviceLost");
    await run(own.dispose);
    const after = await run(Effect.flip(own.attention(problem, host.q, host.k, host.v)));
    expect((after as { reason?: string }).reason).toBe("Disposed");
  });

  it("times each kernel with timestamp queries when profiling", async () => {
    const prof = await run(makeWith({ profile: true }));
    const t0 = performance.now();
    await run(prof.attention(problem, host.q, host.k, host.v));
    const wall = performance.now() - t0;
    const times = prof.lastKernelTimes();
    await run(prof.dispose);
    if (!prof.gpuDevice().features.has("timestamp-query")) return expect(times).toBeUndefined();
    // A contiguous output is stored by the INT8 kernel itself: no store_output pass.
    expect(Object.keys(times ?? {}).sort()).toEqual(["attention_int8", "k_mean", "pack_f16", "quantize_int8"]);
    // Stamps in order and read in ms: no kernel negative, all of them together inside the call's wall time.
    const ms = Object.values(times ?? {});
    for (const t of ms) expect(t).toBeGreaterThanOrEqual(0);
    const total = ms.reduce((a, t) => a + t, 0);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(wall);
  });

  it("reports DeviceLost, not a crash, when the caller's device is lost", async () => {
    const adapter = await (globalThis as unknown as { navigator: { gpu: GPU } }).navigator.gpu.requestAdapter();
    const device = await adapter!.requestDevice();
    const theirs = await run(makeWith({ device }));
    expect(theirs.details.source).toBe("caller's GPUDevice");
    device.destroy();
    await device.lost;
    const err = await run(Effect.flip(theirs.attention(problem, host.q, host.k, host.v)));
    expect((err as { reason?: string }).reason).toBe("DeviceLost");
  });
});

describe.skipIf(backend !== undefined)(`webgpu unavailable here: ${why?.reason}: ${why?.message}`, () => {
  it("says why, with a reason this runtime may give", () => {
    expect(why?._tag).toBe("BackendUnavailable");
    expect(SKIP_OK).toContain(why?.reason);
    expect(why?.message.length).toBeGreaterThan(10);
  });
});
