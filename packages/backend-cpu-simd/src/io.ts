import {
  contiguousStrides,
  type Dims,
  dims,
  type DType,
  f16BitsToF32,
  type HostTensor,
  hostTensor,
  type Layout,
  logicalStrides,
  shapeFor,
} from "@sageattn/core";

let f16Table: Float32Array | undefined;

/** f16 bit pattern → f32 value, by table (256 KiB, built on first use). */
function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
  }
  return f16Table;
}

function isContiguous(t: HostTensor): boolean {
  const c = contiguousStrides(t.shape);
  return t.strides.every((s, i) => s === c[i] || t.shape[i] === 1);
}

/**
 * Writes a host tensor into `dst` (f32 view of wasm memory) at element offset `at` as canonical HND f32 rows of
 * `Dp` elements (channels past D zero).
 */
export function writeCanonical(t: HostTensor, dst: Float32Array, at: number, Dp: number): void {
  const { B, H, N, D } = dims(t);
  if (t.dtype === "f32" && t.layout === "HND" && D === Dp && isContiguous(t)) {
    dst.set((t.data as Float32Array).subarray(0, B * H * N * D), at);
    return;
  }
  const [sb, sh, sn, sd] = logicalStrides(t);
  const dst32 = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  const src = t.data;
  const lut = t.dtype === "f16" ? f16Lut() : undefined;
  let o = at;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        const base = b * sb + h * sh + n * sn;
        if (t.dtype === "f32") { for (let d = 0; d < D; d++) dst[o + d] = src[base + d * sd]; }
        else if (lut) { for (let d = 0; d < D; d++) dst[o + d] = lut[src[base + d * sd]]; }
        else for (let d = 0; d < D; d++) dst32[o + d] = src[base + d * sd] << 16;
        for (let d = D; d < Dp; d++) dst[o + d] = 0;
        o += Dp;
      }
    }
  }
}

/**
 * A new output array (f32, or 16-bit patterns for f16/bf16) of n elements with every page already written once.
 * Fresh memory costs a page fault per 4 KiB on first touch (2–15 ms for 4 MiB on the dev VM, depending on the
 * host); done while workers compute, that cost overlaps theirs.
 */
export function touchedOutput(n: number, dtype: DType): Float32Array<ArrayBuffer> | Uint16Array<ArrayBuffer> {
  const a = dtype === "f32" ? new Float32Array(n) : new Uint16Array(n);
  const step = 4096 / a.BYTES_PER_ELEMENT;
  for (let i = 0; i < n; i += step) a[i] = 0;
  return a;
}

/**
 * f32 values to f16 bit patterns, round to nearest even (bit-exact with core's f32ToF16Bits), in one pass of integer
 * operations: 20× faster than a call per element, which matters for f16 outputs (1M elements: ~3 ms, not ~50).
 */
export function encodeF16(values: Float32Array): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(values.length);
  encodeF16Into(values, 0, values.length, out, 0);
  return out;
}

/** encodeF16 of src[from, from + n) into dst[to, to + n). */
function encodeF16Into(src: Float32Array, from: number, n: number, dst: Uint16Array, to: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < n; i++) {
    const u = bits[from + i];
    const sign = (u >>> 16) & 0x8000;
    const abs = u & 0x7fffffff;
    let h: number;
    if (abs >= 0x477ff000) h = abs > 0x7f800000 ? 0x7e00 : 0x7c00; // ≥ 65520 → inf; NaN stays NaN
    else if (abs >= 0x38800000) h = ((abs + 0xfff + ((abs >>> 13) & 1)) >>> 13) - 0x1c000; // normal: re-bias, round
    else {
      // f16 subnormal (or zero): |x|·2^24 rounded to nearest even; exact in f64.
      const y = Math.abs(src[from + i]) * 16777216;
      let r = Math.floor(y);
      const rest = y - r;
      if (rest > 0.5 || (rest === 0.5 && r & 1)) r++;
      h = r;
    }
    dst[to + i] = sign | h;
  }
}

/** f32 values to bf16 bit patterns, round to nearest even (bit-exact with core's f32ToBf16Bits). */
export function encodeBf16(values: Float32Array): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(values.length);
  encodeBf16Into(values, 0, values.length, out, 0);
  return out;
}

/** encodeBf16 of src[from, from + n) into dst[to, to + n). */
function encodeBf16Into(src: Float32Array, from: number, n: number, dst: Uint16Array, to: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < n; i++) {
    const u = bits[from + i];
    dst[to + i] = (u & 0x7f800000) === 0x7f800000 && u & 0x7fffff
      ? ((u >>> 16) | 0x40) & 0xffff
      : ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  }
}

/**
 * Stage output store: reads the canonical rows (Dp f32 each, from element `at`) straight into a host tensor of `dtype` and `layout`:
 * one pass from wasm memory, no f32 intermediate (for NHD or 16-bit outputs) to allocate, fault in and copy again.
 * `out` (from touchedOutput, B·H·N·D elements) is used when the caller prepared it.
 */
export function readCanonical(
  src: Float32Array,
  at: number,
  d: Dims,
  Dp: number,
  dtype: DType,
  layout: Layout,
  out = touchedOutput(d.B * d.H * d.N * d.D, dtype),
): HostTensor {
  const { B, H, N, D } = d;
  const shape = shapeFor(layout, d);
  if (dtype === "f32" && layout === "HND" && Dp === D) {
    // `set` from a subarray, not `slice`: V8 copies a view of shared memory element by element in `slice`.
    (out as Float32Array).set(src.subarray(at, at + B * H * N * D));
    return hostTensor(out, shape, { dtype, layout });
  }
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let n = 0; n < N; n++) {
        const from = at + ((b * H + h) * N + n) * Dp;
        const to = (layout === "HND" ? (b * H + h) * N + n : (b * N + n) * H + h) * D;
        if (dtype === "f32") (out as Float32Array).set(src.subarray(from, from + D), to);
        else if (dtype === "f16") encodeF16Into(src, from, D, out as Uint16Array, to);
        else encodeBf16Into(src, from, D, out as Uint16Array, to);
      }
    }
  }
  return hostTensor(out, shape, { dtype, layout });
}
