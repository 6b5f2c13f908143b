/**
 * Deno's workers still keep the process alive on this branch (#11 item 2, fixed in the worker pool elsewhere): while
 * true, the Deno runs call dispose() before exiting. Flip to false once the pool fix is merged.
 */
export const DENO_NEEDS_DISPOSE = true;
