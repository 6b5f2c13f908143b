import type { AttentionOptions } from "./problem.js";

/**
 * Every option `attention` and `exactAttention` accept, in one place: `resolveProblem` rejects any other name.
 * The type check below fails to compile when AttentionOptions gains or loses a field this list does not.
 */
export const OPTION_NAMES = [
  "causal",
  "smScale",
  "returnLse",
  "mask",
  "varlen",
  "outputDtype",
  "pvAccumulation",
  "qkGranularity",
  "smoothK",
  "validate",
  "backend",
  "out",
] as const satisfies readonly (keyof AttentionOptions)[];

type Listed = (typeof OPTION_NAMES)[number];
type Unlisted = Exclude<keyof AttentionOptions, Listed>;
// Compiles only while every field of AttentionOptions is listed (Unlisted is never).
const everyOptionListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyOptionListed;

/** Edit distance (insert, delete, substitute, swap of neighbours), for did-you-mean suggestions. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from(
    { length: a.length + 1 },
    (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The known option name closest to `name` (case-insensitive, at most a third of its letters off), if any. */
export function suggestOption(name: string): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const known of OPTION_NAMES) {
    const dd = distance(name.toLowerCase(), known.toLowerCase());
    if (dd < bestD) {
      best = known;
      bestD = dd;
    }
  }
  return best;
}
