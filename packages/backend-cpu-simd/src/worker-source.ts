/**
 * The worker's whole program, as text: it is started from a string (Node `eval`, elsewhere a Blob URL), so the
 * package never fetches a file. It instantiates the module it is sent (compiled, so that V8 shares the code and its
 * tier-up with the caller; or bytes where a runtime cannot send modules) on the shared memory it is sent, then runs task batches:
 * it takes task indices from an atomic counter in that memory until none are left, and says "done".
 */
export const WORKER_SOURCE = `
const port = typeof self !== "undefined" && typeof self.postMessage === "function" ? self : require("node:worker_threads").parentPort;
let kernels, memory;
function onMessage(msg) {
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
    try {
      const counter = new Int32Array(memory.buffer, msg.counter, 1);
      const run = kernels[msg.fn];
      for (let t = Atomics.add(counter, 0, 1); t < msg.count; t = Atomics.add(counter, 0, 1)) run(msg.table, t, msg.scratch);
      port.postMessage({ type: "done" });
    } catch (e) {
      port.postMessage({ type: "error", message: String(e && e.stack || e) });
    }
  }
}
if (typeof self !== "undefined" && port === self) self.onmessage = (e) => onMessage(e.data);
else port.on("message", onMessage);
`;
