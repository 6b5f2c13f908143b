import { WGSL } from "./generated/wgsl.js";

/**
 * How P·V (and, in the exact kernel, Q·Kᵀ) is computed: "f16" native (needs shader-f16); "f16emu" f32 arithmetic
 * rounded to f16 like f16 hardware (the f16-block semantics without shader-f16); "f32" throughout.
 */
export type Precision = "f16" | "f16emu" | "f32";

/** The kernels, one per .wgsl file. */
export type KernelName =
  | "k_mean"
  | "quantize_int8"
  | "pack_f16"
  | "store_output"
  | "attention_int8"
  | "attention_exact"
  | "kv_mean"
  | "kv_quantize_k"
  | "attention_decode"
  | "decode_merge";

/** Trip counts of the loops marked `// unroll` (RQ, CK, QD, W), known once the tile is chosen. */
export type UnrollCounts = Readonly<Record<string, number>>;

/**
 * Subgroup operations for the reductions that have a subgroup variant (attention_int8's row maxima): the directive a
 * kernel using them starts with on this device ("enable subgroups;" for Tint, "" where naga takes them without one),
 * as acquire.ts's load-time check found it; undefined for the workgroup-memory variant.
 */
export type Subgroups = string | undefined;

/** What a slot's file depends on. */
interface Variant {
  readonly precision: Precision;
  readonly subgroups: boolean;
}

// Slots a kernel includes whose file depends on the precision or on subgroups.
const VARIANT_SLOTS: Record<string, (v: Variant) => string> = {
  "lib/pv.wgsl": (v) => `lib/pv_${v.precision}.wgsl`,
  "lib/dot.wgsl": (v) => `lib/dot_${v.precision === "f16" ? "f16" : "f32"}.wgsl`,
  "lib/row_max.wgsl": (v) => `lib/row_max_${v.subgroups ? "subgroup" : "shared"}.wgsl`,
};
const F16_SLOTS = ["lib/pv.wgsl", "lib/dot.wgsl"];

const INCLUDE = /^\/\/#include "([^"]+)"$/gm;

function expand(path: string, variant: Variant, seen: Set<string>): string {
  const file = VARIANT_SLOTS[path]?.(variant) ?? path;
  if (seen.has(file)) return "";
  seen.add(file);
  const text = WGSL[file];
  if (text === undefined) throw new Error(`WGSL file ${file} is not bundled`);
  return text.replace(INCLUDE, (_, inc: string) => expand(inc, variant, seen));
}

const UNROLL = /for \(var (\w+) = (\d+)u; \1 < (\w+); \1\+\+\) \{ \/\/ unroll\n/;

/** Index just past the brace that closes the one opened at `open`. */
function closingBrace(src: string, open: number): number {
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    if (src[i] === "{") depth++;
    else if (src[i] === "}" && --depth === 0) return i + 1;
  }
  throw new Error("unbalanced braces in WGSL");
}

/**
 * Unrolls every `for (var i = a; i < N; i++) { // unroll` loop: its body repeated with `let i = …u;` for each
 * value, N a literal ("8u") or a name in `counts`. Nested marked loops unroll too.
 */
export function unrollLoops(src: string, counts: UnrollCounts): string {
  for (let m = UNROLL.exec(src); m; m = UNROLL.exec(src)) {
    const [whole, name, from, bound] = m;
    const count = /^\d+u$/.test(bound) ? Number.parseInt(bound, 10) : counts[bound];
    if (count === undefined) throw new Error(`no unroll count for ${bound}`);
    const end = closingBrace(src, src.indexOf("{", m.index + whole.indexOf(")")));
    const body = src.slice(m.index + whole.length, end - 1);
    let copies = "";
    for (let i = Number(from); i < count; i++) copies += `{\nlet ${name} = ${i}u;\n${body}}\n`;
    src = src.slice(0, m.index) + `{\n${copies}}` + src.slice(end);
  }
  return src;
}

/**
 * The full WGSL of a kernel at a precision, includes resolved and marked loops unrolled; with `subgroups` (the
 * device's directive, see Subgroups) the subgroup variants of its reductions, where it has any.
 */
export function kernelSource(
  kernel: KernelName,
  precision: Precision,
  counts: UnrollCounts = {},
  subgroups?: Subgroups,
): string {
  const files = new Set<string>();
  const variant = { precision, subgroups: subgroups !== undefined };
  const body = unrollLoops(expand(`${kernel}.wgsl`, variant, files), counts);
  const needsF16 = precision === "f16" && F16_SLOTS.some((slot) => files.has(VARIANT_SLOTS[slot](variant)));
  const usesSubgroups = files.has(VARIANT_SLOTS["lib/row_max.wgsl"]({ precision, subgroups: true }));
  const head = (needsF16 ? "enable f16;\n" : "") + (usesSubgroups && subgroups ? `${subgroups}\n` : "");
  return head + body;
}
