/** Milliseconds with three significant digits ("0.812 ms", "41.3 ms", "1250 ms"). */
export function formatMs(ms: number): string {
  return `${ms >= 1000 ? ms.toFixed(0) : ms.toPrecision(3)} ms`;
}

/** Throughput in the unit that keeps it readable: TOPS on a GPU, GOPS on a CPU or a slow adapter. */
export function formatOps(tops: number): string {
  if (tops >= 1) return `${tops.toPrecision(3)} TOPS`;
  return `${(tops * 1000).toPrecision(3)} GOPS`;
}

/** How close cosine is to 1 matters, so show enough nines. */
export function formatCosine(c: number): string {
  return c.toFixed(6);
}

export function formatSmall(x: number): string {
  return x === 0 ? "0" : x.toExponential(2);
}
