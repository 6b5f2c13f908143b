/** sageattn for Node: webgpu (through the optional `webgpu` package), then cpu-simd; Node has no FFI for cuda. */
import { useBackends } from "@sageattn/core";
import { provider as webgpu } from "@sageattn/backend-webgpu";
import { provider as cpuSimd } from "@sageattn/backend-cpu-simd";

useBackends([webgpu, cpuSimd]);

export * from "@sageattn/core";
