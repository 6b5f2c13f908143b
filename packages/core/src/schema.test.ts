import { describe, expect, it } from "vitest";
import { DTYPE_CODE, LAYOUT_CODE, LOG2E } from "./constants.js";
import {
  assemblyScriptOffsets,
  cCodeChecks,
  cConstants,
  CPU_ATTN_RECORD,
  cStructChecks,
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

  describe("the C header backend-cuda generates (its build compiles these against csrc/sageattn.h)", () => {
    it("prints log2(e) as a double literal that reads back exactly, and every dtype and layout code", () => {
      const text = cConstants();
      const log2e = text.match(/constexpr double kLog2e = ([^;]+);/)?.[1];
      expect(log2e).toBe("1.4426950408889634");
      expect(Number(log2e)).toBe(LOG2E);
      expect(text).toContain("constexpr int kQBlock = 128;");
      expect(text).toContain("constexpr int kKBlock = 64;");
      expect(text).toContain("constexpr int kInt8Max = 127;");
      expect(text).toContain(`constexpr int kDtypeBf16 = ${DTYPE_CODE.bf16};`);
      expect(text).toContain(`constexpr int kLayoutNhd = ${LAYOUT_CODE.NHD};`);
      expect(cCodeChecks()).toContain(`static_assert(SA_BF16 == ${DTYPE_CODE.bf16}, "SA_BF16: core's DTYPE_CODE`);
      expect(cCodeChecks()).toContain(`static_assert(SA_PV_F32 == 4, "SA_PV_F32: core's SA_FLAGS`);
      expect(cCodeChecks()).toContain("namespace sa { constexpr uint32_t kKnownFlags = 4095u; }");
    });

    it("asserts each field's offset, size and type, with a message naming the field", () => {
      const text = cStructChecks(SA_PARAMS, { layoutArray: "kParamsLayout", countMacro: "SA_PARAMS_FIELDS" });
      for (const f of layoutOf(SA_PARAMS).fields) {
        expect(text).toContain(`static_assert(offsetof(sa_params, ${f.name}) == ${f.offset} && `);
        expect(text).toContain(`"sa_params.${f.name}: core's schema (packages/core/src/schema.ts) makes it `);
      }
      expect(text).toContain("std::is_same<decltype(static_cast<sa_params*>(nullptr)->q_strides), int64_t[4]>::value");
      expect(text).toContain("static_assert(sizeof(sa_params) == 264, ");
      expect(text).toContain("static_assert(SA_PARAMS_FIELDS == 28, ");
      expect(text).toContain("constexpr int64_t kParamsLayout[29] = {");
    });

    it("checks an embedded struct as one member, and refuses a schema that does not start with its fields", () => {
      const options = {
        layoutArray: "kKvParamsLayout",
        countMacro: "SA_KV_PARAMS_FIELDS",
        embedded: { member: "base", schema: SA_PARAMS },
      };
      const text = cStructChecks(SA_KV_PARAMS, options);
      expect(text).toContain("std::is_same<decltype(static_cast<sa_kv_params*>(nullptr)->base), sa_params>::value");
      expect(text).toContain(
        "\"sa_kv_params.capacity: core's schema (packages/core/src/schema.ts) makes it int32_t at offset 272",
      );
      expect(text).not.toContain("base.q");
      expect(text).toContain("static_assert(SA_KV_PARAMS_FIELDS == 4, ");
      const moved: ParamSchema = { ...SA_KV_PARAMS, fields: SA_KV_PARAMS.fields.slice(1) };
      expect(() => cStructChecks(moved, options)).toThrow(/sa_kv_params: field k is not sa_params.q/);
      expect(() => cStructChecks(WGSL_STORE_PARAMS, options)).toThrow(/not a C struct/);
    });
  });
});
