import { Effect } from "effect";
import { DTYPES } from "./dtype.js";
import type { AttentionBackend, AttentionOutput, BackendProvider } from "./backend.js";
import { DeviceError, hostAllocationFailed } from "./errors.js";
import { exactReference, type Reference } from "./oracle-exact.js";
import { sageReference } from "./oracle-sage.js";
import { MAX_HEAD_DIM, type Problem } from "./problem.js";
import { fromCanonicalF32, toCanonicalF32, type HostTensor, type Tensor } from "./tensor.js";

function run(reference: typeof sageReference, p: Problem, q: Tensor, k: Tensor, v: Tensor): Effect.Effect<AttentionOutput, DeviceError> {
  return Effect.suspend(() => {
    if (q.kind !== "host" || k.kind !== "host" || v.kind !== "host")
      return Effect.fail(new DeviceError({ backend: "js", reason: "KernelFailed", message: "the js backend takes host tensors only" }));
    return Effect.try({
      try: () => {
        const r: Reference = reference(p, toCanonicalF32(q), toCanonicalF32(k), toCanonicalF32(v));
        const output = fromCanonicalF32(Float32Array.from(r.output), { B: p.B, H: p.Hq, N: p.Nq, D: p.D }, p.outputDtype, p.layout);
        return p.returnLse ? { output, lse: Float32Array.from(r.lse) } : { output };
      },
      catch: (e) => hostAllocationFailed("js", e),
    });
  });
}

/** The TypeScript oracle as a backend: always available, slow; the last fallback and the reference for tests. */
export const jsBackend: AttentionBackend = {
  name: "js",
  capabilities: { dtypes: DTYPES, maxHeadDim: MAX_HEAD_DIM, causal: true, lse: true, mask: true, varlen: true, deviceTensors: false, exactKernel: true, pv: ["f16-block", "f32"] },
  device: "JavaScript (scalar, float64 emulation)",
  details: { kind: "reference implementation" },
  upload: (t: HostTensor) =>
    Effect.fail(new DeviceError({ backend: "js", reason: "KernelFailed", message: `the js backend has no device memory (tensor ${t.shape.join("×")})` })),
  download: () => Effect.fail(new DeviceError({ backend: "js", reason: "KernelFailed", message: "the js backend has no device memory" })),
  attention: (p, q, k, v) => run(sageReference, p, q, k, v),
  exactAttention: (p, q, k, v) => run(exactReference, p, q, k, v),
  synchronize: Effect.void,
  dispose: Effect.void,
};

export const jsProvider: BackendProvider = { name: "js", priority: 0, load: Effect.succeed(jsBackend) };
