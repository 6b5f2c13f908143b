// What CI (no GPU) can check, under Node, Bun and Deno: the library was built, it opens, its sa_params packing
// matches ours, and a missing device is a tagged NoDevice, not a crash. Under Node (no FFI) the backend must say
// FeatureMissing.
import { existsSync } from "node:fs";
import { execSync, spawnSync } from "node:child_process";
import { runtimeName } from "@sageattn/core";
import { SA_FLAGS } from "@sageattn/core/schema";
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { libraryCandidates, openLibrary, openLibraryFrom } from "./ffi/library.js";
import { KV_PARAMS_SIZE, KvParamsBuffer, verifyKvLayout } from "./ffi/kv-params.js";
import { PARAMS_SIZE, ParamsBuffer, verifyLayout } from "./ffi/params.js";
import { lastError } from "./status.js";
import { provider } from "./index.js";

const runtime = runtimeName();
const hasFfi = runtime.startsWith("bun") || runtime.startsWith("deno");
const nvcc = (() => {
  try {
    execSync("command -v nvcc || test -x /usr/local/cuda/bin/nvcc", { stdio: "ignore", shell: "/bin/sh" });
    return true;
  } catch {
    return false;
  }
})();
const built = libraryCandidates().some((p) => existsSync(p));

describe(`backend-cuda native library under ${runtime}`, () => {
  it.skipIf(!nvcc)("was built by the package build (nvcc is present)", () => {
    expect(built, `tried ${libraryCandidates().join(", ")}`).toBe(true);
  });

  it.skipIf(!hasFfi || !built)("opens, and its sa_params layout matches the TypeScript packing", async () => {
    const lib = await Effect.runPromise(openLibrary);
    expect(verifyLayout(lib.native)).toBeUndefined();
    const report = new BigInt64Array(29);
    expect(lib.native.sa_params_layout(report, report.length)).toBe(29);
    expect(Number(report[0])).toBe(PARAMS_SIZE);
    expect(lib.native.sa_version()).toBe(100);
  });

  it.skipIf(!hasFfi || !built)(
    "its sa_kv_params layout matches, and the cache size follows kv_cache.h's regions",
    async () => {
      const lib = await Effect.runPromise(openLibrary);
      expect(verifyKvLayout(lib.native)).toBeUndefined();
      const pb = new KvParamsBuffer();
      pb.setI32("batch", 2).setI32("heads_kv", 3).setI32("head_dim", 100).setCache(0n, 130, 0);
      const bytes = new BigUint64Array(1);
      expect(lib.native.sa_kv_cache_size(pb.bytes, bytes)).toBe(0);
      // head_dim 100 pads to 128, capacity 130 to 192 rows: int8 K, f16 V, one scale per 64 rows, mean, the partial
      // block's 64 f32 rows, 16 chunk sums, the next mean — per (batch, kv head), each region 256-aligned.
      const heads = 6, DP = 128, cap = 192;
      const regions = [
        heads * cap * DP,
        heads * cap * DP * 2,
        heads * 3 * 4,
        heads * DP * 4,
        heads * 64 * DP * 4,
        heads * 16 * DP * 4,
        heads * DP * 4,
      ];
      expect(Number(bytes[0])).toBe(regions.reduce((a, r) => a + Math.ceil(r / 256) * 256, 0));
      expect(pb.bytes.length).toBe(KV_PARAMS_SIZE);
      // A capacity the cache cannot hold is refused before any device work.
      pb.setCache(0n, 10, 11);
      expect(lib.native.sa_kv_cache_size(pb.bytes, bytes)).toBe(1);
    },
  );

  it.skipIf(!hasFfi || !built)("turns a bad call into a tagged status with the native message", async () => {
    const lib = await Effect.runPromise(openLibrary);
    // A null params pointer is rejected before any device work, with or without a GPU.
    const out = new BigUint64Array(1);
    const status = lib.native.sa_workspace_size(new Uint8Array(PARAMS_SIZE), out);
    expect(status).toBe(1); // SA_ERR_INVALID_ARGUMENT: all-zero shapes
  });

  it.skipIf(!hasFfi || !built)(
    "refuses flag bits it does not define, naming them, before any device work",
    async () => {
      const lib = await Effect.runPromise(openLibrary);
      const pb = new ParamsBuffer();
      pb.setI32("batch", 1).setI32("heads_q", 2).setI32("heads_kv", 2);
      pb.setI32("seqlen_q", 64).setI32("seqlen_k", 64).setI32("head_dim", 64);
      pb.setI32("dtype", 1).setI32("out_dtype", 1).setU32("flags", 1); // f16, HND, causal
      const bytes = new BigUint64Array(1);
      expect(lib.native.sa_workspace_size(pb.bytes, bytes)).toBe(0);
      expect(bytes[0] > 0n).toBe(true);
      pb.setU32("flags", 1 | (1 << 12) | (1 << 31));
      expect(lib.native.sa_workspace_size(pb.bytes, bytes)).toBe(1); // SA_ERR_INVALID_ARGUMENT
      expect(lastError(lib.native)).toContain("unknown flag bits 0x80001000");
      // One P·V mode at a time: "fp8" with "int8" is refused.
      pb.setU32("flags", 1 | SA_FLAGS.pv_fp8 | SA_FLAGS.pv_int8);
      expect(lib.native.sa_workspace_size(pb.bytes, bytes)).toBe(1);
      expect(lastError(lib.native)).toContain("more than one of SA_PV_F32, SA_PV_INT8 and SA_PV_FP8");
      // One granularity at a time: SA_QK_THREAD alone is sized, with SA_QK_ROW it is refused.
      pb.setU32("flags", 1 | SA_FLAGS.qk_thread);
      expect(lib.native.sa_workspace_size(pb.bytes, bytes)).toBe(0);
      pb.setU32("flags", 1 | SA_FLAGS.qk_thread | SA_FLAGS.qk_row);
      expect(lib.native.sa_workspace_size(pb.bytes, bytes)).toBe(1);
      expect(lastError(lib.native)).toContain("more than one of SA_QK_WARP, SA_QK_ROW and SA_QK_THREAD");
    },
  );

  it("loads, or fails with the tagged reason this machine explains", async () => {
    const exit = await Effect.runPromiseExit(provider.load);
    if (Exit.isSuccess(exit)) {
      expect(exit.value.name).toBe("cuda");
      await Effect.runPromise(exit.value.dispose);
      return;
    }
    const err = exit.cause._tag === "Fail" ? exit.cause.error : undefined;
    expect(err?._tag).toBe("BackendUnavailable");
    const expected = !hasFfi ? "FeatureMissing" : !built ? "LibraryNotFound" : "NoDevice";
    expect(err?.reason, err?.message).toBe(expected);
    expect(err?.message.length).toBeGreaterThan(10);
  });

  it.skipIf(!hasFfi)("lists every path it tried when the library is missing", async () => {
    const tried = ["/nonexistent/a/libsageattn_cuda.so", "/nonexistent/b/libsageattn_cuda.so"];
    const exit = await Effect.runPromiseExit(openLibraryFrom(tried));
    const err = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined;
    expect(err?.reason).toBe("LibraryNotFound");
    for (const p of tried) expect(err?.message).toContain(p);
  });
});

// Deno without the permissions cuda needs: a tagged FeatureMissing that names the flags, not a defect with a stack.
const deno = new URL("../../../node_modules/.bin/deno", import.meta.url).pathname;
const dist = new URL("../dist/index.js", import.meta.url).pathname;
describe.runIf(runtime.startsWith("node") && existsSync(deno) && existsSync(dist))(
  "the cuda backend under Deno's permissions",
  () => {
    const load = (...flags: string[]) => {
      const script = `import { Effect } from "effect";
import { provider } from "./dist/index.js";
const exit = await Effect.runPromiseExit(provider.load);
const e = exit.cause?.error;
console.log(JSON.stringify(e ? { reason: e.reason, message: e.message } : { cause: String(exit.cause) }));`;
      const r = spawnSync(deno, ["run", ...flags, "-"], {
        cwd: new URL("..", import.meta.url).pathname,
        input: script,
        encoding: "utf8",
        env: { ...process.env, SAGEATTN_CUDA_LIB: "" },
      });
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { reason?: string; message?: string; cause?: string };
    };

    it("without --allow-read", () => {
      const r = load();
      expect(r.reason).toBe("FeatureMissing");
      expect(r.message).toContain("--allow-read --allow-ffi");
      expect(r.message).not.toContain("\n");
    });

    it("with --allow-read but not --allow-ffi", () => {
      const r = load("--allow-read");
      expect(r.reason).toBe(built ? "FeatureMissing" : "LibraryNotFound");
      expect(r.message).toContain(built ? "--allow-ffi" : "SAGEATTN_CUDA_LIB");
      expect(r.message).not.toContain("\n");
    });
  },
);
