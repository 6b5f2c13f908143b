// The build's WGSL generation (scripts/bundle-wgsl.mjs) against core's schemas: a schema change reaches the
// generated structs, and a shader left reading a field the schema dropped fails the build, naming file and field.
import { type ParamSchema, WGSL_PARAMS } from "@sageattn/core/schema";
import { describe, expect, it } from "vitest";
import { bundle, schemaMismatches } from "../scripts/bundle-wgsl.mjs";

describe("WGSL generated from core's parameter schemas", () => {
  it("every kernel's shaders read only fields of its schema", () => {
    const files = bundle();
    expect(schemaMismatches(files)).toEqual([]);
    expect(files["generated/store_output_params.wgsl"]).toContain("  strides: vec4<u32>,");
    expect(files["generated/constants.wgsl"]).toContain("const K_BLOCK: u32 = 64u;");
  });

  it("the KV cache's kernels take their Params and constants from the generated includes", () => {
    const files = bundle();
    for (const kernel of ["kv_mean", "kv_quantize_k", "attention_decode", "decode_merge"] as const) {
      expect(files[`${kernel}.wgsl`]).toContain(`//#include "generated/${kernel}_params.wgsl"`);
      expect(files[`${kernel}.wgsl`]).not.toMatch(/^struct Params/m);
      expect(files[`generated/${kernel}_params.wgsl`]).toContain(`struct Params {`);
    }
    for (const kernel of ["kv_quantize_k", "attention_decode"]) {
      expect(files[`${kernel}.wgsl`]).not.toMatch(/const (K_BLOCK|Q_BLOCK): u32 = \d+u/);
    }
    expect(files["generated/pack_f16_params.wgsl"]).toContain("  dstFirst: u32,");
    expect(files["generated/quantize_int8_params.wgsl"]).toContain("  meanGiven: u32,");
  });

  it("a renamed field reaches the struct and names every shader that still reads the old name", () => {
    const renamed: ParamSchema = {
      ...WGSL_PARAMS.quantize_int8,
      fields: WGSL_PARAMS.quantize_int8.fields.map((
        f,
      ) => (f.name === "blocksTotal" ? { ...f, name: "blockCount" } : f)),
    };
    const files = bundle({ ...WGSL_PARAMS, quantize_int8: renamed });
    expect(files["generated/quantize_int8_params.wgsl"]).toContain("  blockCount: u32,");
    expect(schemaMismatches(files, { ...WGSL_PARAMS, quantize_int8: renamed })).toEqual([
      "quantize_int8.wgsl (in quantize_int8.wgsl) reads params.blocksTotal, which core's quantize_int8 params schema lacks",
    ]);
  });

  it("a field dropped from the attention block names both attention kernels", () => {
    const dropped: ParamSchema = {
      ...WGSL_PARAMS.attention,
      fields: WGSL_PARAMS.attention.fields.filter((f) => f.name !== "kBlocks"),
    };
    const problems = schemaMismatches(bundle({ ...WGSL_PARAMS, attention: dropped }), {
      ...WGSL_PARAMS,
      attention: dropped,
    });
    expect(problems.some((p) => p.includes("(in attention_int8.wgsl) reads params.kBlocks"))).toBe(true);
  });
});
