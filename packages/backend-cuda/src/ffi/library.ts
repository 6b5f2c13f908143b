/**
 * Finds and opens libsageattn_cuda.so: `SAGEATTN_CUDA_LIB`, then the package's own build (dist/linux-x64/ beside the
 * compiled module, or under the package when running from src/). Bun opens it with `bun:ffi`, Deno with
 * `Deno.dlopen`; Node has no built-in FFI (FeatureMissing).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { BackendUnavailable, readEnv, runtimeName } from "@sageattn/core";
import { Effect } from "effect";
import { type Native, toBun, toDeno } from "./symbols.js";

export const LIBRARY_FILE = "libsageattn_cuda.so";

/** Every place the library is looked for, in order. */
export function libraryCandidates(): string[] {
  const out: string[] = [];
  const env = readEnv("SAGEATTN_CUDA_LIB");
  if (env) out.push(env);
  for (
    const rel of [
      `./linux-x64/${LIBRARY_FILE}`,
      `../dist/linux-x64/${LIBRARY_FILE}`,
      `../../dist/linux-x64/${LIBRARY_FILE}`,
    ]
  ) {
    try {
      out.push(fileURLToPath(new URL(rel, import.meta.url)));
    } catch {
      // import.meta.url is not a file URL (a bundle served over http): only the environment path applies
    }
  }
  return [...new Set(out)];
}

const unavailable = (reason: BackendUnavailable["reason"], message: string, cause?: unknown) =>
  new BackendUnavailable({ backend: "cuda", reason, message, cause });

const DENO_PERMISSIONS =
  "run with --allow-read --allow-ffi (and --allow-env for SAGEATTN_CUDA_LIB), or -A, to use cuda";

/** Deno refuses what its permissions do not allow with NotCapable (PermissionDenied before Deno 2). */
const deniedByDeno = (e: unknown) => ["NotCapable", "PermissionDenied"].includes((e as Error)?.name);

/** An error's message without the stack trace Deno's errors carry in it. */
const firstLine = (e: unknown) => String((e as Error)?.message ?? e).split("\n")[0];

type BunFfi = {
  dlopen(path: string, symbols: unknown): { symbols: Record<string, (...a: unknown[]) => unknown>; close(): void };
};
type DenoFfi = {
  dlopen(path: string, symbols: unknown): { symbols: Record<string, (...a: unknown[]) => unknown>; close(): void };
};

export interface OpenLibrary {
  readonly path: string;
  readonly native: Native;
  readonly close: () => void;
}

/** Opens the first of `candidates` that exists; fails with LibraryNotFound listing every path tried. */
export const openLibraryFrom = (candidates: readonly string[]): Effect.Effect<OpenLibrary, BackendUnavailable> =>
  Effect.gen(function* () {
    const g = globalThis as { Bun?: unknown; Deno?: DenoFfi; process?: { platform?: string; arch?: string } };
    if (!g.Bun && !g.Deno) {
      return yield* Effect.fail(
        unavailable("FeatureMissing", `${runtimeName()} has no built-in FFI; the cuda backend runs under Bun or Deno`),
      );
    }
    const platform = g.Deno
      ? (globalThis as unknown as { Deno: { build: { os: string; arch: string } } }).Deno.build
      : { os: g.process?.platform, arch: g.process?.arch };
    if (platform.os !== "linux" || (platform.arch !== "x64" && platform.arch !== "x86_64")) {
      return yield* Effect.fail(
        unavailable(
          "LibraryNotFound",
          `the CUDA library is built for linux-x64 only, this is ${platform.os}-${platform.arch}`,
        ),
      );
    }
    const tried = candidates;
    let path: string | undefined;
    try {
      path = tried.find((p) => existsSync(p));
    } catch (e) {
      return yield* Effect.fail(
        deniedByDeno(e)
          ? unavailable("FeatureMissing", `Deno may not read the library: ${DENO_PERMISSIONS}`, e)
          : unavailable("LibraryNotFound", `${LIBRARY_FILE} could not be looked for: ${firstLine(e)}`, e),
      );
    }
    if (!path) {
      return yield* Effect.fail(
        unavailable(
          "LibraryNotFound",
          `${LIBRARY_FILE} not found: build it with nvcc (bash node_modules/@sageattn/backend-cuda/scripts/build.sh ` +
            `in a project, npm run build -w @sageattn/backend-cuda in this repository), or point SAGEATTN_CUDA_LIB at ` +
            `it (a bundled app must); tried: ${tried.join(", ")}`,
        ),
      );
    }
    return yield* Effect.tryPromise({
      try: async (): Promise<OpenLibrary> => {
        if (g.Bun) {
          const spec = "bun:ffi"; // a variable, so bundlers and other runtimes leave the import alone
          const ffi = (await import(/* @vite-ignore */ spec)) as BunFfi;
          const lib = ffi.dlopen(path, toBun());
          return { path, native: lib.symbols as unknown as Native, close: () => lib.close() };
        }
        const lib = g.Deno!.dlopen(path, toDeno());
        return { path, native: lib.symbols as unknown as Native, close: () => lib.close() };
      },
      catch: (e) =>
        deniedByDeno(e)
          ? unavailable("FeatureMissing", `Deno may not open the library: ${DENO_PERMISSIONS}`, e)
          : unavailable("LibraryNotFound", `${path} could not be opened: ${firstLine(e)}`, e),
    });
  });

/** Opens the library from the usual places (see libraryCandidates). */
export const openLibrary: Effect.Effect<OpenLibrary, BackendUnavailable> = Effect.suspend(() =>
  openLibraryFrom(libraryCandidates())
);
