/**
 * Test support: "device" tensors of a stand-in backend that wrap host tensors, so tests can drive core's device-only
 * paths (repeated calls, attendNow/appendNow) with the js oracle doing the math. Not part of the package's build.
 */
import type { DeviceTensor, HostTensor, Tensor } from "../tensor.js";

export type StandInTensor = DeviceTensor & { readonly host: HostTensor };

/** h as a device tensor of `backend` (no copy: the host data is the device memory). */
export const standIn = (backend: string, h: HostTensor): StandInTensor => ({
  kind: "device",
  backend,
  dtype: h.dtype,
  layout: h.layout,
  shape: h.shape,
  strides: h.strides,
  handle: null,
  host: h,
  dispose: () => {},
});

/** The host tensor behind a stand-in (a host tensor is its own). */
export const hostOf = (t: Tensor): HostTensor => (t.kind === "host" ? t : (t as StandInTensor).host);
