/**
 * @sageattn/backend-cpu-simd: SageAttention in WebAssembly SIMD (INT8 Q·Kᵀ, 16-bit fixed-point P·V), with a
 * relaxed-SIMD build where the runtime has it and workers over shared memory where it allows them.
 *
 * @example
 *   import { provider } from "@sageattn/backend-cpu-simd";
 *   import { registerBackend, attention } from "@sageattn/core";
 *   registerBackend(provider);
 *   const { output } = await attention(q, k, v, { causal: true });
 */
import type { BackendProvider } from "@sageattn/core";
import { configureCpuSimd, makeCpuSimd } from "./backend.js";

export { configureCpuSimd, type CpuSimdBackend, type CpuSimdOptions, makeCpuSimd } from "./backend.js";
export { type Features, probeFeatures } from "./features.js";
export type { Build, PrecompiledModule } from "./engine.js";

/**
 * The cpu-simd provider: priority 100 (below cuda and webgpu, above the js oracle). Options through core:
 * `loadBackend("cpu-simd", { threads: 2 })`; an Effect layer through core's `layerFrom(provider)`.
 */
export const provider: BackendProvider = {
  name: "cpu-simd",
  priority: 100,
  load: makeCpuSimd(),
  configure: configureCpuSimd(),
};
