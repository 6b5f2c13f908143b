// 10 000 small calls leave wasm memory untouched after the first and the JS heap flat.
import { Effect } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { makeCpuSimd } from "./backend.js";
import { inputs } from "./test-inputs.js";

const backend = await Effect.runPromise(makeCpuSimd({ threads: 2 }));
afterAll(() => Effect.runPromise(backend.dispose));

const heap = () =>
  (globalThis as { process?: { memoryUsage?: () => { heapUsed: number } } }).process?.memoryUsage?.().heapUsed ?? 0;

/** A full collection: `gc` where exposed, Bun.gc, else V8's flag set at run time (Node, Deno). */
async function collector(): Promise<() => void> {
  const g = globalThis as { gc?: () => void; Bun?: { gc(full: boolean): void } };
  if (g.gc) return g.gc;
  if (g.Bun) return () => g.Bun!.gc(true);
  const v8 = await import("node:v8");
  const vm = await import("node:vm");
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}
const gc = await collector();

/** The heap is sampled after a full collection every 250 calls; a leak shows as low points that climb. */
describe("memory over 10 000 calls", () => {
  it("wasm memory stays the same size and the heap's low points grow by less than 2 MiB", async () => {
    const x = inputs({ B: 1, Hq: 2, Hkv: 1, Nq: 24, Nk: 40, D: 32 }, "gaussian", { causal: true, returnLse: true });
    const call = () => Effect.runPromise(backend.attention(x.p, x.q, x.k, x.v));
    for (let i = 0; i < 500; i++) await call();
    const wasm0 = backend.wasmMemoryBytes();
    const samples: number[] = [];
    for (let i = 1; i <= 10_000; i++) {
      await call();
      if (i % 250 === 0) {
        gc();
        samples.push(heap());
      }
    }
    expect(backend.wasmMemoryBytes(), "wasm memory bytes").toBe(wasm0);
    const low = (a: number[]) => Math.min(...a);
    const first = low(samples.slice(0, 20)), last = low(samples.slice(20));
    expect(last - first, `heap low point ${first} → ${last} bytes`).toBeLessThan(2 * 2 ** 20);
  }, 120_000);
});
