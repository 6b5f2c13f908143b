/**
 * The GPU machine's check of the cuda backend from Bun or Deno, where no node_modules (so no vitest) travel:
 * bundle it first (`npx bun build --target=bun scripts/device-check.ts --outfile .device-bundle/check.js`), then run
 * it there with SAGEATTN_CUDA_LIB pointing at the carried library. It runs
 *   1. every case of core's conformance list with the conformance suite's bounds, and its error cases;
 *   2. device-resident calls: upload/download, adoption of a raw pointer, device-in → device-out;
 *   3. per-call overhead of a small device-resident call (B1 H1 N128 D64): host enqueue time and throughput;
 *   4. 10 000 such calls with the outputs disposed: device memory before/after and live allocations;
 *   5. the public attention() with a reused device `out`: bits equal to a call without it, host cost per call, and
 *      10 000 calls with live allocations and device memory unchanged;
 *   6. an impossible allocation → DeviceError OutOfMemory, and a normal call right after it.
 * It prints one JSON line per check and a final `SUMMARY` line.
 */
import {
  accuracy,
  attention,
  encode16,
  getBackend,
  hostTensor,
  makeQKV,
  registerBackend,
  resolveProblem,
  runtimeName,
  synchronize,
  toCanonicalF32,
} from "@sageattn/core";
import { Effect, Exit } from "effect";
import { checkCase, conformanceCases, errorCases } from "@sageattn/core/conformance/check";
import { DeviceMemory } from "../src/device-tensor.js";
import { provider, type CudaBackend } from "../src/index.js";
import { openLibrary } from "../src/ffi/library.js";

let failures = 0;
const report = (o: Record<string, unknown>) => {
  if (o.ok === false) failures++;
  console.log(JSON.stringify(o));
};

registerBackend(provider);
const backend = (await getBackend("cuda")) as CudaBackend;
report({ check: "load", runtime: runtimeName(), device: backend.device, details: backend.details });

// 1. conformance cases, checked by the same checkCase as @sageattn/core/conformance (bounds: core's BOUNDS)
const cases = conformanceCases(backend.capabilities, { maxN: 1000, maxD: 256, dtypes: backend.capabilities.dtypes });
for (const [i, c] of cases.entries()) {
  try {
    const r = await checkCase("cuda", c, 1000 + i);
    report({
      check: "conformance", case: c.name, ok: r.ok, failures: r.ok ? undefined : r.failures, pvOracle: r.pvOracle, sageRelL1: r.vsSage.relL1,
      sageCos: r.vsSage.cosine, exactCos: r.vsExact?.cosine, exactRelL1: r.vsExact?.relL1, lseErr: r.lseError,
    });
  } catch (e) {
    report({ check: "conformance", case: c.name, ok: false, error: String((e as Error).message ?? e) });
  }
}
for (const e of errorCases(backend.capabilities)) {
  const { q, k, v, options } = e.make();
  const err = await attention(q, k, v, { ...options, backend: "cuda" }).then(
    () => undefined,
    (x: unknown) => x as { _tag?: string; reason?: string },
  );
  report({ check: "error-case", case: e.name, ok: err?._tag === e.tag && err?.reason === e.reason, got: `${err?._tag}/${err?.reason}` });
}

// 2. device-resident calls
{
  const s = { B: 2, Hq: 4, Hkv: 2, Nq: 300, Nk: 300, D: 64 };
  const { q, k, v } = makeQKV(s, "k-bias", 5);
  const hq = hostTensor(q, [2, 4, 300, 64]);
  const hk = hostTensor(k, [2, 2, 300, 64]);
  const hv = hostTensor(v, [2, 2, 300, 64]);
  const host = await attention(hq, hk, hv, { backend: "cuda", causal: true });
  const [dq, dk, dv] = await Promise.all([hq, hk, hv].map((t) => Effect.runPromise(backend.upload(t))));
  const adoptedK = backend.adopt((dk.handle as { ptr: bigint }).ptr, { dtype: "f32", layout: "HND", shape: [2, 2, 300, 64] });
  const dev = await attention(dq, adoptedK, dv, { backend: "cuda", causal: true });
  const back = await Effect.runPromise(backend.download(dev.output as never));
  const a = accuracy(toCanonicalF32(back), toCanonicalF32(host.output as never));
  adoptedK.dispose(); // adopted: must not free dk's memory
  const again = await attention(dq, dk, dv, { backend: "cuda", causal: true });
  const b = accuracy(toCanonicalF32(await Effect.runPromise(backend.download(again.output as never))), toCanonicalF32(host.output as never));
  report({ check: "device-resident", ok: dev.output.kind === "device" && a.maxAbs === 0 && b.maxAbs === 0, maxAbsVsHost: a.maxAbs, afterAdoptedDispose: b.maxAbs });
  // A caller's device out, written in place: the same bits as the output the call allocates itself.
  const outT = await Effect.runPromise(backend.upload(hostTensor(new Float32Array(2 * 4 * 300 * 64), [2, 4, 300, 64])));
  const into = await attention(dq, dk, dv, { backend: "cuda", causal: true, out: outT });
  const o = accuracy(toCanonicalF32(await Effect.runPromise(backend.download(outT))), toCanonicalF32(back));
  report({ check: "device-out", ok: into.output === outT && o.maxAbs === 0, sameObject: into.output === outT, maxAbsVsOwnOutput: o.maxAbs });
  for (const t of [dq, dk, dv, dev.output, again.output, outT]) (t as { dispose(): void }).dispose();
}

// 3 and 4. per-call overhead and memory flatness (B1 H1 N128 D64, f16, device-resident)
{
  const { q, k, v } = makeQKV({ B: 1, Hq: 1, Hkv: 1, Nq: 128, Nk: 128, D: 64 }, "gaussian", 9);
  const f16 = (x: Float32Array) => hostTensor(encode16(x, "f16"), [1, 1, 128, 64], { dtype: "f16" });
  const [dq, dk, dv] = await Promise.all([f16(q), f16(k), f16(v)].map((t) => Effect.runPromise(backend.upload(t))));
  const p = Effect.runSync(resolveProblem(dq, dk, dv, {}));
  const once = () => {
    const r = Effect.runSync(backend.attention(p, dq, dk, dv));
    (r.output as { dispose(): void }).dispose();
  };
  for (let i = 0; i < 200; i++) once();
  await Effect.runPromise(backend.synchronize);
  // Host cost per call: bursts short enough that the GPU's launch queue never fills (then enqueue would wait on it).
  const burst = 200;
  let hostMs = Infinity;
  for (let rep = 0; rep < 10; rep++) {
    const a = performance.now();
    for (let i = 0; i < burst; i++) once();
    hostMs = Math.min(hostMs, performance.now() - a);
    await Effect.runPromise(backend.synchronize);
  }
  const mem0 = await Effect.runPromise(backend.memoryInfo);
  const live0 = backend.liveAllocations();
  const calls = 10_000;
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) once();
  await Effect.runPromise(backend.synchronize);
  const t2 = performance.now();
  const mem1 = await Effect.runPromise(backend.memoryInfo);
  const live1 = backend.liveAllocations();
  // The public API (validation + selection + the backend), for comparison.
  const apiCalls = 200;
  let apiMs = Infinity;
  for (let rep = 0; rep < 5; rep++) {
    const a = performance.now();
    for (let i = 0; i < apiCalls; i++) ((await attention(dq, dk, dv, { backend: "cuda" })).output as { dispose(): void }).dispose();
    apiMs = Math.min(apiMs, performance.now() - a);
    await Effect.runPromise(backend.synchronize);
  }
  const hostUs = (hostMs / burst) * 1000;
  report({
    check: "per-call",
    ok: hostUs < 20,
    hostUsPerCall: +hostUs.toFixed(2),
    gpuBoundUsPerCall: +(((t2 - t0) / calls) * 1000).toFixed(2),
    publicApiHostUsPerCall: +((apiMs / apiCalls) * 1000).toFixed(2),
  });
  report({ check: "memory-flat", ok: Math.abs(mem1.free - mem0.free) <= 2 ** 20 && live1 === live0, calls, freeBefore: mem0.free, freeAfter: mem1.free, liveBefore: live0, liveAfter: live1 });

  // 5. What a user's steady-state loop costs: the public API with a reused out, nothing allocated per call.
  const outT = await Effect.runPromise(backend.upload(f16(new Float32Array(128 * 64))));
  const opts = { backend: "cuda", out: outT } as const;
  for (let i = 0; i < 200; i++) await attention(dq, dk, dv, opts);
  await synchronize("cuda");
  let outMs = Infinity;
  for (let rep = 0; rep < 10; rep++) {
    const a = performance.now();
    for (let i = 0; i < burst; i++) await attention(dq, dk, dv, opts);
    outMs = Math.min(outMs, performance.now() - a);
    await synchronize("cuda");
  }
  const outUs = (outMs / burst) * 1000;
  const mem2 = await Effect.runPromise(backend.memoryInfo);
  const live2 = backend.liveAllocations();
  const u0 = performance.now();
  for (let i = 0; i < calls; i++) await attention(dq, dk, dv, opts);
  await synchronize("cuda");
  const u1 = performance.now();
  const mem3 = await Effect.runPromise(backend.memoryInfo);
  const live3 = backend.liveAllocations();
  report({ check: "public-api-out", ok: outUs < 15, hostUsPerCall: +outUs.toFixed(2), gpuBoundUsPerCall: +(((u1 - u0) / calls) * 1000).toFixed(2) });
  report({ check: "public-api-out-memory-flat", ok: mem3.free === mem2.free && live3 === live2, calls, freeBefore: mem2.free, freeAfter: mem3.free, liveBefore: live2, liveAfter: live3 });
  for (const t of [dq, dk, dv, outT]) t.dispose();
}

// 6. out of memory
{
  const lib = await Effect.runPromise(openLibrary);
  const mem = new DeviceMemory(lib.native, 0n);
  const exit = await Effect.runPromiseExit(mem.alloc(2 ** 50));
  const err = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? (exit.cause.error as { _tag: string; reason: string; message: string }) : undefined;
  const { q, k, v } = makeQKV({ B: 1, Hq: 2, Hkv: 2, Nq: 64, Nk: 64, D: 64 }, "gaussian", 3);
  const t = (x: Float32Array) => hostTensor(x, [1, 2, 64, 64]);
  const after = await attention(t(q), t(k), t(v), { backend: "cuda" }).then(() => "ok", (e: unknown) => String((e as Error).message ?? e));
  report({ check: "out-of-memory", ok: err?._tag === "DeviceError" && err.reason === "OutOfMemory" && after === "ok", got: `${err?._tag}/${err?.reason}`, message: err?.message, callAfter: after });
}

await Effect.runPromise(backend.dispose);
console.log(`SUMMARY ${runtimeName()} ${failures === 0 ? "PASS" : `FAIL ${failures}`} (${cases.length} conformance cases)`);
