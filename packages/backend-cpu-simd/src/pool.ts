import { COUNTER_WORDS, MAX_BATCHES, WORKER_SOURCE } from "./worker-source.js";

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

/** One batch of tasks: `count` calls `fn(table, t, scratch)`, t in [0, count). */
export interface Batch {
  readonly fn: string;
  readonly table: number;
  readonly count: number;
}

/** Work the caller does inside a run besides its share of the tasks. */
export interface CallerWork {
  /** Done before the second batch may start (inputs that only later batches read, e.g. Q while K/V are prepared). */
  readonly inputs?: () => void;
  /** Done before the caller takes tasks, needed by no batch (e.g. the first touch of the output array). */
  readonly aside?: () => void;
}

/**
 * Workers over one shared wasm memory. A run is a chain of batches; the calling thread works too, and every thread
 * takes the next task index of the current batch from an atomic counter, so the split adapts to uneven tiles
 * (causal) and results do not depend on which thread ran what. A thread starts batch b + 1 once every task of batch
 * b has finished (and, for the second batch, the caller's `inputs` work): one wake-up per call instead of one per
 * batch, and the caller's copying of inputs overlaps the first batch.
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
   * Runs `batches` in order: worker i uses scratch `scratch + (i + 1)·scratchBytes`, the caller runs `local(b, t)`
   * (batch b, task t) with the first scratch. `counterAt` is the byte address of COUNTER_WORDS shared words.
   */
  async run(batches: readonly Batch[], memory: WebAssembly.Memory, counterAt: number, scratch: number, scratchBytes: number, local: (b: number, t: number) => void, caller: CallerWork = {}): Promise<void> {
    if (batches.length > MAX_BATCHES) throw new Error(`at most ${MAX_BATCHES} batches per run, got ${batches.length}`);
    const c = new Int32Array(memory.buffer, counterAt, COUNTER_WORDS);
    c.fill(0);
    // The caller's `inputs` counts as one more task of the first batch, so the second waits for it.
    const targets = batches.map((b, i) => b.count + (i === 0 ? 1 : 0));
    const done = this.workers.map((w, i) => {
      w.hold(true);
      const finished = w.next();
      w.post({ type: "run", batches, targets, counter: counterAt, scratch: scratch + (i + 1) * scratchBytes });
      return finished;
    });
    let localError: unknown;
    try {
      caller.inputs?.();
      finishTask(c, 1, targets[0]);
      caller.aside?.();
      for (let b = 0; b < batches.length; b++) {
        if (b > 0) while (Atomics.load(c, 2 * b - 1) < targets[b - 1]) if (Atomics.load(c, COUNTER_WORDS - 1) !== 0) throw new Error("a worker failed");
        const { count } = batches[b];
        for (let t = Atomics.add(c, 2 * b, 1); t < count; t = Atomics.add(c, 2 * b, 1)) {
          local(b, t);
          finishTask(c, 2 * b + 1, targets[b]);
        }
      }
    } catch (e) {
      localError = e;
      abort(c, batches);
    }
    const results = await Promise.allSettled(done);
    for (const w of this.workers) w.hold(false);
    for (const r of results) if (r.status === "rejected") throw r.reason;
    if (localError) throw localError;
  }

  dispose(): void {
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}

/** Counts one finished task of a batch, waking threads waiting for the batch when it was the last. */
function finishTask(c: Int32Array, doneWord: number, target: number): void {
  if (Atomics.add(c, doneWord, 1) + 1 >= target) Atomics.notify(c, doneWord);
}

/** Stops a run: no thread takes another task, waiting threads wake and see the abort word. */
function abort(c: Int32Array, batches: readonly Batch[]): void {
  Atomics.store(c, COUNTER_WORDS - 1, 1);
  batches.forEach((b, i) => {
    Atomics.store(c, 2 * i, b.count);
    Atomics.notify(c, 2 * i + 1);
  });
}
