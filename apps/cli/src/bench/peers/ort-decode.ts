/**
 * onnxruntime-node's decode step as a peer: one com.microsoft node with past K/V. Each run feeds the new query rows,
 * the new K/V rows and the past K/V (BNSH), and gets the output and the present K/V back, as a model decoding with
 * onnxruntime from JavaScript does (the past goes in and the present comes out through the JS API every step).
 * MultiHeadAttention has no GQA: its past holds all H heads (each kv head repeated H/Hkv times), so it reads H/Hkv
 * times the bytes a GQA cache holds. GroupQueryAttention keeps Hkv heads (the fair peer for GQA shapes; always causal,
 * bottom-right, which is what decode needs).
 */
import { groupQueryAttentionModel, multiHeadAttentionModel } from "@sageattn/core/onnx";

interface OrtTensor {
  readonly data: unknown;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  readonly InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  readonly Tensor: new (
    type: "float32" | "int32",
    data: Float32Array | Int32Array,
    dims: readonly number[],
  ) => OrtTensor;
}

/** One decode shape opened in onnxruntime-node: `step()` runs one step on the same feeds; `output()` its last output (BSH). */
export interface OrtDecodeSession {
  step(): Promise<void>;
  output(): Float32Array;
  release(): Promise<void>;
}

/**
 * Opens the peer for query/new K/V rows in BSH ([B, Nq, heads·D]) and the past K/V in BNSH ([B, heads, past, D]):
 * "mha" with H heads of K/V, "gqa" with Hkv. Rejects when onnxruntime-node is not installed or refuses the model.
 */
export async function openOrtDecode(
  op: "mha" | "gqa",
  s: { B: number; H: number; Hkv: number; Nq: number; past: number; D: number; causal: boolean; threads: number },
  feeds: {
    query: Float32Array;
    key: Float32Array;
    value: Float32Array;
    pastKey: Float32Array;
    pastValue: Float32Array;
  },
): Promise<OrtDecodeSession> {
  const spec = "onnxruntime-node"; // optional dependency: a variable keeps tsc and bundlers from requiring it
  const ort = (await import(spec)) as OrtModule;
  const scale = 1 / Math.sqrt(s.D);
  const model = op === "mha"
    ? multiHeadAttentionModel({ heads: s.H, headDim: s.D, scale, causal: s.causal, dtype: "f32", past: true })
    : groupQueryAttentionModel({ heads: s.H, headsKv: s.Hkv, headDim: s.D, scale, dtype: "f32" });
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: s.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionProviders: ["cpu"],
  });
  const kvHeads = op === "mha" ? s.H : s.Hkv;
  const kvRows = [s.B, s.Nq, kvHeads * s.D];
  const past = [s.B, kvHeads, s.past, s.D];
  const inputs: Record<string, OrtTensor> = {
    query: new ort.Tensor("float32", feeds.query, [s.B, s.Nq, s.H * s.D]),
    key: new ort.Tensor("float32", feeds.key, kvRows),
    value: new ort.Tensor("float32", feeds.value, kvRows),
    past_key: new ort.Tensor("float32", feeds.pastKey, past),
    past_value: new ort.Tensor("float32", feeds.pastValue, past),
  };
  if (op === "gqa") {
    inputs.seqlens_k = new ort.Tensor("int32", new Int32Array(s.B).fill(s.past + s.Nq - 1), [s.B]);
    inputs.total_sequence_length = new ort.Tensor("int32", Int32Array.of(s.past + s.Nq), []);
  }
  let last: Float32Array | undefined;
  return {
    async step() {
      const out = await session.run(inputs);
      last = out.output.data as Float32Array;
    },
    output: () => last!,
    release: () => session.release(),
  };
}
