// The shared conformance suite on the default path: P·V in f16 where the adapter has shader-f16.
// Deno (built-in WebGPU; lavapipe on CI) must run it; Node and Bun may only skip it with a stated reason
// (their Dawn packages reject lavapipe, and bun-webgpu's null backend is refused).
import { describeConformance } from "@sageattn/core/conformance";
import { provider } from "./index.js";
import { CPU_LIMITS, SKIP_OK } from "./test-support.js";

await describeConformance(provider, { ...CPU_LIMITS, unavailableOk: SKIP_OK, label: "f16 P·V where available" });
