/**
 * onnxruntime-node's decode step as a peer: one com.microsoft node with past K/V. Each run feeds the new query rows,
 * the new K/V rows and the past K/V (BNSH), and gets the output and the present K/V back, as a model decoding with
 * onnxruntime from JavaScript does (the past goes in and the present comes out through the JS API every step).
 * MultiHeadAttention has no GQA: its past holds all H heads (each kv head repeated H/Hkv times), so it reads H/Hkv
 * times the bytes a GQA cache holds. GroupQueryAttention keeps Hkv heads (the fair peer for GQA shapes; always causal,
 * bottom-right, which is what decode needs).
 */
import { ProtoWriter } from "./protobuf.js";

const ELEM_FLOAT = 1;
const ELEM_INT32 = 6;
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

/**
 * GroupQueryAttention(query, key, value, past_key, past_value, seqlens_k, total_sequence_length) → output,
 * present_key, present_value; past K/V [B, Hkv, past, D], f32.
 */
export function decodeGqaModel(heads: number, headsKv: number, headDim: number): Uint8Array {
  const model = new ProtoWriter();
  model.int(1, 8);
  model.string(2, "sageattn-bench-decode");
  model.message(8, (op) => op.string(1, "").int(2, 17));
  model.message(8, (op) => op.string(1, "com.microsoft").int(2, 1));
  model.message(7, (graph) => {
    graph.message(1, (node) => {
      for (const input of ["query", "key", "value", "past_key", "past_value", "seqlens_k", "total_sequence_length"]) node.string(1, input);
      for (const output of ["output", "present_key", "present_value"]) node.string(2, output);
      node.string(3, "gqa").string(4, "GroupQueryAttention").string(7, "com.microsoft");
      node.message(5, (a) => a.string(1, "num_heads").int(20, ATTR_INT).int(3, heads));
      node.message(5, (a) => a.string(1, "kv_num_heads").int(20, ATTR_INT).int(3, headsKv));
      node.message(5, (a) => a.string(1, "scale").int(20, ATTR_FLOAT).float(2, 1 / Math.sqrt(headDim)));
    });
    graph.string(2, "decode");
    graph.message(11, (v) => valueInfo(v, "query", ["batch", "nq", heads * headDim]));
    for (const name of ["key", "value"]) graph.message(11, (v) => valueInfo(v, name, ["batch", "nq", headsKv * headDim]));
    for (const name of ["past_key", "past_value"]) graph.message(11, (v) => valueInfo(v, name, ["batch", headsKv, "past", headDim]));
    graph.message(11, (v) => intInfo(v, "seqlens_k", ["batch"]));
    graph.message(11, (v) => intInfo(v, "total_sequence_length", []));
    graph.message(12, (v) => valueInfo(v, "output", ["batch", "nq", heads * headDim]));
    for (const name of ["present_key", "present_value"]) graph.message(12, (v) => valueInfo(v, name, ["batch", headsKv, "total", headDim]));
  });
  return model.finish();
}

function intInfo(w: ProtoWriter, name: string, dims: ReadonlyArray<number | string>): void {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, ELEM_INT32).message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
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
  readonly Tensor: new (type: "float32" | "int32", data: Float32Array | Int32Array, dims: readonly number[]) => OrtTensor;
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
  feeds: { query: Float32Array; key: Float32Array; value: Float32Array; pastKey: Float32Array; pastValue: Float32Array },
): Promise<OrtDecodeSession> {
  const spec = "onnxruntime-node"; // optional dependency: a variable keeps tsc and bundlers from requiring it
  const ort = (await import(spec)) as OrtModule;
  const model = op === "mha" ? decodeMhaModel(s.H, s.D, s.causal) : decodeGqaModel(s.H, s.Hkv, s.D);
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
