/**
 * @sageattn/backend-cuda: SageAttention CUDA kernels (INT8 Q·Kᵀ, FP16 P·V, sm80+) behind a C ABI, driven from Bun
 * (`bun:ffi`) and Deno (`Deno.dlopen`). Node has no built-in FFI: there the backend reports FeatureMissing.
 *
 * @example
 *   import { provider } from "@sageattn/backend-cuda";
 *   import { registerBackend, attention } from "@sageattn/core";
 *   registerBackend(provider);
 *   const { output } = await attention(q, k, v, { causal: true, backend: "cuda" });
 */
import type { BackendProvider } from "@sageattn/core";
import { makeCuda } from "./backend.js";

export { type CudaBackend, makeCuda } from "./backend.js";
export { CudaTensor } from "./device-tensor.js";
export { libraryCandidates } from "./ffi/library.js";

/**
 * The cuda provider: priority 300, the first auto-selection tries. It loads the library, device 0 (or
 * SAGEATTN_CUDA_DEVICE) and a stream; it takes no options.
 */
export const provider: BackendProvider = { name: "cuda", priority: 300, load: makeCuda };
