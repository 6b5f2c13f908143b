import { describe, expect, it } from "vitest";
import {
  assemblyScriptOffsets,
  CPU_ATTN_RECORD,
  encodeParams,
  layoutOf,
  missingShaderFields,
  type ParamSchema,
  SA_KV_PARAMS,
  SA_PARAMS,
  SchemaError,
  WGSL_QUANTIZE_PARAMS,
  WGSL_STORE_PARAMS,
  wgslStruct,
} from "./schema.js";

describe("parameter schemas", () => {
  it("lay sa_params out as C does (the offsets csrc/sageattn.h's sa_params_layout reports)", () => {
    const l = layoutOf(SA_PARAMS);
    expect(l.size).toBe(264);
    expect([
      l.offsets.q,
      l.offsets.stream,
      l.offsets.q_strides,
      l.offsets.o_strides,
      l.offsets.batch,
      l.offsets.flags,
      l.offsets.sm_scale,
    ]).toEqual([0, 72, 80, 176, 208, 256, 260]);
  });

  it("lay sa_kv_params out as C does: sa_params' fields where sa_params has them, then cache, capacity, length", () => {
    const kv = layoutOf(SA_KV_PARAMS), base = layoutOf(SA_PARAMS);
    for (const f of base.fields) expect(kv.offsets[f.name as keyof typeof kv.offsets], f.name).toBe(f.offset);
    expect([kv.offsets.cache, kv.offsets.capacity, kv.offsets.length, kv.size]).toEqual([264, 272, 276, 280]);
  });

  it("align a WGSL vec4<u32> to 16 bytes and round the block to 16", () => {
    const l = layoutOf(WGSL_STORE_PARAMS);
    expect(l.offsets.base).toBe(24);
    expect(l.offsets.strides).toBe(32);
    expect(l.size).toBe(48);
    const bytes = encodeParams(l, {
      heads: 1,
      tokens: 2,
      d: 3,
      dp: 4,
      threads: 5,
      rowPitch: 6,
      base: 7,
      strides: [8, 9, 10, 11],
    });
    expect(Array.from(new Uint32Array(bytes.buffer))).toEqual([1, 2, 3, 4, 5, 6, 7, 0, 8, 9, 10, 11]);
  });

  it("write f32 fields as f32 and the record's offsets as AssemblyScript constants", () => {
    const l = layoutOf(CPU_ATTN_RECORD);
    expect(l.size).toBe(72);
    expect(l.offsets.fold).toBe(68);
    const as = assemblyScriptOffsets(CPU_ATTN_RECORD, "A", "ATTN_RECORD_BYTES");
    expect(as).toContain("export const ATTN_RECORD_BYTES: i32 = 72;");
    expect(as).toContain("export const A_MASK_KIND: i32 = 52;");
    expect(as).toContain("export const A_S_K: i32 = 20;");
  });

  describe("a changed schema (a copy with one field renamed and one inserted)", () => {
    const fields = WGSL_QUANTIZE_PARAMS.fields.flatMap((f): ParamSchema["fields"] =>
      f.name === "scale" ? [{ name: "extra", type: "u32" }, { name: "logitFold", type: "f32" }] : [f]
    );
    const changed: ParamSchema = { ...WGSL_QUANTIZE_PARAMS, fields };

    it("moves every later offset and regenerates the WGSL struct", () => {
      const before = layoutOf(WGSL_QUANTIZE_PARAMS), after = layoutOf(changed);
      expect(before.offsets.scale).toBe(48);
      expect(after.fields.find((f) => f.name === "logitFold")?.offset).toBe(52);
      expect(after.fields.find((f) => f.name === "scaleOffset")?.offset).toBe(before.offsets.scaleOffset + 4);
      expect(wgslStruct(changed)).toContain("  logitFold: f32,");
      expect(wgslStruct(changed)).not.toContain("  scale: f32,");
    });

    it("names the field a shader still reads, so the build fails there", () => {
      const shader = "let s = params.scale * x; let b = params.base; let o = params.scaleOffset;";
      expect(missingShaderFields(WGSL_QUANTIZE_PARAMS, shader)).toEqual([]);
      expect(missingShaderFields(changed, shader)).toEqual(["scale"]);
    });

    it("names a missing value when encoding", () => {
      const l = layoutOf(changed);
      expect(() => encodeParams(l, { strides: [1, 1, 1, 1] } as never)).toThrow(/no value for field base/);
    });
  });

  it("rejects a type its target cannot hold and a field declared twice, naming the field", () => {
    const u64InWgsl: ParamSchema = {
      name: "bad",
      target: "wgsl-uniform",
      doc: "",
      fields: [{ name: "ptr", type: "u64" }],
    };
    expect(() => layoutOf(u64InWgsl)).toThrow(SchemaError);
    expect(() => layoutOf(u64InWgsl)).toThrow(/field ptr has type u64/);
    const twice: ParamSchema = {
      name: "bad",
      target: "c",
      doc: "",
      fields: [{ name: "a", type: "u32" }, { name: "a", type: "f32" }],
    };
    expect(() => layoutOf(twice)).toThrow(/field a is declared twice/);
  });
});
