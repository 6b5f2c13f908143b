// Precompiled modules (the wasm/*.wasm files, as workerd imports them): the backend instantiates them without
// compiling any bytes at run time, and computes what the inlined build does.
import { readFileSync } from "node:fs";
import { accuracy, toCanonicalF32 } from "@sageattn/core";
import { Effect } from "effect";
import { afterAll, describe, expect, it, vi } from "vitest";
import { makeCpuSimd } from "./backend.js";
import type { PrecompiledModule } from "./engine.js";
import { inputs } from "./test-inputs.js";

const file = (name: string) => new WebAssembly.Module(readFileSync(new URL(`../wasm/${name}.wasm`, import.meta.url)));
const unshared: PrecompiledModule = { build: "simd128", shared: false, module: file("simd128-unshared") };
const inlined = await Effect.runPromise(makeCpuSimd({ threads: 1, build: "simd128" }));
afterAll(() => Effect.runPromise(inlined.dispose));

describe("precompiled modules", () => {
  it("load with runtime compilation refused (as in workerd) and match the inlined build", async () => {
    const refuse = () => Promise.reject(new WebAssembly.CompileError("Wasm code generation disallowed by embedder"));
    const compile = vi.spyOn(WebAssembly, "compile").mockImplementation(refuse);
    try {
      const b = await Effect.runPromise(makeCpuSimd({ threads: 1, modules: [unshared] }));
      expect(b.details.build).toBe("simd128");
      const x = inputs({ B: 1, Hq: 2, Hkv: 2, Nq: 130, Nk: 130, D: 64 }, "gaussian", { causal: true }, 5);
      const got = await Effect.runPromise(b.attention(x.p, x.q, x.k, x.v));
      const want = await Effect.runPromise(inlined.attention(x.p, x.q, x.k, x.v));
      expect(accuracy(toCanonicalF32(got.output as never), toCanonicalF32(want.output as never)).relL1).toBe(0);
      expect(compile).not.toHaveBeenCalled();
      await Effect.runPromise(b.dispose);
    } finally {
      compile.mockRestore();
    }
  });

  it("fail with FeatureMissing when none suits the runtime's memory kind", async () => {
    const sharedOnly: PrecompiledModule = { build: "simd128", shared: true, module: file("simd128-shared") };
    const exit = await Effect.runPromiseExit(makeCpuSimd({ threads: 1, modules: [sharedOnly] }));
    expect(exit._tag).toBe("Failure");
    if (exit._tag === "Failure" && exit.cause._tag === "Fail") expect(exit.cause.error.reason).toBe("FeatureMissing");
  });
});
