// Does the process grow across calls? Resident memory (RSS) and the JS heap after each round of `--calls` calls on
// the webgpu backend, under Deno: `attention()` on host tensors, on device tensors (output disposed each call), and
// a KV cache created, appended to, attended and disposed. With `--replay`, one host call's WebGPU commands are
// recorded and replayed alone (no sageattn code between them), each dispatch left out in turn: the dispatch whose
// absence stops the growth is the one that leaks, and whether the replay grows at all tells the driver (or wgpu)
// from our JavaScript.
//   deno bundle --sloppy-imports --platform=deno -o bench-out/memory.js bench/memory.ts
//   deno run -A --v8-flags=--expose-gc memory.js [--calls 100] [--rounds 4] [--n 16] [--replay]
import { attention, createKvCache, dispose, hostTensor, synchronize, upload, useBackends } from "@sageattn/core";
import { provider } from "../src/index.ts";

declare const Deno: {
  readonly args: string[];
  memoryUsage(): { rss: number; heapUsed: number };
};

const arg = (name: string, fallback: number) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
};
const [calls, rounds, N, H, Hkv, D] = [arg("calls", 100), arg("rounds", 4), arg("n", 16), 4, 2, 64];
useBackends([provider]);
const rows = (n: number, heads: number) =>
  hostTensor(Float32Array.from({ length: heads * n * D }, (_, i) => Math.sin(i)), [1, heads, n, D]);
const gc = (globalThis as { gc?: () => void }).gc;

/** RSS and heap in MiB after each round of `step` × calls. */
async function grow(name: string, step: () => Promise<void>): Promise<void> {
  const seen: string[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < calls; i++) await step();
    gc?.();
    const m = Deno.memoryUsage();
    seen.push(`${(m.rss / 2 ** 20).toFixed(0)}/${(m.heapUsed / 2 ** 20).toFixed(0)}`);
  }
  console.log(`${name.padEnd(34)} RSS/heap MiB after each ${calls} calls: ${seen.join(" ")}`);
}

const q = rows(N, H), kv = rows(N, H);
await attention(q, kv, kv, { backend: "webgpu" });
if (!Deno.args.includes("--replay")) {
  await grow("attention, host tensors", async () => void await attention(q, kv, kv, { backend: "webgpu" }));
  const [dq, dkv] = [await upload(q, "webgpu"), await upload(kv, "webgpu")];
  await grow("attention, device tensors", async () => {
    const r = await attention(dq, dkv, dkv);
    await synchronize();
    (r.output as { dispose?: () => void }).dispose?.();
  });
  await grow("KV cache: create, append, attend", async () => {
    const c = await createKvCache({ batch: 1, headsKv: Hkv, headDim: D, capacity: 4 * N, dtype: "f32" });
    await c.append(rows(N, Hkv), rows(N, Hkv));
    await c.attend(rows(1, H));
    await c.dispose();
  });
} else {
  // Record every method call on the WebGPU objects during one host call, then replay them with fresh encoders.
  type Entry = { self: object; name: string; args: unknown[]; result: unknown };
  const log: Entry[] = [];
  let recording = false;
  const classes = [GPUDevice, GPUQueue, GPUCommandEncoder, GPUComputePassEncoder, GPUBuffer];
  for (const cls of classes) {
    const proto = cls.prototype as unknown as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const f = Object.getOwnPropertyDescriptor(proto, name)?.value;
      if (typeof f !== "function" || name === "constructor") continue;
      proto[name] = function (this: object, ...args: unknown[]) {
        const result = f.apply(this, args);
        if (recording) log.push({ self: this, name, args, result });
        return result;
      };
    }
  }
  recording = true;
  await attention(q, kv, kv, { backend: "webgpu" });
  recording = false;
  const dispatches = log.filter((e) => e.name === "dispatchWorkgroups");
  console.log(`one call: ${log.length} WebGPU calls, dispatches ${dispatches.map((e) => `(${e.args})`).join(" ")}`);
  const replay = async (leaveOut?: Entry) => {
    const made = new Map<unknown, unknown>();
    const swap = (x: unknown) => made.get(x) ?? x;
    for (const e of log) {
      if (e === leaveOut) continue;
      const self = swap(e.self) as Record<string, (...a: unknown[]) => unknown>;
      const r = self[e.name](...e.args.map((a) => Array.isArray(a) ? a.map(swap) : swap(a)));
      if (r instanceof Promise) await r;
      else if (r !== undefined) made.set(e.result, r);
    }
  };
  await grow("replay, every dispatch", () => replay());
  for (const [i, d] of dispatches.entries()) await grow(`replay without dispatch ${i}`, () => replay(d));
}
await dispose();
