// One sequence of the problem (a batch entry, or a varlen sequence with B = 1). Quantization blocks restart per
// segment; qBlockBase/kBlockBase are where its blocks start among the blocks of one (b, head).
struct Segment {
  b: u32,
  q0: u32,
  nq: u32,
  k0: u32,
  nk: u32,
  qBlockBase: u32,
  kBlockBase: u32,
  pad: u32,
}
