/** Which of our backends a bench run uses: through core's registry (installed backend packages are discovered there). */
import { Effect, Exit } from "effect";
import { type AttentionBackend, backendStatus, loadBackend, runToPromise } from "@sageattn/core";

export interface ChosenBackends {
  readonly backends: AttentionBackend[];
  readonly rejected: Array<{ backend: string; reason: string; message: string }>;
  /** True when only the js reference was left (the caller then keeps to a small grid). */
  readonly onlyReference: boolean;
}

/**
 * The named backend (failing with its tagged reason when it cannot load), or every backend that loads, best first.
 * The js reference is slow (float64 scalar code), so "all" leaves it out unless nothing else loads.
 */
export async function chooseBackends(name: string | undefined): Promise<ChosenBackends> {
  if (name !== undefined) {
    return { backends: [await runToPromise(loadBackend(name))], rejected: [], onlyReference: false };
  }
  const rows = await Effect.runPromise(backendStatus());
  const loaded = rows.flatMap((r) => (r.backend ? [r.backend] : []));
  const rejected = rows.flatMap((
    r,
  ) => (r.rejection
    ? [{ backend: r.rejection.backend, reason: r.rejection.reason, message: r.rejection.message }]
    : [])
  );
  const fast = loaded.filter((b) => b.name !== "js");
  if (fast.length > 0) return { backends: fast, rejected, onlyReference: false };
  return { backends: loaded.filter((b) => b.name === "js"), rejected, onlyReference: true };
}

/**
 * Makes the cpu-simd backend use `threads` threads (the caller included), configured through core's registry
 * before anything else loads it. Returns why not where it cannot (package missing, option refused).
 */
export async function useCpuThreads(threads: number): Promise<string | undefined> {
  const exit = await Effect.runPromiseExit(loadBackend("cpu-simd", { threads }));
  if (Exit.isSuccess(exit)) return undefined;
  return exit.cause._tag === "Fail"
    ? `${exit.cause.error._tag}/${exit.cause.error.reason}: ${exit.cause.error.message}`
    : String(exit.cause);
}
