/** sageattn for browsers (and any target without a more specific condition): webgpu, then cpu-simd. */
import { useBackends } from "@sageattn/core";
import { provider as webgpu } from "@sageattn/backend-webgpu";
import { provider as cpuSimd } from "@sageattn/backend-cpu-simd";

useBackends([webgpu, cpuSimd]);

export * from "@sageattn/core";
