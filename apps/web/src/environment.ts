import { backendStatus, runToPromise } from "@sageattn/core";

/** What the browser offers, probed directly (independent of what the backends conclude). */
export interface BrowserFeatures {
  /** "no navigator.gpu", "no adapter", or the adapter's vendor and architecture. */
  readonly webgpu: string;
  readonly webgpuAvailable: boolean;
  readonly shaderF16: boolean;
  readonly relaxedSimd: boolean;
  readonly crossOriginIsolated: boolean;
  readonly threads: number;
}

/** A module whose only function runs i8x16.relaxed_swizzle: it validates only where relaxed SIMD exists. */
function relaxedSimdProbe(): Uint8Array<ArrayBuffer> {
  const v128Zero = [0xfd, 0x0c, ...new Array(16).fill(0)];
  const body = [0x00, ...v128Zero, ...v128Zero, 0xfd, 0x80, 0x02, 0x0b];
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00, // magic, version
    0x01,
    0x05,
    0x01,
    0x60,
    0x00,
    0x01,
    0x7b, // types: () -> v128
    0x03,
    0x02,
    0x01,
    0x00, // one function of type 0
    0x0a,
    body.length + 2,
    0x01,
    body.length,
    ...body, // its code
  ]);
}

export async function probeBrowser(): Promise<BrowserFeatures> {
  let webgpu = "no navigator.gpu";
  let webgpuAvailable = false;
  let shaderF16 = false;
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (gpu) {
    const adapter = await gpu.requestAdapter().catch(() => null);
    if (!adapter) webgpu = "no adapter";
    else {
      webgpuAvailable = true;
      shaderF16 = adapter.features.has("shader-f16");
      const info = adapter.info;
      webgpu = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ") ||
        "adapter without a name";
    }
  }
  return {
    webgpu,
    webgpuAvailable,
    shaderF16,
    relaxedSimd: WebAssembly.validate(relaxedSimdProbe()),
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    threads: navigator.hardwareConcurrency ?? 1,
  };
}

/** One line per backend core knows: ready (on which device) or why it cannot run here. */
export async function backendLines(): Promise<{ name: string; ok: boolean; text: string }[]> {
  const rows = await runToPromise(backendStatus());
  return rows.map((r) =>
    r.backend
      ? { name: r.name, ok: true, text: r.backend.device }
      : { name: r.name, ok: false, text: `${r.rejection?.reason}: ${r.rejection?.message}` }
  );
}
