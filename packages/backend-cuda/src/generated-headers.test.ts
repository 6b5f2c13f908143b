// The build's C headers from core (scripts/generate-headers.mjs), compiled with the host C++ compiler against
// csrc/sageattn.h: they compile as generated, and a field renamed, retyped, moved or removed in a copy of core's
// schema fails the compile with a message naming the field (what nvcc then reports in scripts/build.sh).
import { layoutOf, type ParamSchema, SA_KV_PARAMS, SA_PARAMS } from "@sageattn/core/schema";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CXX, hasCxx } from "./test-support.js";
import { abiChecksHeader, constantsHeader } from "../scripts/generate-headers.mjs";

const sageattnH = fileURLToPath(new URL("../csrc/sageattn.h", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "sageattn-abi-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/**
 * Compiles the generated ABI checks for `params` (and sa_kv_params built on it, as core's schema spreads it) beside a
 * copy of sageattn.h; the compiler's errors, "" if none.
 */
function compileWith(params: ParamSchema): string {
  const dir = mkdtempSync(join(work, "h-"));
  mkdirSync(join(dir, "generated"));
  copyFileSync(sageattnH, join(dir, "sageattn.h"));
  writeFileSync(join(dir, "generated", "core_constants.h"), constantsHeader());
  const cache = SA_KV_PARAMS.fields.slice(SA_PARAMS.fields.length);
  writeFileSync(
    join(dir, "generated", "abi_checks.h"),
    abiChecksHeader(params, { ...SA_KV_PARAMS, fields: [...params.fields, ...cache] }),
  );
  try {
    execFileSync(CXX, ["-std=c++17", "-fsyntax-only", "-x", "c++", join(dir, "generated", "abi_checks.h")], {
      stdio: "pipe",
    });
    return "";
  } catch (e) {
    return String((e as { stderr?: unknown }).stderr ?? e);
  }
}

const withFields = (map: (f: ParamSchema["fields"][number]) => ParamSchema["fields"]): ParamSchema => ({
  ...SA_PARAMS,
  fields: SA_PARAMS.fields.flatMap(map),
});

describe.skipIf(!hasCxx)(`csrc/generated/ from core's schemas, compiled with ${CXX}`, () => {
  it("compiles against sageattn.h as generated", () => {
    expect(compileWith(SA_PARAMS)).toBe("");
  });

  it("names a field renamed in core's schema", () => {
    expect(compileWith(withFields((f) => [f.name === "heads_q" ? { ...f, name: "heads_query" } : f]))).toMatch(
      /sa_params.* has no member named .heads_query/,
    );
  });

  it("names a field retyped or moved, with the offset and type core gives it", () => {
    const at = layoutOf(SA_PARAMS).offsets;
    expect(compileWith(withFields((f) => [f.name === "dtype" ? { ...f, type: "u32" } : f]))).toContain(
      `sa_params.dtype: core's schema (packages/core/src/schema.ts) makes it uint32_t at offset ${at.dtype}, 4 bytes`,
    );
    const swapped = withFields((f) =>
      f.name === "seqlen_q"
        ? []
        : f.name === "seqlen_k"
        ? [f, SA_PARAMS.fields.find((g) => g.name === "seqlen_q")!]
        : [f]
    );
    const errors = compileWith(swapped);
    expect(errors).toContain(
      `sa_params.seqlen_k: core's schema (packages/core/src/schema.ts) makes it int32_t at offset ${at.seqlen_q}`,
    );
    expect(errors).toContain(
      `sa_params.seqlen_q: core's schema (packages/core/src/schema.ts) makes it int32_t at offset ${at.seqlen_k}`,
    );
  });

  it("names the member count when core drops a field (the last one leaves every offset and the size as they were)", () => {
    expect(compileWith(withFields((f) => (f.name === "sm_scale" ? [] : [f])))).toContain(
      "SA_PARAMS_FIELDS: core's schema (packages/core/src/schema.ts) gives sa_params 27 members",
    );
  });
});
