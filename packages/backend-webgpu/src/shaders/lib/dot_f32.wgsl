// 32-channel dot product of f16 rows given as eight quads (two words each), in f32.
fn dot32(a: array<QUAD, 8>, b: array<QUAD, 8>) -> f32 {
  var x = vec2<f32>(0.0);
  for (var i = 0u; i < 8u; i++) { // unroll
    x = fma(unpack2x16float(a[i].x), unpack2x16float(b[i].x), x);
    x = fma(unpack2x16float(a[i].y), unpack2x16float(b[i].y), x);
  }
  return x.x + x.y;
}
