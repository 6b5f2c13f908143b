/** tfjs-backend-wasm peer: attention as tfjs ops, matMul(Q, Kᵀ)·scale → softmax → matMul(·, V), batched over B·H. */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { type BenchInputs, f32Values } from "../inputs.js";
import type { Peer, PeerLoader, PeerSession } from "./peer.js";

/** tfjs materializes the B·H·N² f32 score tensor (and its softmax): larger than this is refused up front. */
const MAX_SCORE_BYTES = 2 ** 30;

/** The part of tfjs-core's API used here. */
interface TfTensor {
  dispose(): void;
  data(): Promise<Float32Array | Int32Array | Uint8Array>;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  tensor3d(values: Float32Array, shape: [number, number, number]): TfTensor;
  tensor2d(values: Float32Array, shape: [number, number]): TfTensor;
  matMul(a: TfTensor, b: TfTensor, transposeA?: boolean, transposeB?: boolean): TfTensor;
  mul(a: TfTensor, b: number): TfTensor;
  add(a: TfTensor, b: TfTensor): TfTensor;
  softmax(a: TfTensor): TfTensor;
  tidy<T>(f: () => T): T;
}
interface TfWasm {
  setWasmPaths(prefix: string): void;
  setThreadsCount?(n: number): void;
  getThreadsCount?(): number;
}

export const tfjsWasm: PeerLoader = {
  name: "tfjs-wasm",
  async load(threads) {
    const core = "@tensorflow/tfjs-core";
    const backend = "@tensorflow/tfjs-backend-wasm";
    const tf = (await import(core)) as Tf;
    const wasm = (await import(backend)) as TfWasm;
    // In Node the .wasm files are read from the package folder (no fetching).
    const require = createRequire(import.meta.url);
    wasm.setWasmPaths(join(dirname(require.resolve(`${backend}/package.json`)), "dist") + "/");
    wasm.setThreadsCount?.(threads);
    if (!(await tf.setBackend("wasm"))) throw new Error("tfjs could not start its wasm backend");
    await tf.ready();
    const used = wasm.getThreadsCount?.() ?? 1;
    const peer: Peer = {
      name: `tfjs-wasm matMul/softmax (${used}T)`,
      async open(inputs: BenchInputs): Promise<PeerSession> {
        const c = inputs.case;
        if (c.dtype !== "f32") throw new Error(`tfjs-wasm runs f32; this case is ${c.dtype}`);
        const scoreBytes = c.B * c.H * c.N * c.N * 4;
        if (scoreBytes > MAX_SCORE_BYTES) {
          throw new Error(
            `not run: matMul/softmax would hold ${
              (scoreBytes / 2 ** 30).toFixed(1)
            } GiB of scores (B·H·N²·4 bytes), over the ${MAX_SCORE_BYTES / 2 ** 30} GiB limit`,
          );
        }
        const shape: [number, number, number] = [c.B * c.H, c.N, c.D];
        const q = tf.tensor3d(f32Values(inputs.q), shape);
        const k = tf.tensor3d(f32Values(inputs.k), shape);
        const v = tf.tensor3d(f32Values(inputs.v), shape);
        let mask: TfTensor | undefined;
        if (c.causal) {
          const m = new Float32Array(c.N * c.N);
          for (let i = 0; i < c.N; i++) for (let j = i + 1; j < c.N; j++) m[i * c.N + j] = -1e30;
          mask = tf.tensor2d(m, [c.N, c.N]);
        }
        const scale = 1 / Math.sqrt(c.D);
        let last: Float32Array | undefined;
        return {
          async run() {
            const o = tf.tidy(() => {
              const s = tf.mul(tf.matMul(q, k, false, true), scale);
              return tf.matMul(tf.softmax(mask ? tf.add(s, mask) : s), v);
            });
            last = (await o.data()) as Float32Array;
            o.dispose();
          },
          output: () => ({ data: last!, layout: "HND" }),
          release: async () => {
            for (const t of [q, k, v, mask]) t?.dispose();
          },
        };
      },
      dispose: async () => {},
    };
    return peer;
  },
};
