import type { ParamSchema } from "@sageattn/core/schema";

/** assembly/generated/records.ts for these record schemas. */
export function recordsSource(attn?: ParamSchema, kv?: ParamSchema): string;
