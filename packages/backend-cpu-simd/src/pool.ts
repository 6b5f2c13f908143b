import { COUNTER_WORDS, MAX_BATCHES, WORKER_SOURCE } from "./worker-source.js";

/** One worker, whatever the runtime's worker API. */
interface WorkerHandle {
  post(msg: unknown): void;
  /** Resolves on the next "ready"/"done", rejects on "error", a crash or the worker's exit. */
  next(): Promise<void>;
  /** Lets the process exit while the worker idles; a no-op where the API has no such thing (browsers). */
  hold(held: boolean): void;
  terminate(): void;
  /** Ends the thread without telling the pool (fault injection: what a kill from outside looks like). */
  kill(): void;
  /** Why the worker can take no more work (it exited, crashed or was terminated), or undefined while it lives. */
  readonly dead: Error | undefined;
}

type Msg = { type: "ready" | "done" } | { type: "error"; message: string };

/** How a test may end a worker the way a crash would: terminated, `process.exit` in the worker, or an uncaught throw. */
export type WorkerFault = "terminate" | "exit" | "throw";

function handleFrom(
  post: (m: unknown) => void,
  listen: (onMsg: (m: Msg) => void, onDeath: (e: Error) => void) => void,
  terminate: () => void,
  hold: (held: boolean) => void,
  onDeath: (e: Error) => void,
): WorkerHandle {
  let waiting: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  let dead: Error | undefined;
  const die = (e: Error) => {
    if (dead) return;
    dead = e;
    const w = waiting;
    waiting = undefined;
    w?.reject(e);
    onDeath(e);
  };
  listen((m) => {
    const w = waiting;
    waiting = undefined;
    if (!w) return;
    if (m.type === "error") w.reject(new Error(m.message));
    else w.resolve();
  }, die);
  return {
    post: (m) => {
      if (!dead) post(m);
    },
    next: () => (dead ? Promise.reject(dead) : new Promise<void>((resolve, reject) => (waiting = { resolve, reject }))),
    hold: (held) => {
      if (!dead) hold(held);
    },
    terminate: () => {
      die(new Error("worker terminated"));
      terminate();
    },
    kill: terminate,
    get dead() {
      return dead;
    },
  };
}

type Runtime = "node" | "web";

/**
 * "node": node:worker_threads, which Node, Bun and Deno all have. It is used wherever it exists because it has
 * `unref` (an idle pool never keeps a process alive; Deno's web Worker has no unref) and an `exit` event (a worker
 * that dies without an error is noticed). "web": browsers' Worker from a Blob URL.
 */
function runtime(): Runtime | undefined {
  const g = globalThis as {
    Deno?: unknown;
    Bun?: unknown;
    process?: { versions?: { node?: string } };
    Worker?: unknown;
    Blob?: unknown;
  };
  if (g.Deno !== undefined || g.Bun !== undefined || g.process?.versions?.node) return "node";
  if (typeof g.Worker === "function" && typeof g.Blob === "function" && typeof URL.createObjectURL === "function") {
    return "web";
  }
  return undefined;
}

/** Whether this runtime can start workers at all. */
export function workersAvailable(): boolean {
  return runtime() !== undefined;
}

async function spawn(onDeath: (e: Error) => void): Promise<WorkerHandle> {
  if (runtime() === "node") {
    const name = "node:worker_threads";
    const { Worker } = (await import(/* @vite-ignore */ name)) as typeof import("node:worker_threads");
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    return handleFrom(
      (m) => w.postMessage(m),
      (onMsg, die) => {
        w.on("message", onMsg);
        w.on("error", (e) => die(e instanceof Error ? e : new Error(String(e))));
        w.on("exit", (code) => die(new Error(`a worker exited (code ${code})`)));
      },
      () => void w.terminate(),
      (held) => (held ? w.ref() : w.unref()),
      onDeath,
    );
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const w = new Worker(url, { type: "module" });
  // Browsers report a worker's uncaught error but not its end; a terminated browser worker is only ours to end.
  return handleFrom(
    (m) => w.postMessage(m),
    (onMsg, die) => {
      w.onmessage = (e: MessageEvent) => onMsg(e.data as Msg);
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault?.();
        die(new Error(e.message || "worker failed"));
      };
    },
    () => {
      w.terminate();
      URL.revokeObjectURL(url);
    },
    () => undefined,
    onDeath,
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
  /** Set by a worker's death during a run: the run aborts (see `watch`). */
  private counter: Int32Array | undefined;
  private batches: readonly Batch[] = [];
  private disposed = false;

  private constructor(
    private readonly workers: WorkerHandle[],
    private readonly module: WebAssembly.Module,
    private readonly bytes: Uint8Array,
    private readonly memory: WebAssembly.Memory,
  ) {}

  /** Starts `count` workers, each instantiating `module` (or, where it cannot be posted, `bytes`) on `memory`. */
  static async start(
    count: number,
    module: WebAssembly.Module,
    bytes: Uint8Array,
    memory: WebAssembly.Memory,
  ): Promise<WorkerPool> {
    const pool = new WorkerPool([], module, bytes, memory);
    try {
      await Promise.all(Array.from({ length: count }, (_, i) => pool.startWorker(i)));
    } catch (e) {
      pool.dispose();
      throw e;
    }
    return pool;
  }

  /** Starts worker i (again, after a death) and waits until it has instantiated the module. */
  private async startWorker(i: number): Promise<void> {
    const w = await spawn((e) => this.onDeath(e));
    this.workers[i] = w;
    const ready = w.next();
    try {
      w.post({ type: "init", module: this.module, memory: this.memory });
    } catch {
      w.post({ type: "init", bytes: this.bytes, memory: this.memory }); // a runtime that cannot clone compiled modules
    }
    try {
      await ready;
    } catch (e) {
      w.terminate();
      throw e;
    }
  }

  /** A worker died: if a run is under way, abort it so that no thread waits for the tasks the dead one held. */
  private onDeath(_e: Error): void {
    if (this.counter) abort(this.counter, this.batches);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Fault injection for tests: ends worker i the way a crash would, without the pool being told. */
  injectFault(i: number, fault: WorkerFault): void {
    const w = this.workers[i];
    if (fault === "terminate") w.kill();
    else w.post({ type: "fault", fault, code: 7 });
  }

  /**
   * Runs `batches` in order: worker i uses scratch `scratch + (i + 1)·scratchBytes`, the caller runs `local(b, t)`
   * (batch b, task t) with the first scratch. `counterAt` is the byte address of COUNTER_WORDS shared words.
   * A worker that died since the last run is replaced first; one that dies during this run fails this run only.
   */
  async run(
    batches: readonly Batch[],
    memory: WebAssembly.Memory,
    counterAt: number,
    scratch: number,
    scratchBytes: number,
    local: (b: number, t: number) => void,
    caller: CallerWork = {},
  ): Promise<void> {
    if (batches.length > MAX_BATCHES) throw new Error(`at most ${MAX_BATCHES} batches per run, got ${batches.length}`);
    if (this.disposed) throw new Error("the worker pool was disposed");
    await this.replaceDead();
    const c = new Int32Array(memory.buffer, counterAt, COUNTER_WORDS);
    c.fill(0);
    this.counter = c;
    this.batches = batches;
    // The caller's `inputs` counts as one more task of the first batch, so the second waits for it.
    const targets = batches.map((b, i) => b.count + (i === 0 ? 1 : 0));
    const workers = [...this.workers];
    const done = workers.map((w, i) => {
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
        if (b > 0) await barrier(c, 2 * b - 1, targets[b - 1]);
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
    this.counter = undefined;
    for (const w of workers) w.hold(false);
    // Every task finished (a done count only grows once a task has written its output): a worker that died
    // meanwhile held none, so the results stand; the dead worker is replaced at the next run.
    const complete = targets.every((n, b) => Atomics.load(c, 2 * b + 1) >= n);
    results.forEach((r, i) => {
      if (r.status === "rejected" && !(complete && r.reason === workers[i].dead)) throw r.reason;
    });
    if (localError) throw localError;
    if (!complete) throw new Error("the run was aborted");
  }

  /** Starts a fresh worker in place of each one that died. */
  private async replaceDead(): Promise<void> {
    await Promise.all(this.workers.map((w, i) => (w.dead ? this.startWorker(i) : undefined)));
  }

  dispose(): void {
    this.disposed = true;
    if (this.counter) abort(this.counter, this.batches);
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}

/**
 * Waits until batch word `doneWord` reaches `target` or the run is aborted. It spins briefly (the usual case: the
 * workers are a few tasks from done), then yields to the event loop between checks, so that a worker's death (an
 * event) can abort the run instead of leaving the caller spinning forever.
 */
const yieldNow: (f: () => void) => void = (globalThis as { setImmediate?: (f: () => void) => void }).setImmediate ??
  ((f) => setTimeout(f, 0));

async function barrier(c: Int32Array, doneWord: number, target: number): Promise<void> {
  for (let spins = 0;; spins++) {
    if (Atomics.load(c, doneWord) >= target) return;
    if (Atomics.load(c, COUNTER_WORDS - 1) !== 0) throw new Error("a worker failed");
    if (spins >= 100_000) await new Promise<void>((resolve) => yieldNow(resolve));
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
