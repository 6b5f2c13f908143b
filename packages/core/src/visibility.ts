import { causalLimit, type Problem, type Segment } from "./problem.js";

/**
 * For one query row: how many keys of its segment causality leaves visible, and a function giving the mask's
 * additive bias (natural-log units; −∞ hides) for key j of that row. Shared by both oracles so they agree.
 */
export interface RowVisibility {
  readonly limit: number;
  readonly bias: ((j: number) => number) | undefined;
}

export function rowVisibility(p: Problem, seg: Segment, h: number, i: number): RowVisibility {
  const limit = p.causal ? causalLimit(i, seg.nq, seg.nk) : seg.nk;
  const m = p.mask;
  if (!m) return { limit, bias: undefined };
  const [mb, mh, nq, nk] = m.shape;
  const row = (((mb === 1 ? 0 : seg.b) * mh + (mh === 1 ? 0 : h)) * nq + seg.q0 + i) * nk + seg.k0;
  const data = m.data;
  const bias = m.kind === "boolean" ? (j: number) => (data[row + j] ? 0 : -Infinity) : (j: number) => data[row + j];
  return { limit, bias };
}
