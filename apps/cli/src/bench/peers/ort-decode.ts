/**
 * onnxruntime-node's decode step as a peer: one com.microsoft MultiHeadAttention node with past K/V. Each run feeds
 * the new query rows, the new K/V rows and the past K/V [B, H, past, D] (BNSH), and gets the output and the present
 * K/V back, as a model decoding with onnxruntime from JavaScript does. MultiHeadAttention has no GQA: the past holds
 * all H heads (each kv head repeated H/Hkv times), so it reads H/Hkv times the bytes a GQA cache holds.
 */
import { ProtoWriter } from "./protobuf.js";

const ELEM_FLOAT = 1;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;

function valueInfo(w: ProtoWriter, name: string, dims: ReadonlyArray<number | string>): void {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, ELEM_FLOAT).message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
}

/** MultiHeadAttention(query, key, value, past_key, past_value) → output, present_key, present_value, f32. */
export function decodeMhaModel(heads: number, headDim: number, causal: boolean): Uint8Array {
  const hidden = heads * headDim;
  const model = new ProtoWriter();
  model.int(1, 8);
  model.string(2, "sageattn-bench-decode");
  model.message(8, (op) => op.string(1, "").int(2, 17));
  model.message(8, (op) => op.string(1, "com.microsoft").int(2, 1));
  model.message(7, (graph) => {
    graph.message(1, (node) => {
      // Inputs 3–5 (bias, key_padding_mask, attention_bias) are absent: empty names keep the positions.
      for (const input of ["query", "key", "value", "", "", "", "past_key", "past_value"]) node.string(1, input);
      for (const output of ["output", "present_key", "present_value"]) node.string(2, output);
      node.string(3, "mha").string(4, "MultiHeadAttention").string(7, "com.microsoft");
      node.message(5, (a) => a.string(1, "num_heads").int(20, ATTR_INT).int(3, heads));
      node.message(5, (a) => a.string(1, "scale").int(20, ATTR_FLOAT).float(2, 1 / Math.sqrt(headDim)));
      if (causal) node.message(5, (a) => a.string(1, "unidirectional").int(20, ATTR_INT).int(3, 1));
    });
    graph.string(2, "decode");
    for (const name of ["query", "key", "value"]) graph.message(11, (v) => valueInfo(v, name, ["batch", "nq", hidden]));
    for (const name of ["past_key", "past_value"]) graph.message(11, (v) => valueInfo(v, name, ["batch", heads, "past", headDim]));
    graph.message(12, (v) => valueInfo(v, "output", ["batch", "nq", hidden]));
    for (const name of ["present_key", "present_value"]) graph.message(12, (v) => valueInfo(v, name, ["batch", heads, "total", headDim]));
  });
  return model.finish();
}

interface OrtTensor {
  readonly data: unknown;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  readonly InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  readonly Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensor;
}

/** One decode shape opened in onnxruntime-node: `step()` runs one step on the same feeds; `output()` its last output (BSH). */
export interface OrtDecodeSession {
  step(): Promise<void>;
  output(): Float32Array;
  release(): Promise<void>;
}

/**
 * Opens the peer for query/new K/V rows in BSH ([B, Nq, H·D]) and the past K/V in BNSH ([B, H, past, D]).
 * Rejects when onnxruntime-node is not installed or refuses the model.
 */
export async function openOrtDecode(
  s: { B: number; H: number; Nq: number; past: number; D: number; causal: boolean; threads: number },
  feeds: { query: Float32Array; key: Float32Array; value: Float32Array; pastKey: Float32Array; pastValue: Float32Array },
): Promise<OrtDecodeSession> {
  const spec = "onnxruntime-node"; // optional dependency: a variable keeps tsc and bundlers from requiring it
  const ort = (await import(spec)) as OrtModule;
  const session = await ort.InferenceSession.create(decodeMhaModel(s.H, s.D, s.causal), {
    intraOpNumThreads: s.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionProviders: ["cpu"],
  });
  const rows = [s.B, s.Nq, s.H * s.D];
  const past = [s.B, s.H, s.past, s.D];
  const inputs = {
    query: new ort.Tensor("float32", feeds.query, rows),
    key: new ort.Tensor("float32", feeds.key, rows),
    value: new ort.Tensor("float32", feeds.value, rows),
    past_key: new ort.Tensor("float32", feeds.pastKey, past),
    past_value: new ort.Tensor("float32", feeds.pastValue, past),
  };
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
