/**
 * onnxruntime peers: the same one-node MultiHeadAttention model in onnxruntime-node (native CPU kernels) and
 * onnxruntime-web (its WebAssembly build). Both speak onnxruntime-common's API, so one session wrapper serves both.
 */
import { type BenchInputs, f32Values } from "../inputs.js";
import { multiHeadAttentionModel } from "@sageattn/core/onnx";
import { type Peer, type PeerLoader, type PeerSession, toBSH } from "./peer.js";

/** The part of onnxruntime-common's API used here (declared locally: the peers are optional dependencies). */
type SessionOptions = Record<string, unknown>;
interface OrtTensor {
  readonly data: unknown;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  readonly InferenceSession: { create(model: Uint8Array, options?: SessionOptions): Promise<OrtSession> };
  readonly Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensor;
  readonly env: { wasm: { numThreads?: number } };
}

function ortPeer(ort: OrtModule, name: string, sessionOptions: SessionOptions): Peer {
  return {
    name,
    async open(inputs: BenchInputs): Promise<PeerSession> {
      const c = inputs.case;
      if (c.dtype !== "f32") throw new Error(`${name} runs f32 on the CPU; this case is ${c.dtype}`);
      const model = multiHeadAttentionModel({
        heads: c.H,
        headDim: c.D,
        scale: 1 / Math.sqrt(c.D),
        causal: c.causal,
        dtype: "f32",
      });
      const session = await ort.InferenceSession.create(model, sessionOptions);
      const dims = [c.B, c.N, c.H * c.D];
      const feeds = {
        query: new ort.Tensor("float32", toBSH(f32Values(inputs.q), c.B, c.H, c.N, c.D), dims),
        key: new ort.Tensor("float32", toBSH(f32Values(inputs.k), c.B, c.H, c.N, c.D), dims),
        value: new ort.Tensor("float32", toBSH(f32Values(inputs.v), c.B, c.H, c.N, c.D), dims),
      };
      let last: Float32Array | undefined;
      return {
        async run() {
          const out = await session.run(feeds);
          last = out.output.data as Float32Array;
        },
        output: () => ({ data: last!, layout: "NHD" }),
        release: () => session.release(),
      };
    },
    dispose: async () => {},
  };
}

/** onnxruntime-node: the native CPU MultiHeadAttention, `threads` intra-op threads. */
export const onnxruntimeNode: PeerLoader = {
  name: "onnxruntime-node MHA",
  async load(threads) {
    const spec = "onnxruntime-node"; // optional dependency: a variable keeps bundlers and tsc from requiring it
    const ort = (await import(spec)) as OrtModule;
    return ortPeer(ort, `onnxruntime-node MHA (${threads}T)`, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      executionProviders: ["cpu"],
    });
  },
};

/** onnxruntime-web: MultiHeadAttention in its wasm build (SIMD, threads through workers where the runtime has them). */
export const onnxruntimeWeb: PeerLoader = {
  name: "onnxruntime-web wasm MHA",
  async load(threads) {
    const spec = "onnxruntime-web";
    const ort = (await import(spec)) as OrtModule;
    ort.env.wasm.numThreads = threads;
    return ortPeer(ort, `onnxruntime-web wasm MHA (${threads}T)`, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  },
};
