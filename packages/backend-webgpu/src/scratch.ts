/**
 * Device buffers reused from call to call, one per role ("result", "V as f16", …). Reuse is safe because the queue
 * runs submissions in order: a call's writes come after the previous call's reads. Buffers are sized to the call
 * (a much smaller call replaces a big buffer, so one large call does not pin its memory for ever).
 */
export class ScratchPool {
  private readonly byRole = new Map<string, GPUBuffer>();

  constructor(private readonly device: GPUDevice) {}

  get(role: string, bytes: number, usage: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 256) * 256);
    const have = this.byRole.get(role);
    if (have && have.usage === usage && have.size >= size && have.size <= 4 * size) return have;
    have?.destroy();
    const buffer = this.device.createBuffer({ label: role, size, usage });
    this.byRole.set(role, buffer);
    return buffer;
  }

  release(): void {
    for (const b of this.byRole.values()) b.destroy();
    this.byRole.clear();
  }
}
