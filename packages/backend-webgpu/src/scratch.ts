/**
 * What calls of one shape reuse: intermediate buffers (one per role), uniform blocks (rewritten only when their bytes
 * change), MAP_READ staging buffers (back in the pool once read), bind groups (keyed by pipeline and buffers) and
 * the plans of whole calls (run.ts; dropped with the bind groups whenever a buffer is replaced).
 * Reuse is safe because the queue runs submissions in order: a call's writes come after the previous call's reads.
 */
export class CallBuffers {
  private readonly byRole = new Map<string, GPUBuffer>();
  private readonly written = new Map<string, { buffer: GPUBuffer; bytes: Uint8Array }>();
  private destroyed = false;
  private readonly stagingFree = new Map<number, GPUBuffer[]>();
  private readonly groups = new Map<string, GPUBindGroup>();
  readonly plans = new Map<string, unknown>();
  bytes = 0;

  constructor(private readonly device: GPUDevice) {}

  /** A buffer for `role` of at least `bytes`; replaced when too small or more than 4× too big. */
  scratch(role: string, bytes: number, usage: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 256) * 256);
    const have = this.byRole.get(role);
    if (have && have.usage === usage && have.size >= size && have.size <= 4 * size) return have;
    if (have) {
      this.bytes -= have.size;
      have.destroy();
      this.groups.clear();
      this.plans.clear();
    }
    const buffer = this.device.createBuffer({ label: role, size, usage });
    this.byRole.set(role, buffer);
    this.bytes += size;
    return buffer;
  }

  /** A buffer of `usage` holding `data` (a uniform block, a segment table), written only when the bytes change. */
  constant(role: string, data: ArrayBuffer | ArrayBufferView, usage: number): GPUBuffer {
    const view = ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);
    const buffer = this.scratch(`constant ${role}`, view.byteLength, usage);
    const had = this.written.get(role);
    if (
      !had || had.buffer !== buffer || had.bytes.byteLength !== view.byteLength ||
      !had.bytes.every((x, i) => x === view[i])
    ) {
      this.device.queue.writeBuffer(buffer, 0, view as Uint8Array<ArrayBuffer>);
      this.written.set(role, { buffer, bytes: view.slice() });
    }
    return buffer;
  }

  /** A MAP_READ | COPY_DST buffer of `size` bytes; `giveBack` once it is read and unmapped. */
  staging(size: number, usage: number): GPUBuffer {
    const free = this.stagingFree.get(size);
    const reused = free?.pop();
    if (reused) return reused;
    this.bytes += size;
    return this.device.createBuffer({ label: "staging", size, usage });
  }

  giveBack(staging: GPUBuffer): void {
    if (this.destroyed) return staging.destroy();
    const list = this.stagingFree.get(staging.size) ?? [];
    list.push(staging);
    this.stagingFree.set(staging.size, list);
  }

  /** The bind group of `pipeline`'s group 0 over `buffers` (whole buffers, sizes rounded down to 4 bytes). */
  bindGroup(pipeline: GPUComputePipeline, buffers: readonly GPUBuffer[]): GPUBindGroup {
    const key = `${idOf(pipeline)}:${buffers.map(idOf).join(",")}`;
    let group = this.groups.get(key);
    if (!group) {
      // A caller's buffer may be sized in 2-byte steps; a storage binding must be a multiple of 4 (adopt checks the
      // tensor lies within that part).
      const entries = buffers.map((buffer, binding) => ({
        binding,
        resource: { buffer, size: Math.floor(buffer.size / 4) * 4 },
      }));
      group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      // Callers' buffers come and go; a bounded map keeps their groups from piling up.
      if (this.groups.size >= 64) this.groups.clear();
      this.groups.set(key, group);
    }
    return group;
  }

  /** Keeps a call's plan; a bounded map, as callers' buffers come and go. */
  keepPlan(key: string, plan: unknown): void {
    if (this.plans.size >= 16) this.plans.clear();
    this.plans.set(key, plan);
  }

  destroy(): void {
    this.destroyed = true;
    for (const b of this.byRole.values()) b.destroy();
    for (const list of this.stagingFree.values()) for (const b of list) b.destroy();
    this.byRole.clear();
    this.stagingFree.clear();
    this.written.clear();
    this.groups.clear();
    this.plans.clear();
    this.bytes = 0;
  }
}

const ids = new WeakMap<object, number>();
let nextId = 0;
const idOf = (o: object) => {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, id = nextId++);
  return id;
};

/**
 * CallBuffers per call shape, most recently used last: at most `maxShapes`, and older shapes are freed while the
 * total is over `budget` bytes (the current shape always stays). `release` frees everything (dispose).
 */
export class ScratchPool {
  private readonly byShape = new Map<string, CallBuffers>();

  constructor(
    private readonly device: GPUDevice,
    private readonly maxShapes = 4,
    private readonly budget = 1 << 30,
  ) {}

  forShape(key: string): CallBuffers {
    let entry = this.byShape.get(key);
    if (entry) this.byShape.delete(key);
    else entry = new CallBuffers(this.device);
    this.byShape.set(key, entry);
    let total = 0;
    for (const e of this.byShape.values()) total += e.bytes;
    for (const [k, e] of this.byShape) {
      if (e === entry || (this.byShape.size <= this.maxShapes && total <= this.budget)) break;
      total -= e.bytes;
      e.destroy();
      this.byShape.delete(k);
    }
    return entry;
  }

  release(): void {
    for (const e of this.byShape.values()) e.destroy();
    this.byShape.clear();
  }
}
