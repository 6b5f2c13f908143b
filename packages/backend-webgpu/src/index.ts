/**
 * SageAttention on WebGPU (WGSL compute shaders): browsers, Deno (built-in WebGPU), Bun through bun-webgpu and
 * Node through the `webgpu` package, where they give a real adapter.
 * @example
 *   import { attention } from "@sageattn/core";
 *   import "@sageattn/backend-webgpu"; // or let core discover it
 *   const { output } = await attention(q, k, v, { backend: "webgpu" });
 */
import type { BackendProvider } from "@sageattn/core";
import { configureWebGPU, makeWith } from "./backend.js";

export { configureWebGPU, makeWith, type WebGPUBackend, type WebGPUOptions } from "./backend.js";
export type { AdoptOptions } from "./tensors.js";

/**
 * The webgpu backend for registration: priority 200 (after cuda, before cpu-simd), on the best adapter this runtime
 * gives (refusing Dawn's null backend). Options through core: `loadBackend("webgpu", { f16: false })`.
 */
export const provider: BackendProvider = {
  name: "webgpu",
  priority: 200,
  load: makeWith(),
  configure: configureWebGPU,
};
