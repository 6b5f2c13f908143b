import { MAX_PAGES, PLAIN_SHARED, PLAIN_UNSHARED, RELAXED_SHARED, RELAXED_UNSHARED } from "./generated/wasm.js";
import type { Features } from "./features.js";
import type { KernelExports } from "./records.js";

/** Which module runs: plain SIMD128 or relaxed SIMD. */
export type Build = "simd128" | "relaxed-simd";

/** Bytes below this address are the engine's own (the batch counter); call data starts here. */
export const ARENA_BASE = 65536;
/** Byte address of the atomic task counter. */
export const COUNTER_AT = 1024;
const PAGE = 65536;

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The module bytes for a build and memory kind. */
export function moduleBytes(build: Build, shared: boolean): Uint8Array<ArrayBuffer> {
  if (build === "relaxed-simd") return decodeBase64(shared ? RELAXED_SHARED : RELAXED_UNSHARED);
  return decodeBase64(shared ? PLAIN_SHARED : PLAIN_UNSHARED);
}

/**
 * A module compiled ahead of time, e.g. `import m from "@sageattn/backend-cpu-simd/wasm/simd128-unshared.wasm"` where
 * the runtime imports `.wasm` files as modules (workerd) and refuses to compile bytes at run time.
 */
export interface PrecompiledModule {
  readonly build: Build;
  /** The module imports a shared memory (the `-shared` files); workers need one. */
  readonly shared: boolean;
  readonly module: WebAssembly.Module;
}

/** The best precompiled module for this runtime: matching memory kind, relaxed SIMD where the runtime has it. */
export function choosePrecompiled(
  modules: readonly PrecompiledModule[],
  f: Features,
  shared: boolean,
): PrecompiledModule | undefined {
  const usable = modules.filter((m) => m.shared === shared && (m.build === "simd128" ? f.simd128 : f.relaxedSimd));
  return usable.find((m) => m.build === "relaxed-simd") ?? usable[0];
}

/** The best build this runtime validates, or undefined without SIMD128. */
export function chooseBuild(f: Features, shared: boolean): Build | undefined {
  if (f.relaxedSimd && WebAssembly.validate(moduleBytes("relaxed-simd", shared))) return "relaxed-simd";
  if (f.simd128 && WebAssembly.validate(moduleBytes("simd128", shared))) return "simd128";
  return undefined;
}

function newMemory(shared: boolean): WebAssembly.Memory {
  // Shared memories reserve their maximum up front; fall back to less address space where that is refused.
  let lastError: unknown;
  for (const maximum of [MAX_PAGES, 16384, 4096]) {
    try {
      return new WebAssembly.Memory({ initial: 2, maximum, shared });
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

/** One instantiated module on its memory, with the views the host side writes through. */
export class Engine {
  private constructor(
    readonly build: Build,
    readonly shared: boolean,
    readonly bytes: Uint8Array<ArrayBuffer>,
    readonly memory: WebAssembly.Memory,
    readonly module: WebAssembly.Module,
    readonly kernels: KernelExports,
  ) {}

  /** Instantiates a build; `compiled` skips runtime compilation (which CSP-restricted runtimes refuse). */
  static async create(build: Build, shared: boolean, compiled?: WebAssembly.Module): Promise<Engine> {
    const bytes = moduleBytes(build, shared);
    const memory = newMemory(shared);
    const module = compiled ?? (await WebAssembly.compile(bytes));
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    return new Engine(build, shared, bytes, memory, module, instance.exports as unknown as KernelExports);
  }

  /** Regions that outlive a call (KV caches), sorted by address; a call's data starts above the last. */
  private readonly regions: { at: number; bytes: number }[] = [];

  /** Where a call lays out its data: above every live region. */
  get arenaBase(): number {
    const last = this.regions[this.regions.length - 1];
    return last ? Math.ceil((last.at + last.bytes) / 64) * 64 : ARENA_BASE;
  }

  /** Bytes held by live regions. */
  get reservedBytes(): number {
    return this.regions.reduce((a, r) => a + r.bytes, 0);
  }

  /**
   * Reserves `bytes` that calls will not touch until `release`: the first gap between live regions that fits, else
   * above the last. Grows memory to hold them; throws RangeError when the runtime refuses or 4 GiB would be passed.
   */
  reserve(bytes: number): number {
    let at = ARENA_BASE;
    let index = 0;
    for (; index < this.regions.length; index++) {
      const r = this.regions[index];
      if (r.at - at >= bytes) break;
      at = Math.ceil((r.at + r.bytes) / 64) * 64;
    }
    if (at + bytes > 2 ** 32) throw new RangeError(`${bytes} bytes at ${at} pass the 4 GiB of a wasm32 memory`);
    this.ensure(at + bytes);
    this.regions.splice(index, 0, { at, bytes });
    return at;
  }

  /** Gives a region back (its bytes are reused by calls and later regions; wasm memory never shrinks). */
  release(at: number): void {
    const i = this.regions.findIndex((r) => r.at === at);
    if (i >= 0) this.regions.splice(i, 1);
  }

  /** Grows memory so that bytes [0, end) exist; throws RangeError when the runtime refuses. */
  ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    this.memory.grow(Math.ceil((end - have) / PAGE));
  }

  get f32(): Float32Array {
    return new Float32Array(this.memory.buffer);
  }

  get i32(): Int32Array {
    return new Int32Array(this.memory.buffer);
  }

  get u8(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }
}
