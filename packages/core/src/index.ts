export * from "./dtype.js";
export * from "./tensor.js";
export * from "./errors.js";
export * from "./problem.js";
export { OPTION_NAMES, suggestOption } from "./option-names.js";
export * from "./constants.js";
export * from "./schema.js";
export * from "./quantize.js";
export * from "./metrics.js";
export * from "./random.js";
export * from "./env.js";
export { exactReference, type Reference } from "./oracle-exact.js";
export { sageReference, roundF16Fast } from "./oracle-sage.js";
export * from "./backend.js";
export { jsBackend, jsProvider } from "./js-backend.js";
export {
  registerBackend,
  useBackends,
  discoverBackends,
  loadBackend,
  backendStatus,
  selectBackend,
  selectKvCacheBackend,
  disposeBackends,
  providersByPriority,
  KNOWN_BACKEND_PACKAGES,
  type Rejection,
  type BackendStatusRow,
} from "./registry.js";
export * from "./api.js";
export { kvCacheReference, type KvCacheSpec, type BackendKvCache, type KvCacheReference } from "./kv-cache.js";
export { createKvCache, kvCacheEffect, type KvCache, type KvCacheOptions, type AttendOptions } from "./kv-cache-api.js";
