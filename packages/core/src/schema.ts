/**
 * Parameter blocks that cross from TypeScript into a kernel, each declared once as a schema (fields in order, with
 * types); offsets follow from the target's alignment rules. Each backend's build generates its kernel-side text from
 * these (WGSL structs in backend-webgpu/scripts/bundle-wgsl.mjs, AssemblyScript record offsets in
 * backend-cpu-simd/scripts/build-wasm.mjs), and its TypeScript writes through `layoutOf`/`encodeParams`, whose types
 * come from the same `as const` declarations, so a renamed or removed field fails tsc with the field's name. The C
 * struct `sa_params` stays hand-written in csrc/sageattn.h; backend-cuda compares the library's own offsets with
 * `layoutOf(SA_PARAMS)` at load. Pure data and functions: imported by build scripts as `@sageattn/core/schema`.
 */

import { INT8_MAX, K_BLOCK, LOG2E, Q_BLOCK } from "./constants.js";

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
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(f.name)) throw new SchemaError(`${schema.name}: field name "${f.name}" is not an identifier`);
    if (seen.has(f.name)) throw new SchemaError(`${schema.name}: field ${f.name} is declared twice`);
    seen.add(f.name);
    const sa = sizes[f.type];
    if (!sa) throw new SchemaError(`${schema.name}: field ${f.name} has type ${f.type}, which a ${schema.target} block cannot hold`);
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
export function writeParams<S extends ParamSchema>(layout: BlockLayout<S>, values: ParamValues<S>, view: DataView, base = 0): void {
  const vals = values as Readonly<Record<string, number | bigint | readonly number[]>>;
  for (const f of layout.fields) {
    const v = vals[f.name];
    if (v === undefined) throw new SchemaError(`${layout.schema.name}: no value for field ${f.name}`);
    const at = base + f.offset;
    switch (f.type) {
      case "u32": view.setUint32(at, Number(v) >>> 0, true); break;
      case "i32": view.setInt32(at, Number(v) | 0, true); break;
      case "f32": view.setFloat32(at, Number(v), true); break;
      case "u64": view.setBigUint64(at, BigInt(v as bigint), true); break;
      case "u32x4": for (let i = 0; i < 4; i++) view.setUint32(at + 4 * i, (v as readonly number[])[i] >>> 0, true); break;
      case "i64x4": for (let i = 0; i < 4; i++) view.setBigInt64(at + 8 * i, BigInt((v as readonly number[])[i]), true); break;
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
  if (schema.target !== "wgsl-uniform") throw new SchemaError(`${schema.name} is a ${schema.target} block, not a WGSL uniform block`);
  const layout = layoutOf(schema);
  const lines = layout.fields.map((f) => `  ${f.name}: ${WGSL_TYPE[f.type]},${f.doc ? ` // ${f.doc}` : ""}`);
  return `// ${schema.name} (core's schema.ts, generated by the build): ${schema.doc}\nstruct ${structName} {\n${lines.join("\n")}\n}\n`;
}

/**
 * Names the fields a shader reads from its uniform (`params.x`) that the schema lacks: a shader left behind by a
 * schema change fails the build here rather than at pipeline creation.
 */
export function missingShaderFields(schema: ParamSchema, shader: string, variable = "params"): string[] {
  const names = new Set(schema.fields.map((f) => f.name));
  const read = new Set([...shader.matchAll(new RegExp(`\\b${variable}\\.([A-Za-z_][A-Za-z0-9_]*)`, "g"))].map((m) => m[1]));
  return [...read].filter((n) => !names.has(n)).sort();
}

/** UPPER_SNAKE of a camelCase field name: maskKind → MASK_KIND, sK → S_K, Dp → DP. */
export const constantName = (field: string): string => field.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();

/** AssemblyScript constants for a wasm-record schema: `<prefix>_<FIELD>` byte offsets and `<bytesName>`. */
export function assemblyScriptOffsets(schema: ParamSchema, prefix: string, bytesName: string): string {
  if (schema.target !== "wasm-record") throw new SchemaError(`${schema.name} is a ${schema.target} block, not a wasm record`);
  const layout = layoutOf(schema);
  const lines = layout.fields.map((f) => `export const ${prefix}_${constantName(f.name)}: i32 = ${f.offset};${f.doc ? ` // ${f.type}: ${f.doc}` : ` // ${f.type}`}`);
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

/** sa_params (csrc/sageattn.h): one attention call across the C ABI. Keep in the header's declaration order. */
export const SA_PARAMS = {
  name: "sa_params",
  target: "c",
  doc: "one attention call of the cuda library (pointers, strides, shapes, codes, flags)",
  fields: [
    { name: "q", type: "u64" }, { name: "k", type: "u64" }, { name: "v", type: "u64" }, { name: "o", type: "u64" },
    { name: "lse", type: "u64" }, { name: "cu_seqlens_q", type: "u64" }, { name: "cu_seqlens_k", type: "u64" },
    { name: "workspace", type: "u64" }, { name: "workspace_size", type: "u64" }, { name: "stream", type: "u64" },
    { name: "q_strides", type: "i64x4" }, { name: "k_strides", type: "i64x4" }, { name: "v_strides", type: "i64x4" },
    { name: "o_strides", type: "i64x4" },
    { name: "batch", type: "i32" }, { name: "heads_q", type: "i32" }, { name: "heads_kv", type: "i32" },
    { name: "seqlen_q", type: "i32" }, { name: "seqlen_k", type: "i32" }, { name: "head_dim", type: "i32" },
    { name: "num_seqs", type: "i32" }, { name: "max_seqlen_q", type: "i32" }, { name: "max_seqlen_k", type: "i32" },
    { name: "dtype", type: "i32" }, { name: "out_dtype", type: "i32" }, { name: "layout", type: "i32" },
    { name: "flags", type: "u32" }, { name: "sm_scale", type: "f32" },
  ],
} as const satisfies ParamSchema;

const strides = { name: "strides", type: "u32x4", doc: "element strides of the source as (b, h, n, d)" } as const;

/** k_mean.wgsl's uniform block (stage K mean). */
export const WGSL_K_MEAN_PARAMS = {
  name: "k_mean params",
  target: "wgsl-uniform",
  doc: "K mean over tokens, per (segment, kv head, channel)",
  fields: [strides, { name: "base", type: "u32", doc: "element offset of K in its buffer" }, { name: "heads", type: "u32" }, { name: "d", type: "u32" }, { name: "dp", type: "u32" }],
} as const satisfies ParamSchema;

/** pack_f16.wgsl's uniform block (stage V conversion; Q and K too for the exact kernel). */
export const WGSL_PACK_F16_PARAMS = {
  name: "pack_f16 params",
  target: "wgsl-uniform",
  doc: "a tensor converted to f16 rows of dp channels",
  fields: [
    strides, { name: "base", type: "u32" }, { name: "heads", type: "u32" }, { name: "tokens", type: "u32" },
    { name: "d", type: "u32" }, { name: "dp", type: "u32" },
    { name: "quads", type: "u32", doc: "output channel quads in all" },
    { name: "rowPitch", type: "u32", doc: "workgroups per grid row × 256" },
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
    { name: "kvHeads", type: "u32" }, { name: "d", type: "u32" }, { name: "dp", type: "u32" },
    { name: "nTotal", type: "u32", doc: "tokens of this tensor (per b)" },
    { name: "blocksTotal", type: "u32", doc: "quantization blocks per (b, head), all segments together" },
    { name: "scale", type: "f32", doc: "smScale·log2(e) for Q, 1 for K" },
    { name: "subtractMean", type: "u32" },
    { name: "rowBias", type: "u32", doc: "1: write smScale·(q·mean(K)) per token (queries, when the LSE is asked for)" },
    { name: "forQueries", type: "u32", doc: "1: block bases and counts come from the segment's query side" },
    { name: "scaleOffset", type: "u32", doc: "where this tensor's scales start in `scales` (K's follow Q's)" },
  ],
} as const satisfies ParamSchema;

/** The uniform block of attention_int8.wgsl and attention_exact.wgsl (stage attention). */
export const WGSL_ATTENTION_PARAMS = {
  name: "attention params",
  target: "wgsl-uniform",
  doc: "shapes, block counts and the output placement of one attention dispatch",
  fields: [
    { name: "hq", type: "u32" }, { name: "hkv", type: "u32" }, { name: "group", type: "u32" },
    { name: "nq", type: "u32", doc: "tokens of the q tensor (per b)" },
    { name: "nk", type: "u32", doc: "tokens of the k and v tensors (per b)" },
    { name: "qBlocks", type: "u32", doc: "Q quantization blocks per (b, head)" },
    { name: "kBlocks", type: "u32", doc: "K quantization blocks per (b, kv head)" },
    { name: "kScaleOffset", type: "u32" }, { name: "returnLse", type: "u32" },
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
    { name: "heads", type: "u32" }, { name: "tokens", type: "u32" }, { name: "d", type: "u32" }, { name: "dp", type: "u32" },
    { name: "threads", type: "u32" }, { name: "rowPitch", type: "u32" }, { name: "base", type: "u32" },
    { name: "strides", type: "u32x4", doc: "b, h, n, d in output elements" },
  ],
} as const satisfies ParamSchema;

/** Every WGSL uniform block, by the kernel file (under src/shaders/) whose `Params` it is. */
export const WGSL_PARAMS = {
  k_mean: WGSL_K_MEAN_PARAMS,
  pack_f16: WGSL_PACK_F16_PARAMS,
  quantize_int8: WGSL_QUANTIZE_PARAMS,
  attention: WGSL_ATTENTION_PARAMS,
  store_output: WGSL_STORE_PARAMS,
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
