import type { UnavailableReason } from "@sageattn/core";

const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";

/** Sizes small enough for a CPU adapter (lavapipe): the suite's largest N and D. */
export const CPU_LIMITS = { maxN: 256, maxD: 256, timeout: 300_000 } as const;

/**
 * Why the backend may be missing in a test run: never under Deno (it has WebGPU; CI gives it lavapipe), and
 * under Node or Bun only for "no adapter" / "null backend refused" / "package missing".
 */
export const SKIP_OK: readonly UnavailableReason[] = isDeno ? [] : ["NoDevice", "Refused", "NotInstalled"];
