import { WORKER_SOURCE } from "./worker-source.js";

/** One worker, whatever the runtime's worker API. */
interface WorkerHandle {
  post(msg: unknown): void;
  /** Resolves on the next "ready"/"done", rejects on "error" or a crash. */
  next(): Promise<void>;
  /** Lets the process exit while the worker idles (Node, Bun); a no-op where the API has no such thing. */
  hold(held: boolean): void;
  terminate(): void;
}

type Msg = { type: "ready" | "done" } | { type: "error"; message: string };

function handleFrom(
  post: (m: unknown) => void,
  listen: (onMsg: (m: Msg) => void, onErr: (e: unknown) => void) => void,
  terminate: () => void,
  hold: (held: boolean) => void,
): WorkerHandle {
  let waiting: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  let failure: unknown;
  listen(
    (m) => {
      const w = waiting;
      waiting = undefined;
      if (!w) return;
      if (m.type === "error") w.reject(new Error(m.message));
      else w.resolve();
    },
    (e) => {
      failure = e;
      const w = waiting;
      waiting = undefined;
      w?.reject(e);
    },
  );
  return {
    post,
    next: () => (failure ? Promise.reject(failure) : new Promise<void>((resolve, reject) => (waiting = { resolve, reject }))),
    hold,
    terminate: () => {
      terminate();
      failure = new Error("worker terminated");
      waiting?.reject(failure);
      waiting = undefined;
    },
  };
}

type Runtime = "node" | "web";

function runtime(): Runtime | undefined {
  const g = globalThis as { Deno?: unknown; Bun?: unknown; process?: { versions?: { node?: string } }; Worker?: unknown; Blob?: unknown };
  if (g.Deno === undefined && g.Bun === undefined && g.process?.versions?.node) return "node";
  if (typeof g.Worker === "function" && typeof g.Blob === "function" && typeof URL.createObjectURL === "function") return "web";
  return undefined;
}

/** Whether this runtime can start workers at all. */
export function workersAvailable(): boolean {
  return runtime() !== undefined;
}

async function spawn(): Promise<WorkerHandle> {
  if (runtime() === "node") {
    const name = "node:worker_threads";
    const { Worker } = (await import(/* @vite-ignore */ name)) as typeof import("node:worker_threads");
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    return handleFrom(
      (m) => w.postMessage(m),
      (onMsg, onErr) => {
        w.on("message", onMsg);
        w.on("error", onErr);
      },
      () => void w.terminate(),
      (held) => (held ? w.ref() : w.unref()),
    );
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const w = new Worker(url, { type: "module" }) as Worker & { ref?: () => void; unref?: () => void };
  w.unref?.();
  return handleFrom(
    (m) => w.postMessage(m),
    (onMsg, onErr) => {
      w.onmessage = (e: MessageEvent) => onMsg(e.data as Msg);
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault?.();
        onErr(new Error(e.message || "worker failed"));
      };
    },
    () => {
      w.terminate();
      URL.revokeObjectURL(url); // only now: Bun reads the URL after the constructor returns
    },
    (held) => (held ? w.ref?.() : w.unref?.()),
  );
}

/**
 * Workers over one shared wasm memory. A batch is `count` tasks of one kind; the calling thread works too,
 * and every thread takes the next task index from an atomic counter, so the split adapts to uneven tiles
 * (causal) and results do not depend on which thread ran what.
 */
export class WorkerPool {
  private constructor(private readonly workers: WorkerHandle[]) {}

  /** Starts `count` workers, each instantiating `module` (or, where it cannot be posted, `bytes`) on `memory`. */
  static async start(count: number, module: WebAssembly.Module, bytes: Uint8Array, memory: WebAssembly.Memory): Promise<WorkerPool> {
    const workers: WorkerHandle[] = [];
    try {
      for (let i = 0; i < count; i++) workers.push(await spawn());
      await Promise.all(
        workers.map((w) => {
          const ready = w.next();
          try {
            w.post({ type: "init", module, memory });
          } catch {
            w.post({ type: "init", bytes, memory }); // a runtime that cannot clone compiled modules
          }
          return ready;
        }),
      );
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    }
    return new WorkerPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Runs tasks [0, count) of `fn`: worker i uses scratch `scratch + (i + 1)·scratchBytes`, the caller runs
   * `local(t)` with the first scratch. `counterAt` is the byte address of the shared counter. `first`, when given,
   * runs on the caller once the workers have their orders, before it takes tasks (work that needs no kernel).
   */
  async run(fn: string, table: number, count: number, memory: WebAssembly.Memory, counterAt: number, scratch: number, scratchBytes: number, local: (t: number) => void, first?: () => void): Promise<void> {
    const counter = new Int32Array(memory.buffer, counterAt, 1);
    Atomics.store(counter, 0, 0);
    const done = this.workers.map((w, i) => {
      w.hold(true);
      const finished = w.next();
      w.post({ type: "run", fn, table, count, counter: counterAt, scratch: scratch + (i + 1) * scratchBytes });
      return finished;
    });
    let localError: unknown;
    try {
      first?.();
      for (let t = Atomics.add(counter, 0, 1); t < count; t = Atomics.add(counter, 0, 1)) local(t);
    } catch (e) {
      localError = e;
      Atomics.store(counter, 0, count); // stop the workers taking more
    }
    const results = await Promise.allSettled(done);
    for (const w of this.workers) w.hold(false);
    if (localError) throw localError;
    for (const r of results) if (r.status === "rejected") throw r.reason;
  }

  dispose(): void {
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
