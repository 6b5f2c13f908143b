/** sageattn for workerd (Cloudflare Workers): cpu-simd on the precompiled wasm its `workerd` condition imports. */
import { useBackends } from "@sageattn/core";
import { provider as cpuSimd } from "@sageattn/backend-cpu-simd";

useBackends([cpuSimd]);

export * from "@sageattn/core";
