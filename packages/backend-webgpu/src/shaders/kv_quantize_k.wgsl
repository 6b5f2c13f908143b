// K quantization of a KV cache append (DESIGN §2 step 2, decode spec): the 64-row K blocks the append touches are
// quantized in place, block for block as one-shot quantization with the cache's mean μ:
//   x = K − μ,  sK = max|x| / 127 over the block's rows present so far (1 when the max is 0),
//   Ki = round half away from zero (x / sK), clamped ±127, packed four int8 per u32 into [b·Hkv, capacity, DP/4].
// The first touched block may already hold rows (the cache's partial last block): those come from `tail`, the raw
// rows x of that block kept in f32, so the block is re-quantized from exact values, not from its int8 rows. When
// the append ends inside a block, that block's rows x (old and new) are written to the other tail slot; the host
// flips the slot every append, so reads and writes never share one.
// Grid: (blocks touched, B·Hkv). Workgroup 256 threads; thread i takes the block's words i, i+256, … (word w of
// row t is w + t·DP/4). Two sweeps: the block maximum, then the packed words (the loads hit cache).
// Knobs: none (≤ 64 rows per workgroup; a decode step touches one block per head).

//#include "generated/constants.wgsl"
//#include "generated/kv_quantize_k_params.wgsl"

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> mean: array<vec4<f32>>;           // [b·Hkv, DP/4]
@group(0) @binding(2) var<storage, read_write> k8: array<u32>;             // [b·Hkv, rows, DP/4]
@group(0) @binding(3) var<storage, read_write> scales: array<f32>;         // [b·Hkv, blocks]
@group(0) @binding(4) var<storage, read_write> tail: array<vec4<f32>>;     // [2, b·Hkv, 64, DP/4]
@group(0) @binding(5) var<uniform> params: Params;

//#include "lib/load_element.wgsl"

const THREADS: u32 = 256u;
//#include "lib/block_scale.wgsl"

// Row t of the block starting at cache row `first`, word w, minus the mean: from the tail (rows already in the
// cache) or from the appended K.
fn centered(bh: u32, first: u32, t: u32, w: u32, words: u32) -> vec4<f32> {
  let row = first + t;
  if (row < params.length) {
    return tail[((params.tailIn * params.bhs + bh) * K_BLOCK + t) * words + w];
  }
  let st = params.strides;
  let at = params.base + (bh / params.heads) * st.x + (bh % params.heads) * st.y + (row - params.length) * st.z;
  return load4(at, w * 4u, st.w, params.d) - mean[bh * words + w];
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let bh = wg.y;
  let words = params.dp / 4u;
  let block = params.length / K_BLOCK + wg.x;
  let first = block * K_BLOCK;
  let end = min(first + K_BLOCK, params.length + params.count);
  let tokens = end - first;

  var amax = 0.0;
  for (var i = lid; i < tokens * words; i += THREADS) {
    amax = max_abs4(amax, centered(bh, first, i / words, i % words, words));
  }
  let s = block_scale(lid, amax);
  if (lid == 0u) {
    scales[bh * params.blocks + block] = s;
  }

  let partial = tokens < K_BLOCK;
  let tailOut = ((1u - params.tailIn) * params.bhs + bh) * K_BLOCK * words;
  for (var i = lid; i < tokens * words; i += THREADS) {
    let x = centered(bh, first, i / words, i % words, words);
    k8[(bh * params.rows + first) * words + i] = pack4xI8(round_half_away(x / s));
    if (partial) {
      tail[tailOut + i] = x;
    }
  }
}
