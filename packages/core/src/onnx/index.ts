/**
 * The one ONNX model writer the benches' onnxruntime peers use (apps/cli's onnxruntime-node and -web peers,
 * backend-cpu-simd's and backend-webgpu's bench scripts, the decode benches): a com.microsoft MultiHeadAttention
 * node (optionally with past K/V) or GroupQueryAttention node with past K/V, written with a small protobuf encoder
 * so no onnx package is needed.
 *   import { multiHeadAttentionModel } from "@sageattn/core/onnx";
 *   const bytes = multiHeadAttentionModel({ heads: 8, headDim: 64, scale: 1 / 8, causal: false, dtype: "f32" });
 */
export {
  type GqaModelOptions,
  groupQueryAttentionModel,
  type MhaModelOptions,
  multiHeadAttentionModel,
} from "./mha-model.js";
export { ProtoWriter } from "./protobuf.js";
