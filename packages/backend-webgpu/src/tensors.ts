import {
  contiguousStrides,
  DeviceError,
  type DeviceTensor,
  type DType,
  type HostTensor,
  hostTensor,
  type Layout,
  requiredLength,
  type Shape4,
} from "@sageattn/core";
import { Effect } from "effect";
import { Usage } from "./usage.js";

export const BACKEND = "webgpu";

/** What a webgpu DeviceTensor's `handle` holds. */
export interface BufferHandle {
  readonly buffer: GPUBuffer;
  /** Where the tensor's element 0 sits in the buffer, in elements. */
  readonly offset: number;
  readonly device: GPUDevice;
}

export const bytesPer = (dtype: DType) => (dtype === "f32" ? 4 : 2);

// Safety net: an owned buffer whose tensor is collected without dispose() is destroyed then.
const unreleased = new FinalizationRegistry<GPUBuffer>((buffer) => buffer.destroy());

/** Wraps a GPUBuffer as a DeviceTensor; `owned` ones are destroyed by dispose() (or when collected). */
export function deviceTensor(
  device: GPUDevice,
  buffer: GPUBuffer,
  meta: { dtype: DType; layout: Layout; shape: Shape4; strides?: Shape4; offset?: number },
  owned: boolean,
): DeviceTensor {
  let disposed = false;
  const handle: BufferHandle = { buffer, offset: meta.offset ?? 0, device };
  const tensor: DeviceTensor = {
    kind: "device",
    backend: BACKEND,
    dtype: meta.dtype,
    layout: meta.layout,
    shape: [...meta.shape] as unknown as Shape4,
    strides: meta.strides ?? contiguousStrides(meta.shape),
    handle,
    dispose() {
      if (disposed) return;
      disposed = true;
      if (owned) {
        unreleased.unregister(tensor);
        buffer.destroy();
      }
    },
  };
  if (owned) unreleased.register(tensor, buffer, tensor);
  return tensor;
}

export interface AdoptOptions {
  readonly dtype: DType;
  readonly shape: Shape4;
  readonly layout?: Layout;
  readonly strides?: Shape4;
  /** Offset of element 0 in the buffer, in elements (default 0). */
  readonly offset?: number;
}

/**
 * Views a caller's GPUBuffer (usage STORAGE, on the backend's device) as a DeviceTensor without copying; the buffer
 * stays the caller's (dispose() leaves it alone).
 * @example const q = backend.adopt(myBuffer, { dtype: "f16", shape: [1, 32, 4096, 128] })
 */
export function adopt(device: GPUDevice, buffer: GPUBuffer, o: AdoptOptions): Effect.Effect<DeviceTensor, DeviceError> {
  return Effect.suspend(() => {
    const meta = {
      dtype: o.dtype,
      layout: o.layout ?? "HND",
      shape: o.shape,
      strides: o.strides ?? contiguousStrides(o.shape),
      offset: o.offset ?? 0,
    };
    if (!(buffer.usage & Usage.STORAGE)) {
      return Effect.fail(
        new DeviceError({
          backend: BACKEND,
          reason: "KernelFailed",
          message: "an adopted GPUBuffer needs STORAGE usage",
        }),
      );
    }
    const need = (meta.offset + requiredLength(meta)) * bytesPer(o.dtype);
    if (buffer.size < need) {
      return Effect.fail(
        new DeviceError({
          backend: BACKEND,
          reason: "LimitExceeded",
          message: `the GPUBuffer holds ${buffer.size} bytes, the tensor needs ${need}`,
        }),
      );
    }
    if (Math.floor(buffer.size / 4) * 4 < need) {
      return Effect.fail(
        new DeviceError({
          backend: BACKEND,
          reason: "LimitExceeded",
          message:
            `the tensor ends in the GPUBuffer's last 2 bytes, which WebGPU cannot bind (its size ${buffer.size} is not a multiple of 4)`,
        }),
      );
    }
    return Effect.succeed(deviceTensor(device, buffer, meta, false));
  });
}

/** A host tensor from the bytes of a contiguous device tensor. */
export function hostFromBytes(bytes: ArrayBuffer, dtype: DType, layout: Layout, shape: Shape4): HostTensor {
  const data = dtype === "f32" ? new Float32Array(bytes) : new Uint16Array(bytes);
  return hostTensor(data, shape, { dtype, layout });
}
