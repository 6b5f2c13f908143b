/**
 * onnxruntime-node's CPU MultiHeadAttention (com.microsoft) as a timing peer: a one-node ONNX model built here
 * byte by byte (protobuf wire format), inputs Q, K, V as [B, N, H·D] f32. For indicative numbers only; the project's
 * peer comparisons live in apps/cli.
 */

// Protobuf wire format: varint fields (type 0) and length-delimited fields (type 2) are all this model needs.
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const int = (field: number, n: number) => [...varint(field * 8), ...varint(n)];
const bytes = (field: number, b: number[]) => [...varint(field * 8 + 2), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...new TextEncoder().encode(s)]);

/** ValueInfoProto: name, float tensor of the given dims. */
function floatTensor(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, int(1, d))); // TensorShapeProto.dim { dim_value }
  const tensorType = [...int(1, 1), ...bytes(2, shape)]; // elem_type FLOAT, shape
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))]; // name, TypeProto.tensor_type
}

export function multiHeadAttentionModel(B: number, N: number, H: number, D: number): Uint8Array {
  const attr = [...str(1, "num_heads"), ...int(20, 2), ...int(3, H)]; // AttributeProto: name, type INT, i
  const node = [...str(1, "q"), ...str(1, "k"), ...str(1, "v"), ...str(2, "out"), ...str(3, "mha"), ...str(4, "MultiHeadAttention"), ...bytes(5, attr), ...str(7, "com.microsoft")];
  const graph = [
    ...bytes(1, node), ...str(2, "mha"),
    ...bytes(11, floatTensor("q", [B, N, H * D])), ...bytes(11, floatTensor("k", [B, N, H * D])), ...bytes(11, floatTensor("v", [B, N, H * D])),
    ...bytes(12, floatTensor("out", [B, N, H * D])),
  ];
  const model = [...int(1, 8), ...bytes(8, [...str(1, ""), ...int(2, 17)]), ...bytes(8, [...str(1, "com.microsoft"), ...int(2, 1)]), ...bytes(7, graph)];
  return new Uint8Array(model);
}

/** HND [B, H, N, D] → [B, N, H·D]. */
function toBNHD(x: Float32Array, B: number, H: number, N: number, D: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let n = 0; n < N; n++) out.set(x.subarray(((b * H + h) * N + n) * D, ((b * H + h) * N + n + 1) * D), ((b * N + n) * H + h) * D);
  return out;
}

/** A session on the model and a function that runs it once on the given HND inputs. */
export async function ortMultiHeadAttention(q: Float32Array, k: Float32Array, v: Float32Array, s: { B: number; H: number; N: number; D: number; threads: number }): Promise<() => Promise<unknown>> {
  const name = "onnxruntime-node";
  const ort = (await import(/* @vite-ignore */ name)) as typeof import("onnxruntime-node");
  const session = await ort.InferenceSession.create(multiHeadAttentionModel(s.B, s.N, s.H, s.D), { intraOpNumThreads: s.threads, interOpNumThreads: 1 });
  const dims = [s.B, s.N, s.H * s.D];
  const feeds = {
    q: new ort.Tensor("float32", toBNHD(q, s.B, s.H, s.N, s.D), dims),
    k: new ort.Tensor("float32", toBNHD(k, s.B, s.H, s.N, s.D), dims),
    v: new ort.Tensor("float32", toBNHD(v, s.B, s.H, s.N, s.D), dims),
  };
  return () => session.run(feeds);
}
