/**
 * A one-node ONNX model: com.microsoft MultiHeadAttention over query [B, Nq, H·D], key and value [B, Nk, H·D]
 * (the contrib op's 3-D "BSH" inputs), output [B, Nq, H·D]. Field numbers are those of onnx/onnx.proto.
 */
import { ProtoWriter } from "./protobuf.js";

const ELEM_FLOAT = 1;
const ELEM_FLOAT16 = 10;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;

export interface MhaModelOptions {
  readonly heads: number;
  readonly headDim: number;
  readonly scale: number;
  readonly causal: boolean;
  readonly dtype: "f32" | "f16";
}

/** ValueInfoProto: name and a float tensor type with dims (a string is a symbolic dim). */
function valueInfo(w: ProtoWriter, name: string, elemType: number, dims: ReadonlyArray<number | string>): void {
  w.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, elemType).message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
      }),
    ),
  );
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
      node.string(1, "query").string(1, "key").string(1, "value").string(2, "output");
      node.string(3, "mha").string(4, "MultiHeadAttention").string(7, "com.microsoft");
      node.message(5, (a) => a.string(1, "num_heads").int(20, ATTR_INT).int(3, o.heads));
      node.message(5, (a) => a.string(1, "scale").int(20, ATTR_FLOAT).float(2, o.scale));
      if (o.causal) node.message(5, (a) => a.string(1, "unidirectional").int(20, ATTR_INT).int(3, 1));
    });
    graph.string(2, "attention");
    for (const name of ["query", "key", "value"]) graph.message(11, (v) => valueInfo(v, name, elem, ["batch", name === "query" ? "nq" : "nk", hidden]));
    graph.message(12, (v) => valueInfo(v, "output", elem, ["batch", "nq", hidden]));
  });
  return model.finish();
}
