import type { ParamSchema } from "@sageattn/core/schema";

/** path → WGSL source: the shaders under src/shaders/ and the files generated from core's schemas. */
export function bundle(params?: Readonly<Record<string, ParamSchema>>): Record<string, string>;
/** One line per shader read of `params.x` that its kernel's schema lacks. */
export function schemaMismatches(
  files: Readonly<Record<string, string>>,
  params?: Readonly<Record<string, ParamSchema>>,
): string[];
