/**
 * SageAttention on WebGPU (WGSL compute shaders): browsers, Deno (built-in WebGPU), Bun through bun-webgpu and
 * Node through the `webgpu` package, where they give a real adapter.
 * @example
 *   import { attention } from "@sageattn/core";
 *   import "@sageattn/backend-webgpu"; // or let core discover it
 *   const { output } = await attention(q, k, v, { backend: "webgpu" });
 */
import { layerFrom, type BackendProvider } from "@sageattn/core";
import { makeWith } from "./backend.js";

export { makeWith, type WebGPUBackend, type WebGPUOptions } from "./backend.js";
export type { AdoptOptions } from "./tensors.js";

/** Loads the backend on the best adapter this runtime gives (refusing Dawn's null backend). */
export const make = makeWith();

/** The webgpu backend for registration: priority 200 (after cuda, before cpu-simd). */
export const provider: BackendProvider = { name: "webgpu", priority: 200, load: make };

/** A layer providing the webgpu backend, disposed with its scope. */
export const layer = layerFrom(provider);
