/**
 * The worker's whole program, as text: it is started from a string (Node `eval`, elsewhere a Blob URL), so the
 * package never fetches a file. It instantiates the module it is sent (compiled, so that V8 shares the code and its
 * tier-up with the caller; or bytes where a runtime cannot send modules) on the shared memory it is sent, then runs chains
 * of task batches: it takes task indices from a batch's atomic counter in that memory until none are left, waits until
 * every task of that batch has finished (Atomics.wait, with a 1 ms timeout as a safety net), goes on to the next batch,
 * and says "done".
 */
/** Batches one run may chain. */
export const MAX_BATCHES = 4;
/**
 * Shared words a run uses: per batch a next-task counter (word 2b) and a finished-task counter (2b + 1), then one
 * abort word that a failing thread sets.
 */
export const COUNTER_WORDS = 2 * MAX_BATCHES + 1;

export const WORKER_SOURCE = `
const port = typeof require === "function" ? require("node:worker_threads").parentPort : self;
let kernels, memory;
function onMessage(msg) {
  if (msg.type === "fault") {
    // Fault injection (tests): end the thread as a crash would.
    if (msg.fault === "exit") process.exit(msg.code);
    throw new Error("injected fault");
  }
  if (msg.type === "init") {
    try {
      memory = msg.memory;
      const module = msg.module instanceof WebAssembly.Module ? msg.module : new WebAssembly.Module(msg.bytes);
      kernels = new WebAssembly.Instance(module, { env: { memory } }).exports;
      port.postMessage({ type: "ready" });
    } catch (e) {
      port.postMessage({ type: "error", message: String(e && e.stack || e) });
    }
    return;
  }
  if (msg.type === "run") {
    // Counter words (see pool.ts): batch b's next task at 2b, its finished tasks at 2b + 1, the abort word last.
    const c = new Int32Array(memory.buffer, msg.counter, ${COUNTER_WORDS});
    const batches = msg.batches, targets = msg.targets;
    try {
      for (let b = 0; b < batches.length; b++) {
        if (b > 0) {
          const w = 2 * b - 1;
          for (let d = Atomics.load(c, w); d < targets[b - 1] && Atomics.load(c, ${
  COUNTER_WORDS - 1
}) === 0; d = Atomics.load(c, w)) Atomics.wait(c, w, d, 1);
        }
        const run = kernels[batches[b].fn], table = batches[b].table, count = batches[b].count;
        for (let t = Atomics.add(c, 2 * b, 1); t < count; t = Atomics.add(c, 2 * b, 1)) {
          run(table, t, msg.scratch);
          if (Atomics.add(c, 2 * b + 1, 1) + 1 >= targets[b]) Atomics.notify(c, 2 * b + 1);
        }
      }
      port.postMessage({ type: "done" });
    } catch (e) {
      Atomics.store(c, ${COUNTER_WORDS - 1}, 1);
      for (let b = 0; b < batches.length; b++) {
        Atomics.store(c, 2 * b, batches[b].count);
        Atomics.notify(c, 2 * b + 1);
      }
      port.postMessage({ type: "error", message: String(e && e.stack || e) });
    }
  }
}
if (typeof self !== "undefined" && port === self) self.onmessage = (e) => onMessage(e.data);
else port.on("message", onMessage);
`;
