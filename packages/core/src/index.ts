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
export { roundF16Fast, sageReference } from "./oracle-sage.js";
export * from "./backend.js";
export { jsBackend, jsProvider } from "./js-backend.js";
export {
  backendStatus,
  type BackendStatusRow,
  discoverBackends,
  disposeBackends,
  KNOWN_BACKEND_PACKAGES,
  loadBackend,
  providersByPriority,
  registerBackend,
  type Rejection,
  selectBackend,
  selectKvCacheBackend,
  useBackends,
} from "./registry.js";
export * from "./api.js";
export {
  type BackendKvCache,
  KV_VALUE_FORMATS,
  type KvCacheReference,
  kvCacheReference,
  type KvCacheSpec,
  type KvValueFormat,
} from "./kv-cache.js";
export { type AttendOptions, createKvCache, type KvCache, kvCacheEffect, type KvCacheOptions } from "./kv-cache-api.js";
