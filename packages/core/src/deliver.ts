import { Effect } from "effect";
import { DeviceError } from "./errors.js";
import { dims, type HostTensor, logicalStrides, type Tensor } from "./tensor.js";

/**
 * Copies `src` into `out` element by element through both tensors' strides (same dtype, layout and shape, which
 * core checked). Backends that cannot write into a caller's host tensor directly return their own, and core
 * delivers it here, so `out` means the same on every backend.
 */
export function copyInto(out: HostTensor, src: HostTensor): void {
  const { B, H, N, D } = dims(out);
  const [ob, oh, on, od] = logicalStrides(out);
  const [sb, sh, sn, sd] = logicalStrides(src);
  const o = out.data, s = src.data;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        const oBase = b * ob + h * oh + n * on, sBase = b * sb + h * sh + n * sn;
        for (let d = 0; d < D; d++) o[oBase + d * od] = s[sBase + d * sd];
      }
    }
  }
}

/**
 * The caller's `out` holding the result: the backend wrote it, or (host tensors) core copies it there; a DeviceError
 * when the backend returned some other tensor. Synchronous, for the paths that run without the Effect runtime.
 */
export function deliverNow(out: Tensor, produced: Tensor, backend: string): Tensor | DeviceError {
  if (produced === out) return out;
  if (out.kind === "host" && produced.kind === "host") {
    copyInto(out, produced);
    return out;
  }
  return new DeviceError({
    backend,
    reason: "KernelFailed",
    message: `${backend} did not write into the out tensor it was given`,
  });
}

/** `deliverNow` as an Effect. */
export function deliver(out: Tensor, produced: Tensor, backend: string): Effect.Effect<Tensor, DeviceError> {
  const r = deliverNow(out, produced, backend);
  return r instanceof DeviceError ? Effect.fail(r) : Effect.succeed(r);
}
