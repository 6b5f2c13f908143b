import { describe, expect, it } from "vitest";
import type { Capabilities } from "./backend.js";
import { conformanceCases } from "./conformance/cases.js";
import { jsBackend } from "./js-backend.js";

const limits = { maxN: 1000, maxD: 256, dtypes: ["f32", "f16", "bf16"] as const };
const optionsOf = (caps: Capabilities) => conformanceCases(caps, limits).map((c) => c.options);

describe("conformance cases for fp8 and int8 P·V and the finer granularities", () => {
  it("go only to a backend that declares them", () => {
    const js = optionsOf(jsBackend.capabilities);
    expect(js.filter((o) => o.pvAccumulation === "fp8")).toHaveLength(5);
    expect(js.filter((o) => o.pvAccumulation === "int8")).toHaveLength(9);
    expect(js.filter((o) => o.qkGranularity === "warp")).toHaveLength(5);
    expect(js.filter((o) => o.qkGranularity === "row")).toHaveLength(5); // one of them int8
    expect(js.filter((o) => o.qkGranularity === "thread")).toHaveLength(6); // one of them int8
    // cuda: the three finer granularities, no fp8 or int8.
    const cuda = optionsOf({ ...jsBackend.capabilities, pv: ["f16-block", "f32"] });
    expect(cuda.filter((o) => o.qkGranularity === "warp")).toHaveLength(3);
    expect(cuda.filter((o) => o.qkGranularity === "row")).toHaveLength(4);
    expect(cuda.filter((o) => o.qkGranularity === "thread")).toHaveLength(5);
    // What webgpu and cpu-simd declare today.
    for (const pv of [["f16-block", "f32"], ["fixed16"]] as const) {
      const other = optionsOf({ ...jsBackend.capabilities, pv, qkGranularity: ["block"] });
      const finer = (o: (typeof other)[number]) =>
        o.pvAccumulation === "fp8" || o.pvAccumulation === "int8" || o.qkGranularity !== undefined;
      expect(other.some(finer), pv.join()).toBe(false);
      expect(other.length).toBe(js.length - 26);
    }
  });

  it("put int8's last, so the other cases keep their seeds on a backend that gains it", () => {
    const names = (pv: Capabilities["pv"]) =>
      conformanceCases({ ...jsBackend.capabilities, pv }, limits).map((c) => c.name);
    const before = names(["f16-block", "f32"]);
    const after = names(["f16-block", "f32", "int8"]);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length).every((name) => name.includes("pvAccumulation=int8"))).toBe(true);
    expect(after.length - before.length).toBe(9);
  });
});
