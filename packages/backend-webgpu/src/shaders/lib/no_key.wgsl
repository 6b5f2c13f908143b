// The "no key yet" sentinel, and how a row tells it from a key: shared by the attention kernels and the decode merge.
const NEG: f32 = -1.0e30; // finite, so that NEG − NEG is 0 and not NaN
// −∞ for the LSE of a row that sees no key. Read from a variable because WGSL forbids −∞ in a constant expression
// (Tint rejects `bitcast<f32>(0xff800000u)` at shader creation; naga let it through).
var<private> negInfBits: u32 = 0xff800000u;

// Whether a logit is a key's, not a masked key's NEG. Compared as bits, so that a NaN logit (a non-finite input's)
// counts as a key and shows in its row: a float comparison with NaN may compile as ordered, and be false.
fn is_key(s: f32) -> bool {
  return bitcast<u32>(s) != bitcast<u32>(NEG);
}

// Whether a row saw any key: its max moved off NEG, or its sum is not +0 (a NaN sum too: max() may drop a NaN logit
// from the row max, but not from the sum).
fn row_seen(m: f32, l: f32) -> bool {
  return is_key(m) || bitcast<u32>(l) != 0u;
}
