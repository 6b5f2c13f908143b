/**
 * Parameter blocks that cross from TypeScript into a kernel, each declared once as a schema (fields in order, with
 * types); offsets follow from the target's alignment rules. Each backend's build generates its kernel-side text from
 * these (WGSL structs in backend-webgpu/scripts/bundle-wgsl.mjs, AssemblyScript record offsets in
 * backend-cpu-simd/scripts/build-wasm.mjs), and its TypeScript writes through `layoutOf`/`encodeParams`, whose types
 * come from the same `as const` declarations, so a renamed or removed field fails tsc with the field's name. The C
 * structs `sa_params` and `sa_kv_params` stay hand-written in csrc/sageattn.h (the public C header), and
 * backend-cuda/scripts/generate-headers.mjs pins them to SA_PARAMS and SA_KV_PARAMS with static_asserts
 * (`cStructChecks`) that fail nvcc naming the field; core's constants reach the CUDA code the same way
 * (`cConstants`). At load, backend-cuda compares the library's offsets with `layoutOf`. Pure data and functions:
 * imported by build scripts as `@sageattn/core/schema`.
 */

import {
  DTYPE_CODE,
  E4M3_MAX,
  INT8_MAX,
  K_BLOCK,
  K_ROW_BLOCK,
  K_THREAD_GROUPS,
  K_THREAD_SPAN,
  LAYOUT_CODE,
  LOG2E,
  P_BLOCK,
  Q_BLOCK,
  Q_WARP_BLOCK,
  U8_MAX,
} from "./constants.js";

/** u64: a device pointer or size; i64x4 / u32x4: four strides (C int64_t[4], WGSL vec4<u32>). */
export type FieldType = "u32" | "i32" | "f32" | "u64" | "i64x4" | "u32x4";

export interface Field {
  readonly name: string;
  readonly type: FieldType;
  /** One line for the generated struct or constant. */
  readonly doc?: string;
}

/** Where a block lives, which fixes the alignment rules: C (natural), a WGSL uniform block, a wasm i32 record. */
export type SchemaTarget = "c" | "wgsl-uniform" | "wasm-record";

export interface ParamSchema {
  readonly name: string;
  readonly target: SchemaTarget;
  readonly doc: string;
  readonly fields: readonly Field[];
}

/** A schema core cannot lay out (unknown type for its target, duplicate or malformed name); names the field. */
export class SchemaError extends Error {
  override readonly name = "SchemaError";
}

const SIZES: Record<SchemaTarget, Partial<Record<FieldType, readonly [size: number, align: number]>>> = {
  c: { u32: [4, 4], i32: [4, 4], f32: [4, 4], u64: [8, 8], i64x4: [32, 8], u32x4: [16, 4] },
  "wgsl-uniform": { u32: [4, 4], i32: [4, 4], f32: [4, 4], u32x4: [16, 16] },
  "wasm-record": { u32: [4, 4], i32: [4, 4], f32: [4, 4] },
};
// WGSL uniform blocks round their size up to 16 bytes; C to the largest alignment; wasm records are i32 words.
const STRUCT_ALIGN: Record<SchemaTarget, number> = { c: 8, "wgsl-uniform": 16, "wasm-record": 4 };

export interface FieldLayout extends Field {
  readonly offset: number;
  readonly size: number;
}

export interface BlockLayout<S extends ParamSchema = ParamSchema> {
  readonly schema: S;
  readonly size: number;
  readonly fields: readonly FieldLayout[];
  /** Byte offset of each field by name. */
  readonly offsets: { readonly [F in FieldName<S>]: number };
}

export type FieldName<S extends ParamSchema> = S["fields"][number]["name"];
type FieldOf<S extends ParamSchema, N extends string> = Extract<S["fields"][number], { readonly name: N }>;
type ValueOf<T extends FieldType> = T extends "u64" ? bigint : T extends "i64x4" | "u32x4" ? readonly number[] : number;
/** A value for every field of `S`, typed by the field's type. */
export type ParamValues<S extends ParamSchema> = { readonly [N in FieldName<S>]: ValueOf<FieldOf<S, N>["type"]> };

/** Offsets and size of `schema` under its target's rules; throws SchemaError naming the first bad field. */
export function layoutOf<S extends ParamSchema>(schema: S): BlockLayout<S> {
  const sizes = SIZES[schema.target];
  const seen = new Set<string>();
  const fields: FieldLayout[] = [];
  let at = 0;
  for (const f of schema.fields) {
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(f.name)) {
      throw new SchemaError(`${schema.name}: field name "${f.name}" is not an identifier`);
    }
    if (seen.has(f.name)) throw new SchemaError(`${schema.name}: field ${f.name} is declared twice`);
    seen.add(f.name);
    const sa = sizes[f.type];
    if (!sa) {
      throw new SchemaError(
        `${schema.name}: field ${f.name} has type ${f.type}, which a ${schema.target} block cannot hold`,
      );
    }
    at = Math.ceil(at / sa[1]) * sa[1];
    fields.push({ ...f, offset: at, size: sa[0] });
    at += sa[0];
  }
  const align = STRUCT_ALIGN[schema.target];
  const size = Math.max(align, Math.ceil(at / align) * align);
  const offsets = Object.fromEntries(fields.map((f) => [f.name, f.offset])) as BlockLayout<S>["offsets"];
  return { schema, size, fields, offsets };
}

/** Writes `values` into `view` at `base` per `layout` (little-endian); throws SchemaError naming a missing field. */
export function writeParams<S extends ParamSchema>(
  layout: BlockLayout<S>,
  values: ParamValues<S>,
  view: DataView,
  base = 0,
): void {
  const vals = values as Readonly<Record<string, number | bigint | readonly number[]>>;
  for (const f of layout.fields) {
    const v = vals[f.name];
    if (v === undefined) throw new SchemaError(`${layout.schema.name}: no value for field ${f.name}`);
    const at = base + f.offset;
    switch (f.type) {
      case "u32":
        view.setUint32(at, Number(v) >>> 0, true);
        break;
      case "i32":
        view.setInt32(at, Number(v) | 0, true);
        break;
      case "f32":
        view.setFloat32(at, Number(v), true);
        break;
      case "u64":
        view.setBigUint64(at, BigInt(v as bigint), true);
        break;
      case "u32x4":
        for (let i = 0; i < 4; i++) view.setUint32(at + 4 * i, (v as readonly number[])[i] >>> 0, true);
        break;
      case "i64x4":
        for (let i = 0; i < 4; i++) view.setBigInt64(at + 8 * i, BigInt((v as readonly number[])[i]), true);
        break;
    }
  }
}

/** A new buffer of `layout.size` bytes holding `values`. */
export function encodeParams<S extends ParamSchema>(layout: BlockLayout<S>, values: ParamValues<S>): Uint8Array {
  const bytes = new Uint8Array(layout.size);
  writeParams(layout, values, new DataView(bytes.buffer));
  return bytes;
}

const WGSL_TYPE: Partial<Record<FieldType, string>> = { u32: "u32", i32: "i32", f32: "f32", u32x4: "vec4<u32>" };

/** The WGSL struct of a wgsl-uniform schema (layout checked first). */
export function wgslStruct(schema: ParamSchema, structName = "Params"): string {
  if (schema.target !== "wgsl-uniform") {
    throw new SchemaError(`${schema.name} is a ${schema.target} block, not a WGSL uniform block`);
  }
  const layout = layoutOf(schema);
  const lines = layout.fields.map((f) => `  ${f.name}: ${WGSL_TYPE[f.type]},${f.doc ? ` // ${f.doc}` : ""}`);
  return `// ${schema.name} (core's schema.ts, generated by the build): ${schema.doc}\nstruct ${structName} {\n${
    lines.join("\n")
  }\n}\n`;
}

/**
 * Names the fields a shader reads from its uniform (`params.x`) that the schema lacks: a shader left behind by a
 * schema change fails the build here rather than at pipeline creation.
 */
export function missingShaderFields(schema: ParamSchema, shader: string, variable = "params"): string[] {
  const names = new Set(schema.fields.map((f) => f.name));
  const read = new Set(
    [...shader.matchAll(new RegExp(`\\b${variable}\\.([A-Za-z_][A-Za-z0-9_]*)`, "g"))].map((m) => m[1]),
  );
  return [...read].filter((n) => !names.has(n)).sort();
}

/** UPPER_SNAKE of a camelCase field name: maskKind → MASK_KIND, sK → S_K, Dp → DP. */
export const constantName = (field: string): string => field.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

/** AssemblyScript constants for a wasm-record schema: `<prefix>_<FIELD>` byte offsets and `<bytesName>`. */
export function assemblyScriptOffsets(schema: ParamSchema, prefix: string, bytesName: string): string {
  if (schema.target !== "wasm-record") {
    throw new SchemaError(`${schema.name} is a ${schema.target} block, not a wasm record`);
  }
  const layout = layoutOf(schema);
  const lines = layout.fields.map((f) =>
    `export const ${prefix}_${constantName(f.name)}: i32 = ${f.offset};${
      f.doc ? ` // ${f.type}: ${f.doc}` : ` // ${f.type}`
    }`
  );
  return `// ${schema.name}: ${schema.doc}\nexport const ${bytesName}: i32 = ${layout.size};\n${lines.join("\n")}\n`;
}

/** core's algorithm constants as WGSL `const`s (bundled as generated/constants.wgsl). */
export function wgslConstants(): string {
  return `// core's constants.ts, generated by the build.\nconst Q_BLOCK: u32 = ${Q_BLOCK}u;\nconst K_BLOCK: u32 = ${K_BLOCK}u;\nconst INT8_MAX: f32 = ${INT8_MAX}.0;\nconst LOG2E: f32 = ${LOG2E};\n`;
}

/** core's algorithm constants as AssemblyScript (assembly/generated/constants.ts). */
export function assemblyScriptConstants(): string {
  return `// core's constants.ts, generated by the build.\nexport const Q_BLOCK: i32 = ${Q_BLOCK};\nexport const K_BLOCK: i32 = ${K_BLOCK};\nexport const INT8_MAX: f32 = ${INT8_MAX}.0;\nexport const LOG2E: f32 = ${LOG2E};\n`;
}

const C_TYPE: Record<FieldType, string> = {
  u32: "uint32_t",
  i32: "int32_t",
  f32: "float",
  u64: "uint64_t",
  i64x4: "int64_t[4]",
  u32x4: "uint32_t[4]",
};

/** A C double literal that reads back as exactly `x` (JavaScript prints the shortest such digits). */
function cDouble(x: number): string {
  const text = String(x);
  const literal = /[.e]/.test(text) ? text : `${text}.0`;
  if (!Number.isFinite(x) || Number(literal) !== x) throw new SchemaError(`${x} has no exact C double literal`);
  return literal;
}

/** The C++ spelling of a code's key in a constant name: f32 → F32, bf16 → Bf16, HND → Hnd. */
const cCodeName = (key: string): string => key[0].toUpperCase() + key.slice(1).toLowerCase();

/** core's algorithm constants and dtype/layout codes as C++ `constexpr`s in namespace sa, for host and device code. */
export function cConstants(): string {
  const codes = (kind: string, table: Readonly<Record<string, number>>) =>
    Object.entries(table).map(([key, code]) => `constexpr int k${kind}${cCodeName(key)} = ${code};`);
  return [
    "// core's constants.ts, generated by the build.",
    "#pragma once",
    "",
    "namespace sa {",
    "",
    `constexpr int kQBlock = ${Q_BLOCK};  // tokens per Q quantization block`,
    `constexpr int kKBlock = ${K_BLOCK};  // tokens per K quantization block (and key block of the softmax and P·V)`,
    `constexpr int kQWarpBlock = ${Q_WARP_BLOCK};  // tokens per Q scale at granularity "warp"`,
    `constexpr int kKRowBlock = ${K_ROW_BLOCK};  // tokens per K scale at granularity "row" (Q: one per token)`,
    `constexpr int kKThreadSpan = ${K_THREAD_SPAN};  // keys per span at granularity "thread" (Q: one scale per token)`,
    `constexpr int kKThreadGroups = ${K_THREAD_GROUPS};  // K scales per span there: key j's is (j mod 8) / 2`,
    `constexpr double kLog2e = ${cDouble(LOG2E)};  // log2(e), folded into Q's scale`,
    `constexpr int kInt8Max = ${INT8_MAX};  // largest INT8 magnitude after quantization`,
    `constexpr int kPBlock = ${P_BLOCK};  // keys per P block of "int8" and "fp8" P·V (one Hopper K/V tile)`,
    `constexpr int kU8Max = ${U8_MAX};  // largest UINT8 P of "int8" P·V`,
    `constexpr float kE4m3Max = ${E4M3_MAX}.f;  // largest FP8 e4m3 magnitude: "fp8" P·V scales P and V's channels to it`,
    "// The codes of sa_dtype and sa_layout (DTYPE_CODE, LAYOUT_CODE).",
    ...codes("Dtype", DTYPE_CODE),
    ...codes("Layout", LAYOUT_CODE),
    "",
    "}  // namespace sa",
    "",
  ].join("\n");
}

/** C++ static_asserts that the C enumerators SA_<CODE> (sa_dtype, sa_layout) carry core's DTYPE_CODE and LAYOUT_CODE. */
export function cCodeChecks(): string {
  const checks = (table: Readonly<Record<string, number>>, source: string, file: string) =>
    Object.entries(table).map(([key, code]) => {
      const name = `SA_${key.toUpperCase()}`;
      return `static_assert(${name} == ${code}, "${name}: core's ${source} (packages/core/src/${file}) gives ${key} the code ${code}");`;
    });
  const known = Object.values(SA_FLAGS).reduce((all: number, code) => all | code, 0) >>> 0;
  return [
    ...checks(DTYPE_CODE, "DTYPE_CODE", "constants.ts"),
    ...checks(LAYOUT_CODE, "LAYOUT_CODE", "constants.ts"),
    ...checks(SA_FLAGS, "SA_FLAGS", "schema.ts"),
    "// Every flag of core's SA_FLAGS: the library refuses any other bit.",
    `namespace sa { constexpr uint32_t kKnownFlags = ${known}u; }`,
  ].join("\n") + "\n";
}

export interface CStructOptions {
  /** Name of the generated array: sizeof, then each top-level member's offset in order (what the library reports). */
  readonly layoutArray: string;
  /** The header's macro for the number of top-level members that array reports. */
  readonly countMacro: string;
  /** The struct's first member is the C struct of `schema`, whose fields lead this one's (sa_kv_params' `base`). */
  readonly embedded?: { readonly member: string; readonly schema: ParamSchema };
}

/**
 * C++ static_asserts that pin a hand-written C struct (named as the schema) to a c-target schema: each field's offset,
 * size and type, the struct's size and its member count, each failing with a message that names the field; then
 * `options.layoutArray` in namespace sa. A field renamed in the schema fails offsetof naming the new name.
 */
export function cStructChecks(schema: ParamSchema, options: CStructOptions): string {
  if (schema.target !== "c") throw new SchemaError(`${schema.name} is a ${schema.target} block, not a C struct`);
  const layout = layoutOf(schema), struct = schema.name, embedded = options.embedded;
  const inner = embedded?.schema.fields ?? [];
  inner.forEach((f, i) => {
    const own = schema.fields[i];
    if (own?.name !== f.name || own.type !== f.type) {
      throw new SchemaError(`${struct}: field ${own?.name ?? i} is not ${embedded?.schema.name}.${f.name}`);
    }
  });
  const source = "core's schema (packages/core/src/schema.ts)";
  const check = (path: string, offset: number, size: number, type: string) => {
    const member = `static_cast<${struct}*>(nullptr)->${path}`;
    return `static_assert(offsetof(${struct}, ${path}) == ${offset} && sizeof(${member}) == ${size} &&\n` +
      `                  std::is_same<decltype(${member}), ${type}>::value,\n` +
      `              "${struct}.${path}: ${source} makes it ${type} at offset ${offset}, ${size} bytes");`;
  };
  // The embedded struct is checked as a whole here (its own fields by its own checks).
  const own = layout.fields.slice(inner.length);
  const fieldChecks = [
    ...(embedded ? [check(embedded.member, 0, layoutOf(embedded.schema).size, embedded.schema.name)] : []),
    ...own.map((f) => check(f.name, f.offset, f.size, C_TYPE[f.type])),
  ];
  const members = [...(embedded ? [embedded.member] : []), ...own.map((f) => f.name)];
  const offsets = members.map((m) => `int64_t(offsetof(${struct}, ${m}))`);
  return [
    `// ${struct}: ${schema.doc}`,
    ...fieldChecks,
    `static_assert(sizeof(${struct}) == ${layout.size}, "sizeof(${struct}): ${source} gives ${layout.size} bytes");`,
    `static_assert(${options.countMacro} == ${members.length}, "${options.countMacro}: ${source} gives ${struct} ${members.length} members");`,
    `namespace sa {`,
    `// sizeof(${struct}), then the offset of each member in the schema's order.`,
    `constexpr int64_t ${options.layoutArray}[${members.length + 1}] = {`,
    `    int64_t(sizeof(${struct})),`,
    ...offsets.map((o, i) => `    ${o}${i < offsets.length - 1 ? "," : ""}`),
    `};`,
    `}  // namespace sa`,
    "",
  ].join("\n");
}

/**
 * sa_params (csrc/sageattn.h): one attention call across the C ABI, in the header's declaration order (the build's
 * static_asserts fail naming any field where the two differ).
 */
/**
 * The bits of `sa_params.flags` (csrc/sageattn.h's sa_flags, each `SA_` + the key in capitals). kernel_only is set by
 * scripts/gpu_check.py alone: it skips the pre-pass when the workspace already holds one for the same inputs.
 * pv_auto: the caller left the P·V accumulation out (Problem.pvAuto), so the library takes the faster of f16 blocks
 * and f32 for its kernel (f32 on the Hopper kernel); pv_f32 set alongside still forces f32. kv_values_int8: a KV
 * cache keeps V as INT8 with a scale per token (KvCacheSpec.valueFormat "int8"), on every call for that cache.
 * pv_int8: P·V in 8 bits (pvAccumulation "int8"), on the Hopper kernel only. pv_fp8: P·V in FP8 e4m3
 * (pvAccumulation "fp8"), on the Hopper kernel only. qk_warp, qk_row, qk_thread: the
 * qkGranularity other than "block" (at most one of them).
 */
export const SA_FLAGS = {
  causal: 1,
  return_lse: 2,
  pv_f32: 4,
  no_smooth_k: 8,
  kernel_only: 16,
  pv_auto: 32,
  qk_warp: 64,
  qk_row: 128,
  kv_values_int8: 256,
  pv_int8: 512,
  qk_thread: 1024,
  pv_fp8: 2048,
} as const;

export const SA_PARAMS = {
  name: "sa_params",
  target: "c",
  doc: "one attention call of the cuda library (pointers, strides, shapes, codes, flags)",
  fields: [
    { name: "q", type: "u64" },
    { name: "k", type: "u64" },
    { name: "v", type: "u64" },
    { name: "o", type: "u64" },
    { name: "lse", type: "u64" },
    { name: "cu_seqlens_q", type: "u64" },
    { name: "cu_seqlens_k", type: "u64" },
    { name: "workspace", type: "u64" },
    { name: "workspace_size", type: "u64" },
    { name: "stream", type: "u64" },
    { name: "q_strides", type: "i64x4" },
    { name: "k_strides", type: "i64x4" },
    { name: "v_strides", type: "i64x4" },
    { name: "o_strides", type: "i64x4" },
    { name: "batch", type: "i32" },
    { name: "heads_q", type: "i32" },
    { name: "heads_kv", type: "i32" },
    { name: "seqlen_q", type: "i32" },
    { name: "seqlen_k", type: "i32" },
    { name: "head_dim", type: "i32" },
    { name: "num_seqs", type: "i32" },
    { name: "max_seqlen_q", type: "i32" },
    { name: "max_seqlen_k", type: "i32" },
    { name: "dtype", type: "i32" },
    { name: "out_dtype", type: "i32" },
    { name: "layout", type: "i32" },
    { name: "flags", type: "u32" },
    { name: "sm_scale", type: "f32" },
  ],
} as const satisfies ParamSchema;

/**
 * sa_kv_params (csrc/sageattn.h): an sa_params (`base`) followed by the KV cache's address, capacity and length. The
 * C struct nests sa_params; flattened here, its fields keep their offsets (sa_params' size is a multiple of its
 * alignment), so the cache's three fields land where C puts them.
 */
export const SA_KV_PARAMS = {
  name: "sa_kv_params",
  target: "c",
  doc: "one KV cache call of the cuda library: an sa_params, then the cache",
  fields: [
    ...SA_PARAMS.fields,
    { name: "cache", type: "u64", doc: "device address of the cache allocation" },
    { name: "capacity", type: "i32", doc: "most rows per (batch entry, kv head)" },
    { name: "length", type: "i32", doc: "rows in the cache before the call" },
  ],
} as const satisfies ParamSchema;

const strides = { name: "strides", type: "u32x4", doc: "element strides of the source as (b, h, n, d)" } as const;

/** k_mean.wgsl's uniform block (stage K mean). */
export const WGSL_K_MEAN_PARAMS = {
  name: "k_mean params",
  target: "wgsl-uniform",
  doc: "K mean over tokens, per (segment, kv head, channel)",
  fields: [
    strides,
    { name: "base", type: "u32", doc: "element offset of K in its buffer" },
    { name: "heads", type: "u32" },
    { name: "d", type: "u32" },
    { name: "dp", type: "u32" },
  ],
} as const satisfies ParamSchema;

/** pack_f16.wgsl's uniform block (stage V conversion; Q and K too for the exact kernel). */
export const WGSL_PACK_F16_PARAMS = {
  name: "pack_f16 params",
  target: "wgsl-uniform",
  doc: "a tensor converted to f16 rows of dp channels",
  fields: [
    strides,
    { name: "base", type: "u32" },
    { name: "heads", type: "u32" },
    { name: "tokens", type: "u32" },
    { name: "d", type: "u32" },
    { name: "dp", type: "u32" },
    { name: "quads", type: "u32", doc: "output channel quads in all" },
    { name: "rowPitch", type: "u32", doc: "workgroups per grid row × 256" },
    {
      name: "dstTokens",
      type: "u32",
      doc: "rows per (b, head) in dst (tokens for a whole tensor; a KV cache's capacity rows)",
    },
    { name: "dstFirst", type: "u32", doc: "dst row of source token 0 (0 for a whole tensor; a KV cache's length)" },
  ],
} as const satisfies ParamSchema;

/** quantize_int8.wgsl's uniform block (stages Q quantization and K quantization). */
export const WGSL_QUANTIZE_PARAMS = {
  name: "quantize_int8 params",
  target: "wgsl-uniform",
  doc: "Q or K quantized to INT8 per block of tokens",
  fields: [
    strides,
    { name: "base", type: "u32", doc: "element offset of the source in its buffer" },
    { name: "heads", type: "u32", doc: "heads of this tensor" },
    { name: "group", type: "u32", doc: "heads per kv head (to find the K mean a query head uses)" },
    { name: "kvHeads", type: "u32" },
    { name: "d", type: "u32" },
    { name: "dp", type: "u32" },
    { name: "nTotal", type: "u32", doc: "tokens of this tensor (per b)" },
    { name: "blocksTotal", type: "u32", doc: "quantization blocks per (b, head), all segments together" },
    { name: "scale", type: "f32", doc: "smScale·log2(e) for Q, 1 for K" },
    { name: "subtractMean", type: "u32" },
    {
      name: "rowBias",
      type: "u32",
      doc: "1: write smScale·(q·mean(K)) per token (queries, when the LSE is asked for)",
    },
    { name: "forQueries", type: "u32", doc: "1: block bases and counts come from the segment's query side" },
    { name: "scaleOffset", type: "u32", doc: "where this tensor's scales start in `scales` (K's follow Q's)" },
    {
      name: "meanGiven",
      type: "u32",
      doc: "1: kPartial holds the mean [b, kv head, DP/4] (a KV cache's), not k_mean's partial sums",
    },
  ],
} as const satisfies ParamSchema;

/** The uniform block of attention_int8.wgsl and attention_exact.wgsl (stage attention). */
export const WGSL_ATTENTION_PARAMS = {
  name: "attention params",
  target: "wgsl-uniform",
  doc: "shapes, block counts and the output placement of one attention dispatch",
  fields: [
    { name: "hq", type: "u32" },
    { name: "hkv", type: "u32" },
    { name: "group", type: "u32" },
    { name: "nq", type: "u32", doc: "tokens of the q tensor (per b)" },
    { name: "nk", type: "u32", doc: "tokens of the k and v tensors (per b)" },
    { name: "qBlocks", type: "u32", doc: "Q quantization blocks per (b, head)" },
    { name: "kBlocks", type: "u32", doc: "K quantization blocks per (b, kv head)" },
    { name: "kScaleOffset", type: "u32" },
    { name: "returnLse", type: "u32" },
    { name: "logitScale", type: "f32", doc: "exact kernel: smScale·log2(e)" },
    { name: "d", type: "u32", doc: "head dim (INT8 kernel, storing the output itself)" },
    { name: "outBase", type: "u32", doc: "the output's element offset (INT8 kernel, storing the output itself)" },
    { name: "outStrides", type: "u32x4", doc: "the output's (b, h, n, d) element strides (likewise)" },
  ],
} as const satisfies ParamSchema;

/** store_output.wgsl's uniform block (stage output store). */
export const WGSL_STORE_PARAMS = {
  name: "store_output params",
  target: "wgsl-uniform",
  doc: "the f32 attention result converted and stored in the output's dtype and strides",
  fields: [
    { name: "heads", type: "u32" },
    { name: "tokens", type: "u32" },
    { name: "d", type: "u32" },
    { name: "dp", type: "u32" },
    { name: "threads", type: "u32" },
    { name: "rowPitch", type: "u32" },
    { name: "base", type: "u32" },
    { name: "strides", type: "u32x4", doc: "b, h, n, d in output elements" },
  ],
} as const satisfies ParamSchema;

/** kv_mean.wgsl's uniform block (a KV cache's first append: the mean of K over the appended rows). */
export const WGSL_KV_MEAN_PARAMS = {
  name: "kv_mean params",
  target: "wgsl-uniform",
  doc: "mean of the appended K rows per (b, kv head, channel): a KV cache's mean, set by its first append",
  fields: [
    { name: "strides", type: "u32x4", doc: "element strides of the appended K as (b, h, n, d)" },
    { name: "base", type: "u32", doc: "element offset of K in its buffer" },
    { name: "heads", type: "u32", doc: "kv heads" },
    { name: "tokens", type: "u32", doc: "rows appended (n)" },
    { name: "d", type: "u32" },
    { name: "dp", type: "u32" },
  ],
} as const satisfies ParamSchema;

/** kv_quantize_k.wgsl's uniform block (a KV cache's append: K blocks from the partial one on, re-quantized). */
export const WGSL_KV_QUANTIZE_K_PARAMS = {
  name: "kv_quantize_k params",
  target: "wgsl-uniform",
  doc: "appended K rows quantized into a KV cache's INT8 blocks, the partial block re-quantized from its raw rows",
  fields: [
    { name: "strides", type: "u32x4", doc: "element strides of the appended K as (b, h, n, d)" },
    { name: "base", type: "u32", doc: "element offset of K in its buffer" },
    { name: "heads", type: "u32", doc: "kv heads" },
    { name: "d", type: "u32" },
    { name: "dp", type: "u32" },
    { name: "length", type: "u32", doc: "rows in the cache before this append" },
    { name: "count", type: "u32", doc: "rows appended" },
    { name: "rows", type: "u32", doc: "rows per (b, kv head) in k8 (capacity rounded up to a block)" },
    { name: "blocks", type: "u32", doc: "K scales per (b, kv head)" },
    {
      name: "tailIn",
      type: "u32",
      doc: "tail slot holding the partial block's rows (0 or 1); the other slot is written",
    },
    { name: "bhs", type: "u32", doc: "B·Hkv" },
  ],
} as const satisfies ParamSchema;

/** attention_decode.wgsl's uniform block (few-query attention over a KV cache, split over key-block ranges). */
export const WGSL_DECODE_PARAMS = {
  name: "attention_decode params",
  target: "wgsl-uniform",
  doc: "one split-K decode dispatch over a KV cache: shapes, the cache's length and the key blocks per range",
  fields: [
    { name: "hq", type: "u32" },
    { name: "hkv", type: "u32" },
    { name: "group", type: "u32", doc: "query heads per kv head" },
    { name: "nq", type: "u32" },
    { name: "nk", type: "u32", doc: "rows in the cache" },
    { name: "rows", type: "u32", doc: "rows per (b, kv head) in k8 and v16" },
    { name: "kBlocks", type: "u32", doc: "K scales per (b, kv head)" },
    { name: "qBlocks", type: "u32", doc: "Q scales per (b, head)" },
    { name: "groupRows", type: "u32", doc: "group · nq: query rows per kv head" },
    { name: "blocksPerSplit", type: "u32" },
    { name: "totalRows", type: "u32", doc: "B · Hq · nq" },
  ],
} as const satisfies ParamSchema;

/** decode_merge.wgsl's uniform block (the split ranges' partial rows merged in range order). */
export const WGSL_DECODE_MERGE_PARAMS = {
  name: "decode_merge params",
  target: "wgsl-uniform",
  doc: "the decode splits' partial (m, l, acc) merged per row and stored (or left f32 for store_output)",
  fields: [
    { name: "hq", type: "u32" },
    { name: "nq", type: "u32" },
    { name: "d", type: "u32" },
    { name: "totalRows", type: "u32" },
    { name: "splits", type: "u32" },
    { name: "returnLse", type: "u32" },
    { name: "outBase", type: "u32" },
    { name: "rowPitch", type: "u32", doc: "invocations per grid row" },
    { name: "outStrides", type: "u32x4", doc: "(b, h, n, d) element strides of the output" },
  ],
} as const satisfies ParamSchema;

/** Every WGSL uniform block, by the kernel file (under src/shaders/) whose `Params` it is. */
export const WGSL_PARAMS = {
  k_mean: WGSL_K_MEAN_PARAMS,
  pack_f16: WGSL_PACK_F16_PARAMS,
  quantize_int8: WGSL_QUANTIZE_PARAMS,
  attention: WGSL_ATTENTION_PARAMS,
  store_output: WGSL_STORE_PARAMS,
  kv_mean: WGSL_KV_MEAN_PARAMS,
  kv_quantize_k: WGSL_KV_QUANTIZE_K_PARAMS,
  attention_decode: WGSL_DECODE_PARAMS,
  decode_merge: WGSL_DECODE_MERGE_PARAMS,
} as const;

/** cpu-simd's attention task record: one per (sequence, head, 64-query tile); every field an i32 word. */
export const CPU_ATTN_RECORD = {
  name: "attention task record",
  target: "wasm-record",
  doc: "one per (sequence, head, query tile)",
  fields: [
    { name: "q", type: "i32", doc: "f32 rows [nq][Dp] of this (sequence, head), row 0 of the sequence" },
    { name: "nq", type: "i32" },
    { name: "i0", type: "i32", doc: "first query row of the tile, within the sequence" },
    { name: "rows", type: "i32", doc: "rows in the tile (≤ TILE_ROWS)" },
    { name: "k", type: "i32", doc: "int8 kernel: K blocks as i16 pairs; exact kernel: K blocks transposed, f32" },
    { name: "sK", type: "i32", doc: "f32 scale per K block (int8 kernel)" },
    { name: "v", type: "i32", doc: "int8 kernel: V blocks as i16 key pairs; exact kernel: f32 rows [nk][Dp]" },
    { name: "sV", type: "i32", doc: "f32 [blocks][Dp] V scales (int8 kernel)" },
    { name: "nk", type: "i32" },
    { name: "out", type: "i32", doc: "f32 rows [nq][Dp]" },
    { name: "stats", type: "i32", doc: "f32 [nq][3]: running max (base 2), sum, q·mean(K); 0 when no LSE is asked" },
    { name: "kmean", type: "i32", doc: "f32 [Dp] mean of K over the sequence (int8 kernel)" },
    { name: "mask", type: "i32", doc: "mask element of (row 0, key 0) of this sequence and head; 0 when none" },
    { name: "maskKind", type: "i32", doc: "0 none, 1 boolean (u8), 2 additive (f32, natural-log units)" },
    { name: "maskStride", type: "i32", doc: "mask elements per query row" },
    { name: "causal", type: "i32", doc: "1: key j visible to query i iff j ≤ i + nk − nq" },
    { name: "Dp", type: "i32", doc: "padded head dim (multiple of 8)" },
    { name: "fold", type: "f32", doc: "smScale·log2(e)" },
  ],
} as const satisfies ParamSchema;

/** cpu-simd's key/value preparation record: one per (sequence, kv head). */
export const CPU_KV_RECORD = {
  name: "key/value record",
  target: "wasm-record",
  doc: "one per (sequence, kv head)",
  fields: [
    { name: "k", type: "i32", doc: "f32 rows [nk][Dp]" },
    { name: "v", type: "i32", doc: "f32 rows [nk][Dp]" },
    { name: "nk", type: "i32" },
    { name: "kmean", type: "i32", doc: "out: f32 [Dp]" },
    { name: "kOut", type: "i32", doc: "out: K blocks (int8: i16 pairs; exact: transposed f32)" },
    { name: "sK", type: "i32", doc: "out: f32 per block" },
    { name: "vOut", type: "i32", doc: "out: V blocks as i16 key pairs (int8 kernel)" },
    { name: "sV", type: "i32", doc: "out: f32 [blocks][Dp]" },
    { name: "Dp", type: "i32" },
    { name: "smooth", type: "i32", doc: "1: subtract the mean of K before quantizing" },
  ],
} as const satisfies ParamSchema;

/** cpu-simd's KV-cache record (assembly/kv_cache.ts): one per (batch entry, kv head) of a cache, for append and requantize. */
export const CPU_CACHE_RECORD = {
  name: "kv cache record",
  target: "wasm-record",
  doc: "one per (batch entry, kv head) of a KV cache, for append and requantize",
  fields: [
    { name: "Dp", type: "i32" },
    { name: "len", type: "i32", doc: "rows the head holds before this task" },
    { name: "n", type: "i32", doc: "rows appended (append)" },
    { name: "first", type: "i32", doc: "1: the first append (sets the mean)" },
    { name: "smooth", type: "i32", doc: "1: the mean is K's, else 0" },
    { name: "mean", type: "i32", doc: "f32 [Dp]" },
    { name: "k", type: "i32", doc: "K blocks, i8 in the int8 kernel's pair layout (one byte a value)" },
    { name: "sK", type: "i32", doc: "f32 per K block" },
    { name: "v", type: "i32", doc: "V blocks, i16 key pairs" },
    { name: "sV", type: "i32", doc: "f32 [blocks][Dp]" },
    { name: "kRaw", type: "i32", doc: "f32 [K_BLOCK][Dp]: raw K rows of the partial block" },
    { name: "vRaw", type: "i32", doc: "f32 [K_BLOCK][Dp]: raw V rows of the partial block" },
    { name: "kIn", type: "i32", doc: "f32 [n][Dp]: K rows to append" },
    { name: "vIn", type: "i32", doc: "f32 [n][Dp]: V rows to append" },
  ],
} as const satisfies ParamSchema;

/** cpu-simd's decode split record (assembly/decode_int8.ts): one per (batch entry, kv head, row tile, key-block range). */
export const CPU_DECODE_RECORD = {
  name: "decode split record",
  target: "wasm-record",
  doc: "one per (batch entry, kv head, row tile, key-block range)",
  fields: [
    { name: "q", type: "i32", doc: "f32 rows: row 0 of the tile's first head; heads nq·Dp f32 apart" },
    { name: "nq", type: "i32" },
    { name: "i0", type: "i32" },
    { name: "nr", type: "i32", doc: "rows per head in the tile" },
    { name: "nh", type: "i32", doc: "heads in the tile (nh·nr ≤ TILE_ROWS)" },
    { name: "k", type: "i32" },
    { name: "sK", type: "i32" },
    { name: "v", type: "i32" },
    { name: "sV", type: "i32" },
    { name: "nk", type: "i32", doc: "rows in the cache" },
    { name: "kb0", type: "i32", doc: "first key block of the split" },
    { name: "kb1", type: "i32", doc: "one past its last" },
    { name: "part", type: "i32", doc: "the split's partial state" },
    { name: "causal", type: "i32" },
    { name: "Dp", type: "i32" },
    { name: "fold", type: "f32", doc: "smScale·log2(e)" },
  ],
} as const satisfies ParamSchema;

/** cpu-simd's decode merge record (assembly/decode_int8.ts): one per row tile. */
export const CPU_MERGE_RECORD = {
  name: "decode merge record",
  target: "wasm-record",
  doc: "one per decode row tile",
  fields: [
    { name: "part", type: "i32", doc: "the tile's first split's partial state; the others follow partBytes apart" },
    { name: "splits", type: "i32" },
    { name: "rows", type: "i32" },
    { name: "out", type: "i32", doc: "f32 rows of the tile's output" },
    { name: "stats", type: "i32", doc: "f32 [rows][3] or 0" },
    { name: "q", type: "i32", doc: "f32 rows of the tile's queries (for q·mean)" },
    { name: "kmean", type: "i32", doc: "f32 [Dp] or 0" },
    { name: "Dp", type: "i32" },
    { name: "partBytes", type: "i32" },
  ],
} as const satisfies ParamSchema;
