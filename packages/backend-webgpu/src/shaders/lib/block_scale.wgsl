// INT8 block quantization shared by quantize_int8.wgsl and kv_quantize_k.wgsl: the scale and the rounding.
// A block's INT8 scale (DESIGN §2 step 2) from each invocation's running max|x|: s = max / 127, 1 when the max is 0,
// and NaN when any value was not finite (NaN or ±∞), so that the logits it scales come out NaN and the rows that
// see them show it, as core's quantizeRows does. Values are told non-finite by their exponent bits: WGSL lets a
// compiler assume floats are finite, so `x != x` may fold to false. The includer defines THREADS, its workgroup size.
var<workgroup> reduce: array<f32, THREADS>;
// ∞ and NaN read from variables: WGSL forbids them in constant expressions.
var<private> infBits: u32 = 0x7f800000u;
var<private> nanBits: u32 = 0x7fc00000u;

// The running max|x| over four more values; ∞ from the first value that is not finite on.
fn max_abs4(amax: f32, x: vec4<f32>) -> f32 {
  if (any((bitcast<vec4<u32>>(x) & vec4<u32>(0x7f800000u)) == vec4<u32>(0x7f800000u))) {
    return bitcast<f32>(infBits);
  }
  let a = abs(x);
  return max(amax, max(max(a.x, a.y), max(a.z, a.w)));
}

// Every invocation's running max in, the block's scale out to all of them.
fn block_scale(lid: u32, amax: f32) -> f32 {
  reduce[lid] = amax;
  workgroupBarrier();
  for (var stride = THREADS / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) {
      reduce[lid] = max(reduce[lid], reduce[lid + stride]);
    }
    workgroupBarrier();
  }
  let m = reduce[0];
  if ((bitcast<u32>(m) & 0x7f800000u) == 0x7f800000u) {
    return bitcast<f32>(nanBits);
  }
  return select(m / INT8_MAX, 1.0, m == 0.0);
}

// y = x / s rounded half away from zero into [−127, 127], as core's quantizeRows rounds: the block's INT8 values.
fn round_half_away(y: vec4<f32>) -> vec4<i32> {
  return vec4<i32>(clamp(sign(y) * floor(abs(y) + 0.5), vec4<f32>(-INT8_MAX), vec4<f32>(INT8_MAX)));
}
