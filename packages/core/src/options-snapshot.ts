/**
 * An options object's own keys and values at one call, so a later call with the same object can tell whether the
 * caller changed it in place (core's repeated-call fast paths: `attention` and a KV cache's `attend`).
 */
export interface OptionsSnapshot {
  readonly keys: readonly string[];
  readonly values: readonly unknown[];
}

export function snapshotOf(options: object): OptionsSnapshot {
  const keys = Object.keys(options);
  return { keys, values: keys.map((key) => (options as Record<string, unknown>)[key]) };
}

/** The object holds exactly the keys and (identical) values it held when `s` was taken. */
export function unchangedSince(s: OptionsSnapshot, options: object): boolean {
  const keys = Object.keys(options);
  if (keys.length !== s.keys.length) return false;
  for (let i = 0; i < keys.length; i++) {
    if (keys[i] !== s.keys[i] || (options as Record<string, unknown>)[keys[i]] !== s.values[i]) return false;
  }
  return true;
}
