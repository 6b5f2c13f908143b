import { describe, expect, it } from "vitest";
import type { Capabilities } from "./backend.js";
import { conformanceCases } from "./conformance/cases.js";
import { jsBackend } from "./js-backend.js";

const limits = { maxN: 1000, maxD: 256, dtypes: ["f32", "f16", "bf16"] as const };
const optionsOf = (caps: Capabilities) => conformanceCases(caps, limits).map((c) => c.options);

describe("conformance cases for fp8 P·V and the finer granularities", () => {
  it("go only to a backend that declares them", () => {
    const js = optionsOf(jsBackend.capabilities);
    expect(js.filter((o) => o.pvAccumulation === "fp8")).toHaveLength(5);
    expect(js.filter((o) => o.qkGranularity === "warp")).toHaveLength(5);
    expect(js.filter((o) => o.qkGranularity === "row")).toHaveLength(4);
    // cuda: both finer granularities, no fp8.
    const cuda = optionsOf({ ...jsBackend.capabilities, pv: ["f16-block", "f32"] });
    expect(cuda.filter((o) => o.qkGranularity === "warp")).toHaveLength(3);
    expect(cuda.filter((o) => o.qkGranularity === "row")).toHaveLength(4);
    // What webgpu and cpu-simd declare today.
    for (const pv of [["f16-block", "f32"], ["fixed16"]] as const) {
      const other = optionsOf({ ...jsBackend.capabilities, pv, qkGranularity: ["block"] });
      expect(other.some((o) => o.pvAccumulation === "fp8" || o.qkGranularity !== undefined), pv.join()).toBe(false);
      expect(other.length).toBe(js.length - 12);
    }
  });
});
