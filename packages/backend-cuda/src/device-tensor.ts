/**
 * Device memory of the cuda backend: stream-ordered allocations owned by tensors, freed by `dispose()` or, as a
 * safety net, by a FinalizationRegistry when a tensor is collected undisposed; pointers adopted from elsewhere
 * (another library's allocation) are wrapped without copying and never freed here.
 */
import { DeviceError, type DeviceTensor, type DType, type Layout, requiredLength, type Shape4 } from "@sageattn/core";
import { Effect } from "effect";
import type { Native } from "./ffi/symbols.js";
import { type CudaError, toError } from "./status.js";

export const BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };

/** A device allocation (or an adopted address). */
export interface Allocation {
  readonly ptr: bigint;
  readonly bytes: number;
  readonly owned: boolean;
  /** The stream its contents were last written on (0 for adopted memory: its writer is unknown). */
  readonly stream: bigint;
  freed: boolean;
}

export interface TensorDescription {
  readonly dtype: DType;
  readonly layout: Layout;
  readonly shape: Shape4;
  readonly strides: Shape4;
}

/** A tensor in CUDA device memory; `handle` is its Allocation. */
export class CudaTensor implements DeviceTensor {
  readonly kind = "device" as const;
  readonly backend = "cuda";
  constructor(
    readonly handle: Allocation,
    private readonly desc: TensorDescription,
    private readonly memory: DeviceMemory,
  ) {}
  get dtype() {
    return this.desc.dtype;
  }
  get layout() {
    return this.desc.layout;
  }
  get shape() {
    return this.desc.shape;
  }
  get strides() {
    return this.desc.strides;
  }
  private range?: readonly [number, number];
  /** [first, past-last) byte addresses as numbers (device addresses stay below 2^53), computed once. */
  get span(): readonly [number, number] {
    if (this.range === undefined) {
      const start = Number(this.handle.ptr);
      this.range = [start, start + requiredLength(this) * BYTES[this.dtype]];
    }
    return this.range;
  }
  /** Frees the device memory now (stream-ordered after the work already queued); safe to call twice. */
  dispose(): void {
    this.memory.release(this.handle, this);
  }
}

export class DeviceMemory {
  private readonly live = new Set<Allocation>();
  private readonly registry = new FinalizationRegistry<Allocation>((a) => this.free(a));
  private closed = false;

  constructor(
    private readonly native: Native,
    readonly stream: bigint,
  ) {}

  /** Live owned allocations (tests use it to see that nothing leaks). */
  get liveCount(): number {
    return this.live.size;
  }

  private readonly out = new BigUint64Array(1);

  /** A new allocation, or the tagged error (no exceptions on the hot path). */
  allocate(bytes: number): Allocation | CudaError {
    if (this.closed) {
      return new DeviceError({ backend: "cuda", reason: "Disposed", message: "the cuda backend was disposed" });
    }
    const status = this.native.sa_malloc(BigInt(bytes), this.stream, this.out);
    if (status !== 0) return toError(this.native, status, `sa_malloc(${bytes})`, "call");
    const a: Allocation = { ptr: this.out[0], bytes, owned: true, stream: this.stream, freed: false };
    this.live.add(a);
    return a;
  }

  alloc(bytes: number): Effect.Effect<Allocation, CudaError> {
    return Effect.suspend(() => {
      const a = this.allocate(bytes);
      return "_tag" in a ? Effect.fail(a) : Effect.succeed(a);
    });
  }

  /** Frees an owned allocation once (stream-ordered); adopted ones are left to their owner. */
  free(a: Allocation): void {
    if (a.freed || !a.owned) return;
    a.freed = true;
    this.live.delete(a);
    if (!this.closed) this.native.sa_free(a.ptr, this.stream);
  }

  release(a: Allocation, token: object): void {
    this.registry.unregister(token);
    this.free(a);
  }

  tensor(a: Allocation, desc: TensorDescription): CudaTensor {
    const t = new CudaTensor(a, desc, this);
    if (a.owned) this.registry.register(t, a, t);
    return t;
  }

  /** Wraps an existing device address (not copied, never freed here). */
  adopt(ptr: bigint, desc: TensorDescription): CudaTensor {
    const bytes = requiredLength(desc) * BYTES[desc.dtype];
    return new CudaTensor({ ptr, bytes, owned: false, stream: 0n, freed: false }, desc, this);
  }

  /** Frees everything still live; later allocations fail with Disposed. Call after the stream is synchronized. */
  close(): void {
    for (const a of [...this.live]) this.free(a);
    this.closed = true;
  }
}
