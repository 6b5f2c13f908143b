// The webgpu KV cache on a real adapter (Deno: lavapipe on CI), beyond the shared decode conformance cases: device
// tensors in and out, both P·V paths against the oracle cache, no new GPU buffers in steady-state decode steps,
// and dispose destroying the cache's buffers.
import {
  accuracy,
  fromCanonicalF32,
  type HostTensor,
  hostTensor,
  kvCacheReference,
  type KvCacheSpec,
  makeQKV,
  resolveProblem,
  type Tensor,
  toCanonicalF32,
} from "@sageattn/core";
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { makeWith, type WebGPUBackend } from "./index.js";

const loaded = await Effect.runPromiseExit(makeWith({}));
const backend: WebGPUBackend | undefined = Exit.isSuccess(loaded) ? loaded.value : undefined;
const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e);

const B = 1, Hq = 8, Hkv = 2, D = 64, N = 150;
const spec: KvCacheSpec = {
  batch: B,
  headsKv: Hkv,
  headDim: D,
  capacity: 200,
  dtype: "f32",
  layout: "HND",
  smoothK: true,
  valueFormat: "f16",
};
const x = makeQKV({ B, Hq, Hkv, Nq: 4, Nk: N, D }, "k-bias", 21);
/** Rows [r0, r1) of every kv head of a canonical [B, Hkv, N, D] array. */
const rows = (src: Float32Array, r0: number, r1: number) => {
  const out = new Float32Array(B * Hkv * (r1 - r0) * D);
  for (let h = 0; h < B * Hkv; h++) out.set(src.subarray((h * N + r0) * D, (h * N + r1) * D), h * (r1 - r0) * D);
  return out;
};
const kv = (r0: number, r1: number) =>
  [hostTensor(rows(x.k, r0, r1), [B, Hkv, r1 - r0, D]), hostTensor(rows(x.v, r0, r1), [B, Hkv, r1 - r0, D])] as const;
const q4 = hostTensor(x.q, [B, Hq, 4, D]);
const q1 = hostTensor(x.q.slice(0, Hq * D), [B, Hq, 1, D]);
const values = (t: Tensor) => toCanonicalF32(t as HostTensor);

describe.skipIf(backend === undefined)(
  `webgpu kv cache on ${backend?.device ?? "no adapter"}`,
  { timeout: 300_000 },
  () => {
    const b = backend as WebGPUBackend;

    // Every P·V path; and the split-K ranges at their extremes: the whole cache in one workgroup per (b, kv head)
    // (decodeWorkgroups 1: the online softmax across blocks) and two ranges merged (3), besides the default (one block each).
    const paths = [
      ...[true, false].flatMap((f16) =>
        (["f16-block", "f32"] as const).map((pvAccumulation) => ({
          f16,
          pvAccumulation,
          decodeWorkgroups: undefined as number | undefined,
        }))
      ),
      { f16: true, pvAccumulation: "f16-block" as const, decodeWorkgroups: 1 },
      { f16: false, pvAccumulation: "f32" as const, decodeWorkgroups: 3 },
    ];
    for (const { f16, pvAccumulation, decodeWorkgroups } of paths) {
      it(`tracks the oracle cache across appends and a requantize (shader-f16 ${f16 ? "if present" : "off"}, P·V ${pvAccumulation}, decodeWorkgroups ${decodeWorkgroups ?? "default"})`, async () => {
        const own = await run(makeWith({ f16, decodeWorkgroups }));
        const cache = await run(own.kvCache!(spec));
        const oracle = kvCacheReference(spec);
        let len = 0;
        const step = async (n: number) => {
          const [k, v] = kv(len, len + n);
          await run(cache.append(k, v));
          oracle.append(k.data as Float32Array, v.data as Float32Array, n);
          len += n;
        };
        const check = async (q: HostTensor, nq: number, where: string) => {
          const [k, v] = kv(0, len);
          const p = Effect.runSync(resolveProblem(q, k, v, { causal: true, returnLse: true, pvAccumulation }));
          const got = await run(cache.attend(p, q));
          const want = oracle.attend(p, q.data as Float32Array);
          expect(accuracy(values(got.output), want.output).relL1, `${where}, Nq ${nq}`).toBeLessThanOrEqual(2e-3);
          for (let r = 0; r < want.lse.length; r++) {
            expect(Math.abs(got.lse![r] - want.lse[r]), `${where}: lse row ${r}`).toBeLessThanOrEqual(
              2e-2 * Math.max(1, Math.abs(want.lse[r])),
            );
          }
        };
        await step(70);
        await check(q4, 4, "after a 70-row prefill");
        for (let i = 0; i < 60; i++) await step(1);
        await check(q1, 1, "after 60 one-row appends");
        await run(cache.requantize);
        oracle.requantize();
        await check(q4, 4, "after requantize");
        await step(20);
        await check(q1, 1, "after requantize and 20 more rows");
        await run(cache.dispose);
        await run(own.dispose);
      });
    }

    for (const f16 of [true, false]) {
      it(`sums in f32 the kv heads whose device-appended V is past f16 blocks' range (shader-f16 ${f16 ? "if present" : "off"})`, async () => {
        // As attention's test in backend.test.ts: P near 1 on every key, kv head 1's V about 2000, so a block's f16
        // sum would overflow; the host never sees device rows, so the cache must flag the head as they land.
        const own = await run(makeWith({ f16 }));
        const cache = await run(own.kvCache!(spec));
        const oracle = kvCacheReference(spec);
        const n = 130;
        const [k, v] = [rows(x.k, 0, n), rows(x.v, 0, n)];
        for (let i = v.length / 2; i < v.length; i++) v[i] += 2000;
        const q = hostTensor(x.q.map((e) => e * 0.01), [B, Hq, 4, D]);
        const [kd, vd] = [
          await run(own.upload(hostTensor(k, [B, Hkv, n, D]))),
          await run(own.upload(hostTensor(v, [B, Hkv, n, D]))),
        ];
        await run(cache.append(kd, vd));
        oracle.append(k, v, n);
        const shapes = [hostTensor(k, [B, Hkv, n, D]), hostTensor(v, [B, Hkv, n, D])] as const;
        const p = Effect.runSync(
          resolveProblem(q, shapes[0], shapes[1], { pvAccumulation: "f16-block", validate: false }),
        );
        const got = values((await run(cache.attend(p, q))).output);
        expect(got.every(Number.isFinite), "every output finite").toBe(true);
        const want = oracle.attend({ ...p, pvAccumulation: "f32" }, q.data as Float32Array);
        expect(accuracy(got, want.output).relL1).toBeLessThanOrEqual(2e-3);
        for (const t of [kd, vd]) t.dispose();
        await run(cache.dispose);
        await run(own.dispose);
      });
    }

    it("shows a NaN or ∞ of device-appended k or v in the rows that see it (both P·V paths)", async () => {
      for (const fault of [NaN, Infinity]) {
        for (const which of ["k", "v"] as const) {
          for (const pvAccumulation of ["f16-block", "f32"] as const) {
            const cache = await run(b.kvCache!(spec));
            const data = { k: rows(x.k, 0, 70), v: rows(x.v, 0, 70) };
            data[which][5 * D] = fault; // key 5 of kv head 0, which q4's rows of heads 0–3 see
            const [kd, vd] = [
              await run(b.upload(hostTensor(data.k, [B, Hkv, 70, D]))),
              await run(b.upload(hostTensor(data.v, [B, Hkv, 70, D]))),
            ];
            await run(cache.append(kd, vd));
            const [hk, hv] = kv(0, 70);
            const p = Effect.runSync(resolveProblem(q4, hk, hv, { pvAccumulation }));
            const got = values((await run(cache.attend(p, q4))).output);
            expect(got.subarray(0, D).some((e) => !Number.isFinite(e)), `${fault} in ${which}, ${pvAccumulation}`)
              .toBe(true);
            for (const t of [kd, vd]) t.dispose();
            await run(cache.dispose);
          }
        }
      }
    });

    it("takes device tensors and writes a device out (bf16, NHD)", async () => {
      const s: KvCacheSpec = { ...spec, dtype: "bf16", layout: "NHD" };
      const cache = await run(b.kvCache!(s));
      const oracle = kvCacheReference(s);
      const dev = (data: Float32Array, h: number, n: number) =>
        run(b.upload(fromCanonicalF32(data, { B, H: h, N: n, D }, "bf16", "NHD")));
      const canon = (data: Float32Array, h: number, n: number) =>
        toCanonicalF32(fromCanonicalF32(data, { B, H: h, N: n, D }, "bf16", "NHD"));
      const [k, v] = [await dev(rows(x.k, 0, 100), Hkv, 100), await dev(rows(x.v, 0, 100), Hkv, 100)];
      await run(cache.append(k, v));
      oracle.append(canon(rows(x.k, 0, 100), Hkv, 100), canon(rows(x.v, 0, 100), Hkv, 100), 100);
      const q = await dev(x.q, Hq, 4);
      const out = await run(
        b.upload(fromCanonicalF32(new Float32Array(Hq * 4 * D), { B, H: Hq, N: 4, D }, "bf16", "NHD")),
      );
      const [hk, hv] = [
        fromCanonicalF32(rows(x.k, 0, 100), { B, H: Hkv, N: 100, D }, "bf16", "NHD"),
        fromCanonicalF32(rows(x.v, 0, 100), { B, H: Hkv, N: 100, D }, "bf16", "NHD"),
      ];
      const p = Effect.runSync(resolveProblem(q, hk, hv, { out }));
      const got = await run(cache.attend(p, q));
      expect(got.output).toBe(out);
      const want = oracle.attend(p, canon(x.q, Hq, 4));
      expect(accuracy(toCanonicalF32(await run(b.download(out))), want.output).relL1).toBeLessThanOrEqual(2e-3 + 4e-3);
      for (const t of [k, v, q, out]) t.dispose();
      await run(cache.dispose);
    });

    it("appends views of one GPUBuffer at moving offsets (even and odd) without new GPU objects, as the oracle", async () => {
      const own = await run(makeWith({}));
      const device = own.gpuDevice();
      const s: KvCacheSpec = { ...spec, dtype: "f16" };
      const f16 = (data: Float32Array, n: number) => fromCanonicalF32(data, { B, H: Hkv, N: n, D }, "f16", "HND");
      // K and V rows [B, Hkv, N, D] as f16 in one buffer each, twice: from element 0 (views start on even elements,
      // so rows are read as whole words) and from an odd element (read element by element). The steps alternate
      // between the copies, so one buffer is seen at both parities.
      const gap = Hkv * N * D + 1;
      const whole = (src: Float32Array) => {
        const bits = new Uint16Array(Math.ceil((2 * gap) / 2) * 2);
        const data = f16(src, N).data as Uint16Array;
        bits.set(data, 0);
        bits.set(data, gap);
        const g = device.createBuffer({
          size: bits.byteLength,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
        });
        device.queue.writeBuffer(g, 0, bits);
        return g;
      };
      const kBuffer = whole(x.k), vBuffer = whole(x.v);
      const buffers = [0, gap].map((lead) => ({ lead, k: kBuffer, v: vBuffer }));
      const view = (g: GPUBuffer, lead: number, r0: number, r1: number) =>
        run(own.adopt(g, {
          dtype: "f16",
          shape: [B, Hkv, r1 - r0, D],
          strides: [Hkv * N * D, N * D, D, 1],
          offset: lead + r0 * D,
        }));
      const counts = { createBuffer: 0, createBindGroup: 0 };
      const methods = device as unknown as Record<keyof typeof counts, (...a: unknown[]) => unknown>;
      for (const name of Object.keys(counts) as Array<keyof typeof counts>) {
        const original = methods[name].bind(device);
        methods[name] = (...a: unknown[]) => {
          counts[name]++;
          return original(...a);
        };
      }
      const cache = await run(own.kvCache!(s));
      const oracle = kvCacheReference(s);
      const rounded = (r0: number, r1: number) =>
        [toCanonicalF32(f16(rows(x.k, r0, r1), r1 - r0)), toCanonicalF32(f16(rows(x.v, r0, r1), r1 - r0))] as const;
      let len = 0;
      const append = async (n: number, from: (typeof buffers)[number]) => {
        const [k, v] = [await view(from.k, from.lead, len, len + n), await view(from.v, from.lead, len, len + n)];
        await run(cache.append(k, v));
        oracle.append(...rounded(len, len + n), n);
        len += n;
      };
      await append(70, buffers[0]);
      for (let i = 0; i < 4; i++) await append(1, buffers[i % 2]);
      counts.createBuffer = counts.createBindGroup = 0;
      for (let i = 0; i < 60; i++) await append(1, buffers[i % 2]);
      expect(counts, "GPU objects made by 60 one-row appends after warm-up").toEqual({
        createBuffer: 0,
        createBindGroup: 0,
      });
      const [k, v] = kv(0, len);
      const p = Effect.runSync(resolveProblem(q1, k, v, { returnLse: true }));
      const got = await run(cache.attend(p, q1));
      const want = oracle.attend(p, q1.data as Float32Array);
      expect(accuracy(values(got.output), want.output).relL1, `after ${len} rows`).toBeLessThanOrEqual(2e-3);
      await run(cache.dispose);
      kBuffer.destroy();
      vBuffer.destroy();
      await run(own.dispose);
    });

    it("creates no GPU buffers or bind groups in steady-state decode steps, and dispose destroys the cache's buffers", async () => {
      const own = await run(makeWith({}));
      const device = own.gpuDevice();
      const counts = { createBuffer: 0, createBindGroup: 0 };
      const made: GPUBuffer[] = [];
      const methods = device as unknown as Record<keyof typeof counts, (...a: unknown[]) => unknown>;
      for (const name of Object.keys(counts) as Array<keyof typeof counts>) {
        const original = methods[name].bind(device);
        methods[name] = (...a: unknown[]) => {
          counts[name]++;
          const r = original(...a);
          if (name === "createBuffer") made.push(r as GPUBuffer);
          return r;
        };
      }
      const cache = await run(own.kvCache!(spec));
      const [k0, v0] = kv(0, 100);
      await run(cache.append(k0, v0));
      const q = await run(own.upload(q1));
      const out = await run(own.upload(hostTensor(new Float32Array(Hq * D), [B, Hq, 1, D])));
      const problem = (len: number) => {
        const [k, v] = kv(0, len);
        return Effect.runSync(resolveProblem(q, k, v, { returnLse: true, out }));
      };
      let len = 100;
      const decodeStep = async () => {
        const [k, v] = kv(len, len + 1);
        await run(cache.append(k, v));
        len++;
        return run(cache.attend(problem(len), q));
      };
      for (let i = 0; i < 2; i++) await decodeStep();
      expect(counts.createBuffer, "the wrapper sees the warm-up's buffers").toBeGreaterThan(0);
      counts.createBuffer = counts.createBindGroup = 0;
      for (let i = 0; i < 30; i++) {
        const r = await decodeStep();
        expect(r.lse?.every(Number.isFinite)).toBe(true);
      }
      expect(counts).toEqual({ createBuffer: 0, createBindGroup: 0 });
      const oracle = kvCacheReference(spec);
      oracle.append(rows(x.k, 0, 100), rows(x.v, 0, 100), 100);
      oracle.append(rows(x.k, 100, len), rows(x.v, 100, len), len - 100);
      const want = oracle.attend(problem(len), q1.data as Float32Array);
      expect(accuracy(values(await run(own.download(out))), want.output).relL1).toBeLessThanOrEqual(2e-3);

      const destroyed = new Set<GPUBuffer>();
      for (const buffer of made) {
        const original = buffer.destroy.bind(buffer);
        buffer.destroy = () => {
          destroyed.add(buffer);
          original();
        };
      }
      await run(cache.dispose);
      const cacheBuffers = made.filter((m) => m.label.startsWith("kv cache:"));
      expect(cacheBuffers.length).toBe(6);
      for (const m of cacheBuffers) expect(destroyed.has(m), m.label).toBe(true);
      const after = await Effect.runPromiseExit(cache.attend(problem(len), q));
      expect(Exit.isFailure(after) && after.cause._tag === "Fail" && after.cause.error._tag).toBe("DeviceError");
      for (const t of [q, out]) t.dispose();
      await run(own.dispose);
    });
  },
);
