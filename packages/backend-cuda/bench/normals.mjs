// Seeded standard normals for the CPU studies in this folder (Box–Muller on a 32-bit mixing generator), so a
// study reads the same inputs on every run and machine.
export function normals(seed, n) {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  const x = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), th = 2 * Math.PI * u();
    x[i] = r * Math.cos(th);
    if (i + 1 < n) x[i + 1] = r * Math.sin(th);
  }
  return x;
}

// One head of the issue 16 studies' inputs: Gaussian q, k, v (n tokens × d channels) with a per-channel bias of
// N(0, 2²) added to every key. q and k in f64; v in f32, as the library's inputs.
export function kBiasHead(seed, n, d) {
  const q = normals(seed, n * d);
  const k = normals(seed + 1, n * d);
  const v = Float32Array.from(normals(seed + 2, n * d));
  const bias = normals(seed + 3, d);
  for (let j = 0; j < n; j++) for (let c = 0; c < d; c++) k[j * d + c] += 2 * bias[c];
  return { q, k, v };
}
