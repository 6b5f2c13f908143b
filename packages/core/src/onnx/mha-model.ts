/**
 * One-node ONNX models: com.microsoft MultiHeadAttention over query [B, Nq, H·D], key and value [B, Nk, H·D]
 * (the contrib op's 3-D "BSH" inputs), output [B, Nq, H·D], optionally with past K/V for a decode step; and
 * com.microsoft GroupQueryAttention with past K/V (the decode peer for GQA shapes). Field numbers are those of
 * onnx/onnx.proto.
 */
import { ProtoWriter } from "./protobuf.js";

const ELEM_FLOAT = 1;
const ELEM_INT32 = 6;
const ELEM_FLOAT16 = 10;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;

export interface MhaModelOptions {
  readonly heads: number;
  readonly headDim: number;
  readonly scale: number;
  readonly causal: boolean;
  readonly dtype: "f32" | "f16";
  /**
   * A decode step with a KV cache: past_key and past_value [B, H, past, D] (BNSH) are inputs 6 and 7, and
   * present_key / present_value (past and new rows together, [B, H, total, D]) outputs beside the output. With
   * `causal`, query i sees past + i + 1 keys (bottom-right).
   */
  readonly past?: boolean;
}

/** ValueInfoProto: name and a float tensor type with dims (a string is a symbolic dim). */
function valueInfo(w: ProtoWriter, name: string, elemType: number, dims: ReadonlyArray<number | string>): void {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, elemType).message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
      })));
}

/** The serialized ModelProto, ready for `InferenceSession.create(bytes)`. */
export function multiHeadAttentionModel(o: MhaModelOptions): Uint8Array {
  const elem = o.dtype === "f16" ? ELEM_FLOAT16 : ELEM_FLOAT;
  const hidden = o.heads * o.headDim;
  const model = new ProtoWriter();
  model.int(1, 8); // ir_version
  model.string(2, "sageattn-bench");
  model.message(8, (op) => op.string(1, "").int(2, 17)); // opset_import: ai.onnx 17
  model.message(8, (op) => op.string(1, "com.microsoft").int(2, 1));
  model.message(7, (graph) => {
    graph.message(1, (node) => {
      // Inputs 3–5 (bias, key_padding_mask, attention_bias) are absent with past K/V: empty names keep the positions.
      const inputs = o.past
        ? ["query", "key", "value", "", "", "", "past_key", "past_value"]
        : ["query", "key", "value"];
      for (const input of inputs) node.string(1, input);
      for (const output of o.past ? ["output", "present_key", "present_value"] : ["output"]) node.string(2, output);
      node.string(3, "mha").string(4, "MultiHeadAttention").string(7, "com.microsoft");
      node.message(5, (a) => a.string(1, "num_heads").int(20, ATTR_INT).int(3, o.heads));
      node.message(5, (a) => a.string(1, "scale").int(20, ATTR_FLOAT).float(2, o.scale));
      if (o.causal) node.message(5, (a) => a.string(1, "unidirectional").int(20, ATTR_INT).int(3, 1));
    });
    graph.string(2, o.past ? "decode" : "attention");
    for (const name of ["query", "key", "value"]) {
      graph.message(11, (v) => valueInfo(v, name, elem, ["batch", name === "query" || o.past ? "nq" : "nk", hidden]));
    }
    if (o.past) {
      for (const name of ["past_key", "past_value"]) {
        graph.message(11, (v) => valueInfo(v, name, elem, ["batch", o.heads, "past", o.headDim]));
      }
    }
    graph.message(12, (v) => valueInfo(v, "output", elem, ["batch", "nq", hidden]));
    if (o.past) {
      for (const name of ["present_key", "present_value"]) {
        graph.message(12, (v) => valueInfo(v, name, elem, ["batch", o.heads, "total", o.headDim]));
      }
    }
  });
  return model.finish();
}

export interface GqaModelOptions {
  readonly heads: number;
  readonly headsKv: number;
  readonly headDim: number;
  readonly scale: number;
  readonly dtype: "f32" | "f16";
}

/**
 * GroupQueryAttention(query, key, value, past_key, past_value, seqlens_k, total_sequence_length) → output,
 * present_key, present_value; past K/V [B, Hkv, past, D]. Always causal, bottom-right: what a decode step needs.
 */
export function groupQueryAttentionModel(o: GqaModelOptions): Uint8Array {
  const elem = o.dtype === "f16" ? ELEM_FLOAT16 : ELEM_FLOAT;
  const model = new ProtoWriter();
  model.int(1, 8);
  model.string(2, "sageattn-bench");
  model.message(8, (op) => op.string(1, "").int(2, 17));
  model.message(8, (op) => op.string(1, "com.microsoft").int(2, 1));
  model.message(7, (graph) => {
    graph.message(1, (node) => {
      for (const input of ["query", "key", "value", "past_key", "past_value", "seqlens_k", "total_sequence_length"]) {
        node.string(1, input);
      }
      for (const output of ["output", "present_key", "present_value"]) node.string(2, output);
      node.string(3, "gqa").string(4, "GroupQueryAttention").string(7, "com.microsoft");
      node.message(5, (a) => a.string(1, "num_heads").int(20, ATTR_INT).int(3, o.heads));
      node.message(5, (a) => a.string(1, "kv_num_heads").int(20, ATTR_INT).int(3, o.headsKv));
      node.message(5, (a) => a.string(1, "scale").int(20, ATTR_FLOAT).float(2, o.scale));
    });
    graph.string(2, "decode");
    graph.message(11, (v) => valueInfo(v, "query", elem, ["batch", "nq", o.heads * o.headDim]));
    for (const name of ["key", "value"]) {
      graph.message(11, (v) => valueInfo(v, name, elem, ["batch", "nq", o.headsKv * o.headDim]));
    }
    for (const name of ["past_key", "past_value"]) {
      graph.message(11, (v) => valueInfo(v, name, elem, ["batch", o.headsKv, "past", o.headDim]));
    }
    graph.message(11, (v) => valueInfo(v, "seqlens_k", ELEM_INT32, ["batch"]));
    graph.message(11, (v) => valueInfo(v, "total_sequence_length", ELEM_INT32, []));
    graph.message(12, (v) => valueInfo(v, "output", elem, ["batch", "nq", o.heads * o.headDim]));
    for (const name of ["present_key", "present_value"]) {
      graph.message(12, (v) => valueInfo(v, name, elem, ["batch", o.headsKv, "total", o.headDim]));
    }
  });
  return model.finish();
}
