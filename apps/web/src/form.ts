import type { Distribution, DType } from "@sageattn/core";
import type { RunRequest } from "./measure.js";

/** Limits that keep the float64 reference (which runs in JavaScript) within seconds. */
export const LIMITS = { heads: 16, tokens: 2048 } as const;

/** Reads and checks the form; returns a message for the person when a field is out of range. */
export function readRequest(form: HTMLFormElement): RunRequest | string {
  const data = new FormData(form);
  const int = (name: string) => Number.parseInt(String(data.get(name)), 10);
  const heads = int("heads");
  const tokens = int("tokens");
  const headDim = int("headDim");
  if (!(heads >= 1 && heads <= LIMITS.heads)) return `Heads must be between 1 and ${LIMITS.heads}.`;
  if (!(tokens >= 1 && tokens <= LIMITS.tokens)) return `Tokens must be between 1 and ${LIMITS.tokens}.`;
  const backend = String(data.get("backend"));
  return {
    heads,
    tokens,
    headDim,
    causal: data.get("causal") === "on",
    dtype: String(data.get("dtype")) as DType,
    distribution: String(data.get("distribution")) as Distribution,
    backend: backend === "auto" ? undefined : backend,
  };
}
