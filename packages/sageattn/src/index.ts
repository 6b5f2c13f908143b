/**
 * sageattn: `@sageattn/core`'s API with the backends that can run on this target imported statically, so that
 * bundlers (Vite, esbuild, `bun build`, wrangler) include them. The package's export conditions pick the entry:
 * browser (webgpu, cpu-simd), node (webgpu, cpu-simd), bun and deno (cuda, webgpu, cpu-simd), workerd (cpu-simd on
 * precompiled wasm). These types are the same for every entry.
 *
 * @example
 *   import { attention, hostTensor } from "sageattn";
 *   const { output, backend } = await attention(q, k, v, { causal: true });
 */
export * from "@sageattn/core";
