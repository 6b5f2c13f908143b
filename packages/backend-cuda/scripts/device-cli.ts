/**
 * The CLI as one file for the GPU machine, where no node_modules travel: the cuda backend is registered here because
 * a bundle cannot follow discovery's import-by-name. Bundle: `npx bun build --target=bun scripts/device-cli.ts
 * --outfile ../../.device-bundle/cli.js`; run: `SAGEATTN_CUDA_LIB=… SAGEATTN_TORCH_SCRIPT=apps/cli/peers/torch_sdpa.py
 * bun .device-bundle/cli.js bench --backend cuda --peers` (or `deno run -A`).
 */
import { registerBackend } from "@sageattn/core";
import { provider } from "../src/index.js";

registerBackend(provider);
await import("../../../apps/cli/src/main.js");
