/** sageattn for Deno: cuda (Deno.dlopen), webgpu (navigator.gpu), then cpu-simd. */
import { useBackends } from "@sageattn/core";
import { provider as cuda } from "@sageattn/backend-cuda";
import { provider as webgpu } from "@sageattn/backend-webgpu";
import { provider as cpuSimd } from "@sageattn/backend-cpu-simd";

useBackends([cuda, webgpu, cpuSimd]);

export * from "@sageattn/core";
