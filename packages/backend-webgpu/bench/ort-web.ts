// Loading onnxruntime-web from a folder and opening WebGPU MultiHeadAttention sessions, for the benches that run it
// as the peer (ort-webgpu-mha.ts, decode.ts, table.ts). The folder holds ort's dist files: ort.<build>.min.mjs and
// the ort-wasm-simd-threaded.* .mjs glue and .wasm it loads (bench/ort-webgpu-kit.sh, or node_modules/onnxruntime-web
// /dist). `build` "webgpu" is ort's native WebGPU EP (asyncify wasm), "all" its JS-side EP (JSEP wasm); both are
// asked for as executionProviders ["webgpu"].

/** What the benches use of onnxruntime-web's API (declared here: the module is loaded from a folder at run time). */
export interface OrtTensor {
  readonly dims: readonly number[];
  getData(): Promise<ArrayLike<number>>;
  dispose(): void;
}
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface Ort {
  readonly env: {
    versions: Record<string, string>;
    logLevel?: string;
    wasm: { wasmPaths?: string; numThreads?: number; proxy?: boolean };
    webgpu: { device: Promise<GPUDevice>; adapter?: GPUAdapter };
  };
  readonly InferenceSession: { create(model: Uint8Array, o: Record<string, unknown>): Promise<OrtSession> };
  readonly Tensor: { fromGpuBuffer(b: GPUBuffer, o: { dataType: "float16"; dims: readonly number[] }): OrtTensor };
}

/** onnxruntime-web loaded from `dir` (relative to the working directory), with its version string. */
export async function loadOrt(dir: string, build: string, verbose = false): Promise<{ ort: Ort; version: string }> {
  const cwd = (globalThis as { Deno?: { cwd(): string } }).Deno?.cwd() ?? ".";
  const url = new URL(dir.replace(/\/?$/, "/"), `file://${cwd}/`);
  const ort = (await import(new URL(`ort.${build}.min.mjs`, url).href)) as Ort;
  ort.env.wasm.wasmPaths = url.href; // the .mjs glue and .wasm are fetched from here, not from a CDN
  ort.env.wasm.numThreads = 1; // the work is on the GPU; worker threads would only add start-up
  // "warning" keeps ort's "nodes not assigned to the preferred EP" notice visible; verbose shows every node's EP.
  ort.env.logLevel = verbose ? "verbose" : "warning";
  return { ort, version: ort.env.versions?.web ?? ort.env.versions?.common ?? "?" };
}

/**
 * A WebGPU session of `model` whose outputs stay GPUBuffers (no read-back in a run), and ort's GPUDevice: ort makes
 * its own with the first session (before that env.webgpu.device resolves to undefined), and input buffers must be
 * made on it.
 */
export async function openWebGpuSession(
  ort: Ort,
  model: Uint8Array,
  verbose = false,
): Promise<{ session: OrtSession; device: GPUDevice }> {
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["webgpu"],
    preferredOutputLocation: "gpu-buffer",
    graphOptimizationLevel: "all",
    logSeverityLevel: verbose ? 0 : 2,
  });
  const device = await ort.env.webgpu.device;
  if (!device) throw new Error("ort.env.webgpu.device is undefined after session creation");
  return { session, device };
}

/** An f16 ort tensor on `device` holding `bits` (the buffer is pushed to `owned`, for the caller to destroy). */
export function gpuTensor(
  ort: Ort,
  device: GPUDevice,
  bits: Uint16Array<ArrayBuffer>,
  dims: readonly number[],
  owned: GPUBuffer[],
): OrtTensor {
  const buffer = device.createBuffer({
    size: bits.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, bits);
  owned.push(buffer);
  return ort.Tensor.fromGpuBuffer(buffer, { dataType: "float16", dims });
}

/** f16 bits of [heads, n, D] rows (HND, one batch) laid out as MHA's BSH [n, heads·D]. */
export function hndToBsh(bits: Uint16Array, heads: number, n: number, d: number): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(bits.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < n; i++) out.set(bits.subarray((h * n + i) * d, (h * n + i + 1) * d), (i * heads + h) * d);
  }
  return out;
}

/** MHA's BSH [n, heads·D] f16 bits back to [heads, n, D] (HND, one batch). */
export function bshToHnd(bits: Uint16Array, heads: number, n: number, d: number): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < n; i++) {
    for (let h = 0; h < heads; h++) {
      out.set(bits.subarray((i * heads + h) * d, (i * heads + h + 1) * d), (h * n + i) * d);
    }
  }
  return out;
}
