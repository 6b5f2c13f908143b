import type { BenchInputs } from "../inputs.js";

/** One case set up in a peer library: inputs already converted to its tensors, so runs time the attention only. */
export interface PeerSession {
  /** One attention call, finished when it resolves. */
  run(): Promise<void>;
  /** The last run's output as f32, in the layout it comes in. */
  output(): { data: Float32Array; layout: "HND" | "NHD" };
  release(): Promise<void>;
}

/** A library we compare against, on the same inputs. `open` rejects with the library's own error when it fails. */
export interface Peer {
  /** Name shown in the table, with the threads it really used. */
  readonly name: string;
  open(inputs: BenchInputs): Promise<PeerSession>;
  dispose(): Promise<void>;
}

/** How to load a peer; `load` rejects when the library is not installed or cannot start here. */
export interface PeerLoader {
  readonly name: string;
  load(threads: number): Promise<Peer>;
}

/** [B, H, N, D] → [B, N, H·D] (the "BSH" layout onnxruntime's MultiHeadAttention takes). */
export function toBSH(values: Float32Array, B: number, H: number, N: number, D: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        const src = ((b * H + h) * N + n) * D;
        const dst = ((b * N + n) * H + h) * D;
        for (let d = 0; d < D; d++) out[dst + d] = values[src + d];
      }
    }
  }
  return out;
}
