/**
 * @sageattn/backend-cpu-simd for workerd (Cloudflare Workers) and other runtimes that refuse to compile wasm at run
 * time but import `.wasm` files as compiled modules: the same package, with the provider loading those modules.
 * Chosen by the package's `workerd` export condition. Single-threaded (no workers there), unshared memory.
 */
import type { BackendProvider } from "@sageattn/core";
import relaxed from "../wasm/relaxed-simd-unshared.wasm";
import plain from "../wasm/simd128-unshared.wasm";
import { configureCpuSimd, makeCpuSimd } from "./backend.js";
import type { PrecompiledModule } from "./engine.js";

export * from "./index.js";

/** The two unshared builds shipped in wasm/, compiled by the runtime at import. */
export const precompiledModules: readonly PrecompiledModule[] = [
  { build: "relaxed-simd", shared: false, module: relaxed },
  { build: "simd128", shared: false, module: plain },
];

/** The cpu-simd provider on the precompiled modules: priority 100, as everywhere. */
export const provider: BackendProvider = {
  name: "cpu-simd",
  priority: 100,
  load: makeCpuSimd({ modules: precompiledModules }),
  configure: configureCpuSimd({ modules: precompiledModules }),
};
