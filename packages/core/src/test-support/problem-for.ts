/** Test support: the resolved Problem of an (Nq, Nk, D, H heads) call with `options`, from zero-filled host tensors. */
import { Effect } from "effect";
import { type AttentionOptions, type Problem, resolveProblem } from "../problem.js";
import { hostTensor } from "../tensor.js";

export const problemFor = (Nq: number, Nk: number, D: number, options: AttentionOptions, H = 1): Problem =>
  Effect.runSync(
    resolveProblem(
      hostTensor(new Float32Array(H * Nq * D), [1, H, Nq, D]),
      hostTensor(new Float32Array(H * Nk * D), [1, H, Nk, D]),
      hostTensor(new Float32Array(H * Nk * D), [1, H, Nk, D]),
      options,
    ),
  );
