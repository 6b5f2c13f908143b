// The shared conformance suite with the f32 P·V path forced (as on adapters without shader-f16).
import { describeConformance } from "@sageattn/core/conformance";
import { makeWith } from "./index.js";
import { CPU_LIMITS, SKIP_OK } from "./test-support.js";

await describeConformance({ name: "webgpu", priority: 200, load: makeWith({ f16: false }) }, {
  ...CPU_LIMITS,
  unavailableOk: SKIP_OK,
  label: "f32 P·V forced",
});
