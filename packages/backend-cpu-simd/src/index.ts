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
import { layerFrom, type BackendProvider } from "@sageattn/core";
import { makeCpuSimd } from "./backend.js";

export { makeCpuSimd, type CpuSimdBackend, type CpuSimdOptions } from "./backend.js";
export { probeFeatures, type Features } from "./features.js";
export type { Build, PrecompiledModule } from "./engine.js";

/** The cpu-simd provider: priority 100 (below cuda and webgpu, above the js oracle). */
export const provider: BackendProvider = { name: "cpu-simd", priority: 100, load: makeCpuSimd() };

/** Loads the backend with default options (all hardware threads). */
export const make = provider.load;

/** A layer providing the backend, disposed (workers ended) when its scope closes. */
export const layer = layerFrom(provider);
