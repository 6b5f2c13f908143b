/**
 * onnxruntime-node's CPU MultiHeadAttention (com.microsoft) as a timing peer: core's one-node ONNX model
 * (`@sageattn/core/onnx`), inputs Q, K, V as [B, N, H·D] f32. For indicative numbers only; the project's peer
 * comparisons live in apps/cli.
 */
import { multiHeadAttentionModel } from "@sageattn/core/onnx";

/** HND [B, H, N, D] → [B, N, H·D]. */
function toBNHD(x: Float32Array, B: number, H: number, N: number, D: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        out.set(x.subarray(((b * H + h) * N + n) * D, ((b * H + h) * N + n + 1) * D), ((b * N + n) * H + h) * D);
      }
    }
  }
  return out;
}

/** A session on the model and a function that runs it once on the given HND inputs. */
export async function ortMultiHeadAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  s: { B: number; H: number; N: number; D: number; threads: number },
): Promise<() => Promise<unknown>> {
  const name = "onnxruntime-node";
  const ort = (await import(/* @vite-ignore */ name)) as typeof import("onnxruntime-node");
  const session = await ort.InferenceSession.create(
    multiHeadAttentionModel({ heads: s.H, headDim: s.D, scale: 1 / Math.sqrt(s.D), causal: false, dtype: "f32" }),
    { intraOpNumThreads: s.threads, interOpNumThreads: 1 },
  );
  const dims = [s.B, s.N, s.H * s.D];
  const feeds = {
    query: new ort.Tensor("float32", toBNHD(q, s.B, s.H, s.N, s.D), dims),
    key: new ort.Tensor("float32", toBNHD(k, s.B, s.H, s.N, s.D), dims),
    value: new ort.Tensor("float32", toBNHD(v, s.B, s.H, s.N, s.D), dims),
  };
  return () => session.run(feeds);
}
