// The README example on fixed pseudo-random inputs, checked against exact attention; returns what a test asserts.
// Takes the API as an argument so that each entry (plain install, bundle, worker) imports it its own way.
export async function readmeExample({ attention, exactAttention, hostTensor, accuracy }) {
  const [B, H, N, D] = [1, 4, 256, 64];
  let seed = 12345;
  const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const tensor = () => hostTensor(Float32Array.from({ length: B * H * N * D }, next), [B, H, N, D]);
  const [q, k, v] = [tensor(), tensor(), tensor()];
  const { output, backend, rejected } = await attention(q, k, v, { causal: true });
  const exact = await exactAttention(q, k, v, { causal: true });
  const { cosine, relL1 } = accuracy(output.data, exact.output.data);
  return { backend, rejected: rejected.map((r) => `${r.backend}: ${r.reason}`), cosine, relL1 };
}
