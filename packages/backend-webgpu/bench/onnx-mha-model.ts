// The ONNX model the onnxruntime-web peer runs: one com.microsoft MultiHeadAttention node, fp16 query/key/value
// [batch, seq, H·D] in (the contrib op's 3-D "BSH" layout), output the same shape. Written out by hand with a
// few-line protobuf encoder, so this bench needs neither the onnx package nor apps/cli's Node-side peers.
// Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, ValueInfoProto).

/** Appends protobuf fields to a byte list: varint (wire type 0), float (5) and length-delimited (2) are all ONNX needs here. */
class Proto {
  readonly out: number[] = [];

  private varint(v: number): void {
    // Every value written here is a small non-negative integer, so plain arithmetic suffices (no 64-bit negatives).
    while (v >= 0x80) {
      this.out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.out.push(v);
  }

  int(field: number, v: number): this {
    this.varint(field * 8 + 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.varint(field * 8 + 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.out.push(...b);
    return this;
  }

  bytes(field: number, b: Uint8Array | number[]): this {
    this.varint(field * 8 + 2);
    this.varint(b.length);
    for (const x of b) this.out.push(x);
    return this;
  }

  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  msg(field: number, fill: (p: Proto) => void): this {
    const inner = new Proto();
    fill(inner);
    return this.bytes(field, inner.out);
  }
}

const FLOAT16 = 10; // TensorProto.DataType
const ATTR_FLOAT = 1; // AttributeProto.AttributeType
const ATTR_INT = 2;

/** ValueInfoProto of an fp16 tensor; string dims stay symbolic so one model serves every batch and length. */
function fp16Value(p: Proto, name: string, dims: Array<number | string>): void {
  p.str(1, name).msg(2, (type) =>
    type.msg(1, (tensor) =>
      tensor.int(1, FLOAT16).msg(2, (shape) => {
        for (const d of dims) shape.msg(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.str(2, d)));
      }),
    ),
  );
}

/** Serialized ModelProto: MultiHeadAttention(query, key, value) → output, `heads` heads of `headDim`, softmax scale 1/√D. */
export function mhaF16Model(heads: number, headDim: number, causal: boolean): Uint8Array {
  const hidden = heads * headDim;
  const m = new Proto();
  m.int(1, 8); // ir_version 8 (opset 17 era)
  m.str(2, "sageattn-ortweb-peer"); // producer_name
  m.msg(8, (o) => o.str(1, "").int(2, 17)); // opset_import ai.onnx 17
  m.msg(8, (o) => o.str(1, "com.microsoft").int(2, 1)); // and the contrib domain MultiHeadAttention lives in
  m.msg(7, (g) => {
    g.msg(1, (n) => {
      n.str(1, "query").str(1, "key").str(1, "value").str(2, "output");
      n.str(3, "mha").str(4, "MultiHeadAttention").str(7, "com.microsoft");
      n.msg(5, (a) => a.str(1, "num_heads").int(20, ATTR_INT).int(3, heads));
      n.msg(5, (a) => a.str(1, "scale").int(20, ATTR_FLOAT).float(2, 1 / Math.sqrt(headDim)));
      // unidirectional=1 is MHA's causal mask (upper-left aligned; Nq = Nk here, so the same as bottom-right).
      if (causal) n.msg(5, (a) => a.str(1, "unidirectional").int(20, ATTR_INT).int(3, 1));
    });
    g.str(2, "mha");
    for (const name of ["query", "key", "value"]) g.msg(11, (v) => fp16Value(v, name, ["batch", "seq", hidden]));
    g.msg(12, (v) => fp16Value(v, "output", ["batch", "seq", hidden]));
  });
  return Uint8Array.from(m.out);
}

/**
 * Serialized ModelProto for one decode step with a KV cache: MultiHeadAttention(query, key, value, past_key,
 * past_value) → output, present_key, present_value. query/key/value are the step's rows [batch, seq, H·D]; past_key
 * and past_value the earlier rows [batch, H, past, D] (BNSH); present_* are past and new rows together, which ort
 * writes every step. `causal` sets unidirectional (query i sees past + i + 1 keys, the bottom-right alignment).
 */
export function mhaF16PastModel(heads: number, headDim: number, causal: boolean): Uint8Array {
  const hidden = heads * headDim;
  const m = new Proto();
  m.int(1, 8);
  m.str(2, "sageattn-ortweb-decode-peer");
  m.msg(8, (o) => o.str(1, "").int(2, 17));
  m.msg(8, (o) => o.str(1, "com.microsoft").int(2, 1));
  m.msg(7, (g) => {
    g.msg(1, (n) => {
      // Inputs by position: query, key, value, bias, key_padding_mask, attention_bias, past_key, past_value.
      for (const name of ["query", "key", "value", "", "", "", "past_key", "past_value"]) n.str(1, name);
      for (const name of ["output", "present_key", "present_value"]) n.str(2, name);
      n.str(3, "mha").str(4, "MultiHeadAttention").str(7, "com.microsoft");
      n.msg(5, (a) => a.str(1, "num_heads").int(20, ATTR_INT).int(3, heads));
      n.msg(5, (a) => a.str(1, "scale").int(20, ATTR_FLOAT).float(2, 1 / Math.sqrt(headDim)));
      if (causal) n.msg(5, (a) => a.str(1, "unidirectional").int(20, ATTR_INT).int(3, 1));
    });
    g.str(2, "mha-decode");
    for (const name of ["query", "key", "value"]) g.msg(11, (v) => fp16Value(v, name, ["batch", "seq", hidden]));
    for (const name of ["past_key", "past_value"]) g.msg(11, (v) => fp16Value(v, name, ["batch", heads, "past", headDim]));
    g.msg(12, (v) => fp16Value(v, "output", ["batch", "seq", hidden]));
    for (const name of ["present_key", "present_value"]) g.msg(12, (v) => fp16Value(v, name, ["batch", heads, "total", headDim]));
  });
  return Uint8Array.from(m.out);
}
