/**
 * What this runtime offers: SIMD128, relaxed SIMD, shared memory with workers. Probed with tiny modules through
 * `WebAssembly.validate` (no compilation, no instantiation), so the answer costs microseconds.
 */

// (func (result v128) i32.const 0 i32x4.splat)
const SIMD128_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00,
  0x01,
  0x05,
  0x01,
  0x60,
  0x00,
  0x01,
  0x7b,
  0x03,
  0x02,
  0x01,
  0x00,
  0x0a,
  0x08,
  0x01,
  0x06,
  0x00,
  0x41,
  0x00,
  0xfd,
  0x11,
  0x0b,
]);

// (func (result v128) (i32x4.relaxed_dot_i8x16_i7x16_add_s (i32x4.splat 0) (i32x4.splat 0) (i32x4.splat 0)))
const RELAXED_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00,
  0x01,
  0x05,
  0x01,
  0x60,
  0x00,
  0x01,
  0x7b,
  0x03,
  0x02,
  0x01,
  0x00,
  0x0a,
  0x13,
  0x01,
  0x11,
  0x00,
  0x41,
  0x00,
  0xfd,
  0x11,
  0x41,
  0x00,
  0xfd,
  0x11,
  0x41,
  0x00,
  0xfd,
  0x11,
  0xfd,
  0x93,
  0x02,
  0x0b,
]);

export interface Features {
  readonly webAssembly: boolean;
  readonly simd128: boolean;
  readonly relaxedSimd: boolean;
  /** SharedArrayBuffer and shared wasm memory exist (cross-origin isolation in browsers). */
  readonly sharedMemory: boolean;
}

function validates(bytes: Uint8Array<ArrayBuffer>): boolean {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

function sharedMemoryWorks(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  const g = globalThis as { crossOriginIsolated?: boolean };
  if (g.crossOriginIsolated === false) return false;
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

export function probeFeatures(): Features {
  const webAssembly = typeof WebAssembly === "object" && typeof WebAssembly.validate === "function";
  return {
    webAssembly,
    simd128: webAssembly && validates(SIMD128_PROBE),
    relaxedSimd: webAssembly && validates(RELAXED_PROBE),
    sharedMemory: webAssembly && sharedMemoryWorks(),
  };
}
