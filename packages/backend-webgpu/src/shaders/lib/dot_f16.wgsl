// 32-channel dot product of f16 rows given as eight quads: products summed in f16, then the four lanes in f32.
fn dot32(a: array<QUAD, 8>, b: array<QUAD, 8>) -> f32 {
  var h = a[0] * b[0];
  for (var i = 1u; i < 8u; i++) { // unroll
    h = fma(a[i], b[i], h);
  }
  let f = vec4<f32>(h);
  return (f.x + f.y) + (f.z + f.w);
}
