import { defineConfig } from "vite";

/**
 * Cross-origin isolation (COOP + COEP) makes SharedArrayBuffer available, which the cpu-simd backend needs to run
 * its wasm kernels on several worker threads. Both the dev server and `vite preview` (used by the browser test) send it.
 */
const crossOriginIsolation = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export default defineConfig({
  server: { headers: crossOriginIsolation },
  preview: { headers: crossOriginIsolation },
  // Backends load wasm and run workers as ES modules; top-level await is fine in every browser with WebGPU or wasm SIMD.
  build: { target: "es2022" },
  worker: { format: "es" },
});
