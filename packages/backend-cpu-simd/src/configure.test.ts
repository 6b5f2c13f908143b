// An app configures cpu-simd through core (`loadBackend("cpu-simd", options)`), never by importing makeCpuSimd:
// the options reach the backend, bad ones are InvalidInput InvalidOption, and the configured backend serves calls.
import { attention, disposeBackends, hostTensor, loadBackend, registerBackend } from "@sageattn/core";
import { Effect, Exit } from "effect";
import { afterAll, describe, expect, it } from "vitest";
import { provider } from "./index.js";

registerBackend(provider);
afterAll(() => Effect.runPromise(disposeBackends()));

describe('loadBackend("cpu-simd", options)', () => {
  it("loads with the threads and build asked for, and serves calls by name", async () => {
    const b = await Effect.runPromise(loadBackend("cpu-simd", { threads: 1, build: "simd128" }));
    expect(b.details.threads).toMatch(/^1\b/);
    expect(b.details.build).toBe("simd128");
    const t = hostTensor(Float32Array.from({ length: 2 * 64 * 32 }, (_, i) => Math.sin(i * 0.1)), [1, 2, 64, 32]);
    const r = await attention(t, t, t, { backend: "cpu-simd" });
    expect(r.backend).toBe("cpu-simd");
    expect((await Effect.runPromise(loadBackend("cpu-simd"))).details.threads).toMatch(/^1\b/);
  });

  for (const options of [{ threads: 0 }, { threads: 1.5 }, { build: "avx" }, { thread: 2 }]) {
    it(`rejects ${JSON.stringify(options)} with InvalidInput InvalidOption`, async () => {
      const exit = await Effect.runPromiseExit(loadBackend("cpu-simd", options));
      expect(
        Exit.isFailure(exit) && exit.cause._tag === "Fail"
          ? `${exit.cause.error._tag}/${exit.cause.error.reason}`
          : "loaded",
      ).toBe("InvalidInput/InvalidOption");
    });
  }
});
