// 16 int8 channels of a query row times those of a key (four packed words each), added to acc: four packed dots in
// one chain (each can take the running sum as its addend). Used by attention_int8.wgsl and attention_decode.wgsl.
fn dot16(q: vec4<u32>, k: vec4<u32>, acc: i32) -> i32 {
  var a = dot4I8Packed(q.x, k.x) + acc;
  a = dot4I8Packed(q.y, k.y) + a;
  a = dot4I8Packed(q.z, k.z) + a;
  return dot4I8Packed(q.w, k.w) + a;
}
