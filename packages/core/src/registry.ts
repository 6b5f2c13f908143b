import { Cause, Effect, Exit } from "effect";
import {
  type AttentionBackend,
  type BackendName,
  type BackendOptions,
  type BackendProvider,
  isSoftware,
  kvCacheUnsupportedBy,
  SOFTWARE_PRIORITY,
  unsupportedBy,
} from "./backend.js";
import { readEnv } from "./env.js";
import {
  BackendUnavailable,
  invalid,
  type InvalidInput,
  NoBackend,
  type SageAttnError,
  type UnavailableReason,
} from "./errors.js";
import { jsProvider } from "./js-backend.js";
import type { KvCacheSpec } from "./kv-cache.js";
import type { Problem } from "./problem.js";
import type { Tensor } from "./tensor.js";

/** Why a backend was passed over, as shown by `sageattn info` and on every result. */
export interface Rejection {
  readonly backend: BackendName;
  readonly reason: UnavailableReason;
  readonly message: string;
}

/** Backend packages core looks for; each exports `provider`. Core never imports them statically. */
export const KNOWN_BACKEND_PACKAGES: readonly string[] = [
  "@sageattn/backend-cuda",
  "@sageattn/backend-webgpu",
  "@sageattn/backend-cpu-simd",
];

const providers = new Map<string, BackendProvider>([[jsProvider.name, jsProvider]]);
const discoveryMisses: Rejection[] = [];
const loads = new Map<string, Promise<Exit.Exit<AttentionBackend, BackendUnavailable>>>();
let discovery: Promise<void> | undefined;
let discovered = false;
// Settled loads, so a call on a loaded backend selects it without waiting on a promise.
const settled = new Map<string, Exit.Exit<AttentionBackend, BackendUnavailable>>();

const debug = (msg: string) => {
  if (readEnv("SAGEATTN_DEBUG")) console.error(`[sageattn] ${msg}`);
};

/** Makes a backend available to selection (installed packages are found without this). */
export function registerBackend(provider: BackendProvider): void {
  providers.set(provider.name, provider);
  const stale = discoveryMisses.findIndex((r) => r.backend === provider.name);
  if (stale >= 0) discoveryMisses.splice(stale, 1);
}

/**
 * Registers these providers and turns package discovery off: for entries that import their backends statically
 * (the `sageattn` package), where importing other backend packages by name could only fail.
 */
export function useBackends(list: readonly BackendProvider[]): void {
  for (const p of list) registerBackend(p);
  discovery = Promise.resolve();
  discovered = true;
}

function packageBackendName(pkg: string): string {
  return pkg.replace("@sageattn/backend-", "");
}

/** Imports every known backend package that is installed, once. */
export function discoverBackends(): Effect.Effect<void> {
  discovery ??= (async () => {
    for (const pkg of KNOWN_BACKEND_PACKAGES) {
      const name = packageBackendName(pkg);
      if (providers.has(name)) continue;
      try {
        const spec = pkg; // a variable, so bundlers leave the optional import alone
        const mod = (await import(/* @vite-ignore */ spec)) as { provider?: BackendProvider };
        if (mod.provider) registerBackend(mod.provider);
        else discoveryMisses.push({ backend: name, reason: "NotInstalled", message: `${pkg} exports no provider` });
      } catch (e) {
        discoveryMisses.push({
          backend: name,
          reason: "NotInstalled",
          message: `${pkg} could not be imported: ${(e as Error).message?.split("\n")[0]}`,
        });
      }
    }
    discovered = true;
  })();
  if (discovered) return Effect.void;
  const pending = discovery;
  return Effect.promise(() => pending);
}

/** Providers in the order selection tries them. */
export function providersByPriority(): BackendProvider[] {
  return [...providers.values()].sort((a, b) => b.priority - a.priority);
}

/**
 * Loads a backend once and remembers the outcome (success or the reason it is unavailable). With `options`, loads
 * it configured by them instead (the provider's `configure`), so apps set a backend up without importing its
 * package; that backend then serves every later call by this name, replacing (and disposing) one loaded before.
 * @example
 *   await runToPromise(loadBackend("cpu-simd", { threads: 2 }));
 */
export function loadBackend(name: BackendName): Effect.Effect<AttentionBackend, BackendUnavailable>;
export function loadBackend(
  name: BackendName,
  options: BackendOptions,
): Effect.Effect<AttentionBackend, BackendUnavailable | InvalidInput>;
export function loadBackend(
  name: BackendName,
  options?: BackendOptions,
): Effect.Effect<AttentionBackend, BackendUnavailable | InvalidInput> {
  if (options === undefined) return loadOnce(name);
  return Effect.flatMap(discoverBackends(), () =>
    Effect.suspend(() => {
      const provider = providers.get(name);
      if (!provider) return loadOnce(name);
      if (!provider.configure) {
        return Effect.fail(
          invalid(
            "InvalidOption",
            `backend ${name} takes no options (got ${Object.keys(options).join(", ") || "an empty object"})`,
          ),
        );
      }
      const configure = provider.configure;
      return Effect.gen(function* () {
        const backend = yield* configure(options);
        const previous = settled.get(name);
        // Loading again (after disposeBackends) configures a fresh one with the same options.
        const again = Effect.catchTag(configure(options), "InvalidInput", (e) =>
          Effect.fail(new BackendUnavailable({ backend: name, reason: "Refused", message: e.message })));
        providers.set(name, { ...provider, load: again });
        const exit = Exit.succeed(backend);
        loads.set(name, Promise.resolve(exit)); // disposeBackends finds it there
        settled.set(name, exit);
        if (previous && Exit.isSuccess(previous) && previous.value !== backend) {
          yield* previous.value.dispose;
        }
        return backend;
      });
    }));
}

function loadOnce(name: BackendName): Effect.Effect<AttentionBackend, BackendUnavailable> {
  return Effect.flatMap(discoverBackends(), () =>
    Effect.suspend(() => {
      const provider = providers.get(name);
      if (!provider) {
        const miss = discoveryMisses.find((r) => r.backend === name);
        return Effect.fail(
          new BackendUnavailable({
            backend: name,
            reason: "NotInstalled",
            message: miss?.message ?? `no backend named "${name}" is registered`,
          }),
        );
      }
      const done = settled.get(name);
      if (done) return done;
      let pending = loads.get(name);
      if (!pending) {
        pending = Effect.runPromiseExit(provider.load).then((exit) => {
          if (loads.get(name) === pending) settled.set(name, exit);
          return exit;
        });
        loads.set(name, pending);
      }
      const p = pending;
      return Effect.flatMap(Effect.promise(() => p), (exit) => exit);
    }));
}

/** One backend as `sageattn info` shows it; a loaded backend on a software device carries its "Software" rejection. */
export interface BackendStatusRow {
  readonly name: BackendName;
  /** The rank auto-selection uses: the provider's, or SOFTWARE_PRIORITY on a software device. */
  readonly priority: number;
  readonly backend?: AttentionBackend;
  readonly rejection?: Rejection;
}

/** Every backend core knows of, in the order auto-selection ranks them, with the loaded backend or why it is unavailable. */
export function backendStatus(): Effect.Effect<BackendStatusRow[]> {
  return Effect.gen(function* () {
    yield* discoverBackends();
    const rows: BackendStatusRow[] = [];
    for (const p of providersByPriority()) {
      const exit = yield* Effect.exit(loadBackend(p.name));
      if (Exit.isFailure(exit)) rows.push({ name: p.name, priority: p.priority, rejection: rejectionOf(p.name, exit) });
      else if (isSoftware(exit.value) && p.priority > SOFTWARE_PRIORITY) {
        rows.push({
          name: p.name,
          priority: SOFTWARE_PRIORITY,
          backend: exit.value,
          rejection: softwareRejection(exit.value),
        });
      } else rows.push({ name: p.name, priority: p.priority, backend: exit.value });
    }
    rows.sort((a, b) => b.priority - a.priority);
    for (const miss of discoveryMisses) rows.push({ name: miss.backend, priority: -1, rejection: miss });
    return rows;
  });
}

function rejectionOf(name: string, exit: Exit.Exit<unknown, BackendUnavailable>): Rejection {
  if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
    const e = exit.cause.error;
    return { backend: name, reason: e.reason, message: e.message };
  }
  // A load that threw (a defect): its message alone, without the stack the cause's text would carry.
  const thrown = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined;
  const message = thrown instanceof Error ? thrown.message.split("\n")[0] : String(thrown ?? "unknown");
  return { backend: name, reason: "FeatureMissing", message: `${name} failed to load: ${message}` };
}

/** The backend named by the call, by a device tensor among the inputs, or by SAGEATTN_BACKEND; undefined for auto. */
function forcedBackend(
  requested: string | undefined,
  tensors: readonly Tensor[],
): Effect.Effect<string | undefined, InvalidInput> {
  const onDevice = tensors.find((t) => t.kind === "device");
  if (onDevice && onDevice.kind === "device") {
    const other = tensors.find((t) => t.kind === "device" && t.backend !== onDevice.backend);
    if (other && other.kind === "device") {
      return Effect.fail(
        invalid("InvalidOption", `inputs live on two backends: ${onDevice.backend} and ${other.backend}`),
      );
    }
    if (requested && requested !== onDevice.backend) {
      return Effect.fail(
        invalid("InvalidOption", `backend "${requested}" asked for, but the inputs live on "${onDevice.backend}"`),
      );
    }
    return Effect.succeed(onDevice.backend);
  }
  return Effect.succeed(requested ?? (readEnv("SAGEATTN_BACKEND") || undefined));
}

/** Why a backend on a software device was passed over by auto-selection. */
function softwareRejection(b: AttentionBackend): Rejection {
  return {
    backend: b.name,
    reason: "Software",
    message: `runs on a software device (${b.device}); ranked below cpu-simd, still selectable by name`,
  };
}

let warnedJs = false;

/** Says once, on stderr/console, that auto-selection fell back to the js oracle and why the others were passed over. */
function warnJsFallback(rejected: readonly Rejection[]): void {
  if (warnedJs || readEnv("SAGEATTN_QUIET")) return;
  warnedJs = true;
  const why = rejected.length
    ? rejected.map((r) => `${r.backend}: ${r.reason}`).join(", ")
    : "no backend package registered";
  // The advice follows cpu-simd's own reason: not there (install it, or import it where a bundler cannot find it), or
  // there but not for this call's options, or unable to run in this runtime.
  const simd = rejected.find((r) => r.backend === "cpu-simd");
  const advice = !simd || simd.reason === "NotInstalled"
    ? `Install @sageattn/backend-cpu-simd; in a bundled app import "sageattn" (backends imported statically) or call ` +
      `registerBackend(provider).`
    : simd.reason === "Unsupported"
    ? `cpu-simd is installed but cannot run this call's options (${simd.message}); leave those out to run on it.`
    : `cpu-simd cannot run in this runtime (${simd.message}).`;
  console.warn(
    `[sageattn] running on the js oracle, about 100× slower than cpu-simd (${why}). ${advice} SAGEATTN_QUIET=1 silences this.`,
  );
}

/**
 * A steady-state call's backend without the generator below (most of a small device call's host cost in core): the
 * backend named by the call or by its device inputs, already loaded, supporting the call. Anything else: undefined.
 */
function loadedFor(
  p: Problem,
  requested: string | undefined,
  tensors: readonly Tensor[],
): AttentionBackend | undefined {
  let name = requested;
  for (const t of tensors) {
    if (t.kind !== "device") return undefined;
    if (name !== undefined && name !== t.backend) return undefined;
    name = t.backend;
  }
  const done = name === undefined ? undefined : settled.get(name);
  if (!done || !Exit.isSuccess(done) || unsupportedBy(done.value.capabilities, p)) return undefined;
  return done.value;
}

/** The backend is still the loaded instance of its name (not disposed, not replaced by a reload). */
export function isLoaded(b: AttentionBackend): boolean {
  const done = settled.get(b.name);
  return done !== undefined && Exit.isSuccess(done) && done.value === b;
}

/**
 * Picks the backend for a problem: the forced one, or the first by priority that loads and supports the call. A
 * backend on a software device is tried again at SOFTWARE_PRIORITY, after cpu-simd and before js.
 */
export function selectBackend(
  p: Problem,
  requested: string | undefined,
  tensors: readonly Tensor[],
): Effect.Effect<{ backend: AttentionBackend; rejected: Rejection[] }, NoBackend | BackendUnavailable | InvalidInput> {
  const steady = loadedFor(p, requested, tensors);
  if (steady) return Effect.succeed({ backend: steady, rejected: [] });
  return Effect.flatMap(
    forcedBackend(requested, tensors),
    (forced) => pickBackend(forced, (b) => unsupportedBy(b.capabilities, p)),
  );
}

/**
 * Picks the backend for a KV cache the same way `selectBackend` picks one for a call: the forced one (the option, else
 * SAGEATTN_BACKEND), or the first by priority that loads and can keep a cache for `spec`.
 */
export function selectKvCacheBackend(
  spec: KvCacheSpec,
  requested: string | undefined,
): Effect.Effect<{ backend: AttentionBackend; rejected: Rejection[] }, NoBackend | BackendUnavailable | InvalidInput> {
  return Effect.flatMap(
    forcedBackend(requested, []),
    (forced) => pickBackend(forced, (b) => kvCacheUnsupportedBy(b, spec)),
  );
}

/** The forced backend if it loads and `unsupported` passes it, else the first by priority (software ones demoted). */
function pickBackend(
  forced: string | undefined,
  unsupported: (b: AttentionBackend) => string | undefined,
): Effect.Effect<{ backend: AttentionBackend; rejected: Rejection[] }, NoBackend | BackendUnavailable | InvalidInput> {
  return Effect.gen(function* () {
    yield* discoverBackends();
    let rejected: Rejection[] = [];
    const queue = forced
      ? [{ name: forced, priority: 0 }]
      : providersByPriority().map(({ name, priority }) => ({ name, priority }));
    const demoted = new Set<string>();
    for (let i = 0; i < queue.length; i++) {
      const { name, priority } = queue[i];
      const exit = yield* Effect.exit(loadBackend(name));
      if (Exit.isFailure(exit)) {
        const r = rejectionOf(name, exit);
        if (forced) {
          return yield* Effect.fail(new BackendUnavailable({ backend: name, reason: r.reason, message: r.message }));
        }
        rejected.push(r);
        continue;
      }
      const why = unsupported(exit.value);
      if (why) {
        if (forced) {
          return yield* Effect.fail(new BackendUnavailable({ backend: name, reason: "Unsupported", message: why }));
        }
        rejected.push({ backend: name, reason: "Unsupported", message: why });
        continue;
      }
      if (!forced && isSoftware(exit.value) && priority > SOFTWARE_PRIORITY && !demoted.has(name)) {
        demoted.add(name);
        rejected.push(softwareRejection(exit.value));
        const at = queue.findIndex((c, j) => j > i && c.priority < SOFTWARE_PRIORITY);
        queue.splice(at < 0 ? queue.length : at, 0, { name, priority: SOFTWARE_PRIORITY });
        continue;
      }
      if (!forced) {
        // The chosen one leaves the list; a demoted backend rejected again keeps only its later reason.
        rejected = rejected.filter((r, j) =>
          r.backend !== name && !rejected.slice(j + 1).some((x) => x.backend === r.backend)
        );
        rejected.push(...discoveryMisses);
        if (name === "js") warnJsFallback(rejected);
      }
      debug(
        `chose ${name}${
          rejected.length
            ? `; passed over ${rejected.map((r) => `${r.backend} (${r.reason}: ${r.message})`).join(", ")}`
            : ""
        }`,
      );
      return { backend: exit.value, rejected };
    }
    return yield* Effect.fail(
      new NoBackend({
        message: `no backend can run this call: ${rejected.map((r) => `${r.backend}: ${r.message}`).join("; ")}`,
        rejected: rejected.map((r) => new BackendUnavailable(r)),
      }),
    );
  });
}

/** Waits for the queued work of every backend loaded so far. */
export function synchronizeBackends(): Effect.Effect<void, SageAttnError> {
  return Effect.gen(function* () {
    for (const p of [...loads.values()]) {
      const exit = yield* Effect.promise(() => p);
      if (Exit.isSuccess(exit)) yield* exit.value.synchronize;
    }
  });
}

/** Disposes every loaded backend; the next call loads them again. */
export function disposeBackends(): Effect.Effect<void> {
  return Effect.gen(function* () {
    const pending = [...loads.values()];
    loads.clear();
    settled.clear();
    for (const p of pending) {
      const exit = yield* Effect.promise(() => p);
      if (Exit.isSuccess(exit)) yield* exit.value.dispose;
    }
  });
}
