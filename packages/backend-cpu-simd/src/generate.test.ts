// The build's AssemblyScript generation (scripts/build-wasm.mjs) against core's record schemas: the kernels compile
// with the generated offsets, and a field renamed in a copy of the schema fails the compile, naming the field.
import {
  constantName,
  CPU_ATTN_RECORD,
  CPU_CACHE_RECORD,
  CPU_DECODE_RECORD,
  CPU_MERGE_RECORD,
  layoutOf,
  type ParamSchema,
} from "@sageattn/core/schema";
import asc from "assemblyscript/asc";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { recordsSource } from "../scripts/build-wasm.mjs";

const assembly = fileURLToPath(new URL("../assembly", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "sageattn-asc-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Compiles a copy of assembly/ whose generated records come from `attn`; returns asc's error text ("" when it compiles). */
async function compileWith(attn: ParamSchema): Promise<string> {
  const dir = mkdtempSync(join(work, "a-"));
  cpSync(assembly, dir, { recursive: true });
  writeFileSync(join(dir, "generated", "records.ts"), recordsSource(attn));
  let stderr = "";
  const { error } = await asc.main([
    join(dir, "tasks.ts"),
    "--noEmit",
    "--runtime",
    "stub",
    "--use",
    "abort=",
    "--importMemory",
    "--sharedMemory",
    "--maximumMemory",
    "65536",
    "--enable",
    "simd",
    "--enable",
    "threads",
  ], {
    stdout: { write: () => true } as never,
    stderr: { write: (s: string | Uint8Array) => ((stderr += String(s)), true) } as never,
  });
  return error ? `${error.message}\n${stderr}` : "";
}

describe("AssemblyScript records generated from core's schemas", () => {
  it("writes one constant per field at the schema's offset", () => {
    const text = recordsSource();
    for (const f of layoutOf(CPU_ATTN_RECORD).fields) {
      expect(text).toMatch(new RegExp(`export const A_\\w+: i32 = ${f.offset};`));
    }
    expect(text).toContain(`export const ATTN_RECORD_BYTES: i32 = ${layoutOf(CPU_ATTN_RECORD).size};`);
  });

  it("writes the KV cache's records (C_, D_, M_) from their schemas too", () => {
    const text = recordsSource();
    const records = [[CPU_CACHE_RECORD, "C", "CACHE_RECORD_BYTES"], [CPU_DECODE_RECORD, "D", "DECODE_RECORD_BYTES"], [
      CPU_MERGE_RECORD,
      "M",
      "MERGE_RECORD_BYTES",
    ]] as const;
    for (const [schema, prefix, bytes] of records) {
      const layout = layoutOf(schema);
      for (const f of layout.fields) {
        expect(text).toContain(`export const ${prefix}_${constantName(f.name)}: i32 = ${f.offset};`);
      }
      expect(text).toContain(`export const ${bytes}: i32 = ${layout.size};`);
    }
    expect(text).toContain("export const C_S_K: i32 = 28;");
    expect(text).toContain("export const D_FOLD: i32 = 60;");
    expect(text).toContain("export const MERGE_RECORD_BYTES: i32 = 36;");
  });

  it("compiles with the schema as it is, and fails naming a field renamed in a copy", async () => {
    expect(await compileWith(CPU_ATTN_RECORD)).toBe("");
    const renamed: ParamSchema = {
      ...CPU_ATTN_RECORD,
      fields: CPU_ATTN_RECORD.fields.map((f) => (f.name === "maskKind" ? { ...f, name: "maskType" } : f)),
    };
    expect(recordsSource(renamed)).toContain("export const A_MASK_TYPE: i32 = 52;");
    expect(await compileWith(renamed)).toMatch(/A_MASK_KIND/);
  }, 120_000);
});
