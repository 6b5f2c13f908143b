import { BackendUnavailable, runtimeName } from "@sageattn/core";
import { Effect } from "effect";
import type { Subgroups } from "./shaders.js";
import { subgroupCheck } from "./subgroups.js";
import { MAP_READ, Usage } from "./usage.js";

/** A device the backend checked and may use, with what it found out about it. */
export interface Acquired {
  readonly device: GPUDevice;
  /** One line: adapter, runtime and whether it is a fallback (CPU) adapter. */
  readonly description: string;
  readonly details: Record<string, string>;
  /** shader-f16 is enabled on the device. */
  readonly shaderF16: boolean;
  /** The subgroup variant of the reductions: the directive its kernels start with, or undefined (see subgroups.ts). */
  readonly subgroups: Subgroups;
  /** The caller passed the device in: it is theirs to destroy, and a lost one cannot be replaced. */
  readonly external: boolean;
}

const BACKEND = "webgpu";
const unavailable = (reason: BackendUnavailable["reason"], message: string, cause?: unknown) =>
  new BackendUnavailable({ backend: BACKEND, reason, message, cause });

// CPU adapters that WebGPU implementations hand out when there is no GPU: correct but slow.
const FALLBACK_NAMES = /llvmpipe|lavapipe|swiftshader|microsoft basic render|warp/i;

export type AdapterInfoLike = Partial<GPUAdapterInfo> & {
  backendType?: number;
  isFallbackAdapter?: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
};

/** GPU device nodes on Linux (0: Dawn could only find a CPU adapter, after printing Vulkan warnings); undefined elsewhere. */
export async function gpuDeviceNodes(): Promise<number | undefined> {
  if ((globalThis as { process?: { platform?: string } }).process?.platform !== "linux") return undefined;
  try {
    const name = "node:fs";
    const fs = (await import(/* @vite-ignore */ name)) as typeof import("node:fs");
    return fs.readdirSync("/dev").filter((f) => /^nvidia\d|^dxg$/.test(f)).length +
      (fs.existsSync("/dev/dri") ? fs.readdirSync("/dev/dri").filter((f) => f.startsWith("renderD")).length : 0);
  } catch {
    return undefined;
  }
}

/** Where this runtime's WebGPU comes from: navigator.gpu, or the Dawn package for Bun or Node. */
async function findGpu(): Promise<{ gpu: GPU; source: string } | BackendUnavailable> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, source: "navigator.gpu" };
  const g = globalThis as { Bun?: unknown; process?: { versions?: { node?: string } } };
  const pkg = g.Bun ? "bun-webgpu" : g.process?.versions?.node ? "webgpu" : undefined;
  if (!pkg) return unavailable("NoDevice", `${runtimeName()} has no navigator.gpu`);
  const nodes = await gpuDeviceNodes();
  if (nodes === 0) {
    return unavailable(
      "NoDevice",
      `no GPU device node (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg) in ${runtimeName()}: ${pkg} (Dawn) not probed`,
    );
  }
  try {
    const spec = pkg; // a variable, so bundlers leave the optional import alone
    const mod = (await import(/* @vite-ignore */ spec)) as {
      create?: (o: string[]) => GPU;
      createGPUInstance?: () => GPU;
    };
    const gpu = mod.createGPUInstance ? mod.createGPUInstance() : mod.create?.([]);
    if (!gpu) return unavailable("NotInstalled", `${pkg} exports no WebGPU entry point`);
    return { gpu, source: pkg };
  } catch (e) {
    return unavailable(
      "NotInstalled",
      `${runtimeName()} has no navigator.gpu and the ${pkg} package could not be loaded: ${
        (e as Error).message?.split("\n")[0]
      }`,
      e,
    );
  }
}

/** Names an adapter and says whether it is a fallback (CPU) adapter or Dawn's null backend. */
export function describeAdapter(info: AdapterInfoLike): { name: string; fallback: boolean; nullBackend: boolean } {
  // wgpu reports PCI ids as decimal strings ("4318" is NVIDIA's 0x10de): shown in hex after the description.
  const id = (x: string | undefined) => (x && /^\d+$/.test(x) ? `0x${Number(x).toString(16)}` : x);
  const ids = [id(info.vendor), info.architecture, id(info.device)].filter((x) => x && x !== "0x0").join(" ");
  const name = (info.description ? (ids ? `${info.description} (${ids})` : info.description) : ids) ||
    "unnamed adapter";
  const fallback = info.isFallbackAdapter === true || FALLBACK_NAMES.test(name);
  // Dawn's null backend: BackendType 1 in bun-webgpu's info, device "null-backend" in both Dawn packages.
  const nullBackend = info.backendType === 1 || /null[- ]backend/i.test(name);
  return { name, fallback, nullBackend };
}

// A compute pass whose answer is known: packed int8 dot products, f16 unpacking and a workgroup barrier.
// Dawn's null backend returns zeros; a broken driver returns something else.
const KNOWN_ANSWER_WGSL = `
@group(0) @binding(0) var<storage, read_write> o: array<i32>;
var<workgroup> t: array<i32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32) {
  t[i] = dot4I8Packed(pack4xI8(vec4<i32>(1, -2, 3, -4)), pack4xI8(vec4<i32>(5, 6, 7, -127))) + i32(i);
  workgroupBarrier();
  o[i] = t[63u - i] + i32(unpack2x16float(0x3c00u).x);
}`;

async function knownAnswer(device: GPUDevice): Promise<string | undefined> {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code: KNOWN_ANSWER_WGSL });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const out = device.createBuffer({ size: 256, usage: Usage.STORAGE | Usage.COPY_SRC });
  const read = device.createBuffer({ size: 256, usage: Usage.MAP_READ | Usage.COPY_DST });
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: out } }],
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, 256);
  device.queue.submit([enc.finish()]);
  const err = await device.popErrorScope();
  if (err) return `the check shader failed: ${err.message}`;
  await read.mapAsync(MAP_READ);
  const got = new Int32Array(read.getMappedRange().slice(0));
  read.unmap();
  out.destroy();
  read.destroy();
  // dot = 5 − 12 + 21 + 508 = 522; o[i] = 522 + (63 − i) + 1.
  for (let i = 0; i < 64; i++) {
    if (got[i] !== 586 - i) return `a known-answer compute check returned ${got[i]} at ${i} instead of ${586 - i}`;
  }
  return undefined;
}

export interface AcquireOptions {
  /** A device of the caller's (not destroyed by dispose). */
  readonly device?: GPUDevice;
  /** Use shader-f16 where the adapter has it (default true). */
  readonly f16?: boolean;
  /** Ask for timestamp queries (per-kernel GPU times), where the adapter has them. */
  readonly profile?: boolean;
  /**
   * Use the subgroup variant of the reductions where the device has subgroups that pass the load-time check
   * (default false: opt in until it is measured on a GPU; see README).
   */
  readonly subgroups?: boolean;
}

/** The subgroup directive to use on `device` (undefined when not asked or not possible), and the details line. */
async function subgroupsFor(
  device: GPUDevice,
  info: AdapterInfoLike,
  wanted: boolean,
): Promise<{ directive: Subgroups; detail: string }> {
  if (!wanted) return { directive: undefined, detail: "off" };
  const r = await subgroupCheck(device);
  if (r.directive === undefined) return { directive: undefined, detail: `off: ${r.why}` };
  // The adapter's range where it reports one: the attention pipeline may get another size than the check's.
  const range = info.subgroupMinSize !== undefined && info.subgroupMaxSize !== undefined
    ? `, adapter ${info.subgroupMinSize}–${info.subgroupMaxSize}`
    : "";
  const directive = r.directive ? `${r.directive} ` : "";
  return { directive: r.directive, detail: `on (${directive}${r.lanes} lanes in the check${range})` };
}

// Limits worth raising to the adapter's maximum: big tensors, and the bigger tiles (workgroup memory).
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeWorkgroupsPerDimension",
] as const;

/** Finds a WebGPU device and checks what it got: refuses Dawn's null backend, names fallback adapters. */
export function acquire(options: AcquireOptions): Effect.Effect<Acquired, BackendUnavailable> {
  return Effect.tryPromise({
    try: () => acquireAsync(options),
    catch: (
      e,
    ) => (e instanceof BackendUnavailable
      ? e
      : unavailable("NoDevice", `WebGPU device acquisition failed: ${(e as Error)?.message ?? e}`, e)),
  });
}

async function acquireAsync(options: AcquireOptions): Promise<Acquired> {
  const wantF16 = options.f16 !== false;
  if (options.device) {
    const device = options.device;
    const info = ((device as { adapterInfo?: AdapterInfoLike }).adapterInfo ?? {}) as AdapterInfoLike;
    const d = describeAdapter(info);
    if (d.nullBackend) {
      throw unavailable("Refused", `the given device is Dawn's null backend (${d.name}), which computes nothing`);
    }
    const bad = await knownAnswer(device);
    if (bad) throw unavailable("Refused", `the given device fails a known-answer check: ${bad}`);
    const shaderF16 = wantF16 && device.features.has("shader-f16");
    const sg = await subgroupsFor(device, info, options.subgroups === true);
    return {
      device,
      description: `${d.name} (caller's device${d.fallback ? ", fallback CPU adapter" : ""})`,
      details: {
        adapter: d.name,
        fallback: String(d.fallback),
        software: String(d.fallback),
        shaderF16: String(shaderF16),
        subgroups: sg.detail,
        source: "caller's GPUDevice",
      },
      shaderF16,
      subgroups: sg.directive,
      external: true,
    };
  }
  const found = await findGpu();
  if (found instanceof BackendUnavailable) throw found;
  const { gpu, source } = found;
  const wgsl = (gpu as { wgslLanguageFeatures?: ReadonlySet<string> }).wgslLanguageFeatures;
  if (wgsl && !wgsl.has("packed_4x8_integer_dot_product")) {
    throw unavailable(
      "FeatureMissing",
      `${source} lacks the WGSL language feature packed_4x8_integer_dot_product (dot4I8Packed)`,
    );
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    throw unavailable("NoDevice", `${source}: requestAdapter failed: ${(e as Error).message}`, e);
  }
  if (!adapter) {
    const why = source === "navigator.gpu"
      ? ""
      : " (Dawn accepts only Vulkan devices with the features it needs; Mesa's lavapipe is rejected)";
    throw unavailable("NoDevice", `${source} (${runtimeName()}) found no WebGPU adapter${why}`);
  }
  const info = (adapter.info ?? {}) as AdapterInfoLike;
  const d = describeAdapter(info);
  if (d.nullBackend) {
    throw unavailable(
      "Refused",
      `${source} handed out Dawn's null backend (${d.name}), which returns garbage: no usable GPU adapter in ${runtimeName()}`,
    );
  }
  const shaderF16 = wantF16 && adapter.features.has("shader-f16");
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = (adapter.limits as unknown as Record<string, number>)[name];
  let device: GPUDevice;
  try {
    const requiredFeatures: GPUFeatureName[] = [];
    if (shaderF16) requiredFeatures.push("shader-f16");
    if (options.profile && adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
    if (options.subgroups && adapter.features.has("subgroups")) requiredFeatures.push("subgroups" as GPUFeatureName);
    device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  } catch (e) {
    throw unavailable("NoDevice", `${source}: requestDevice failed on ${d.name}: ${(e as Error).message}`, e);
  }
  const bad = await knownAnswer(device).catch((e: unknown) => `the check failed to run: ${(e as Error).message}`);
  if (bad) {
    device.destroy();
    throw unavailable(
      "Refused",
      `${source} adapter ${d.name} fails a known-answer compute check (${bad}); refusing to compute on it`,
    );
  }
  const sg = await subgroupsFor(device, info, options.subgroups === true);
  return {
    device,
    description: `${d.name} via ${source} in ${runtimeName()}${d.fallback ? " (fallback CPU adapter)" : ""}`,
    details: {
      adapter: d.name,
      source,
      fallback: String(d.fallback),
      software: String(d.fallback), // core ranks a software device below cpu-simd
      shaderF16: String(shaderF16),
      adapterHasF16: String(adapter.features.has("shader-f16")),
      maxStorageBufferBindingSize: String(device.limits.maxStorageBufferBindingSize),
      maxComputeWorkgroupStorageSize: String(device.limits.maxComputeWorkgroupStorageSize),
      subgroups: sg.detail,
    },
    shaderF16,
    subgroups: sg.directive,
    external: false,
  };
}
