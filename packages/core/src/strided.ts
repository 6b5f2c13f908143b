import type { Shape4 } from "./tensor.js";

/** Calls `visit` with the storage index of every element the shape and strides address, until it returns false. */
export function forEachIndex(t: { shape: Shape4; strides: Shape4 }, visit: (i: number) => boolean): void {
  const [n0, n1, n2, n3] = t.shape;
  const [s0, s1, s2, s3] = t.strides;
  for (let a = 0; a < n0; a++) {
    for (let b = 0; b < n1; b++) {
      for (let c = 0; c < n2; c++) {
        const base = a * s0 + b * s1 + c * s2;
        for (let d = 0; d < n3; d++) if (!visit(base + d * s3)) return;
      }
    }
  }
}
