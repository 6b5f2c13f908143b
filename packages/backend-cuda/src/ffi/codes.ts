/** The C ABI's enum values (csrc/sageattn.h): sa_dtype and sa_layout are core's codes, sa_flags is below. */
import type { Problem, QkGranularity } from "@sageattn/core";
import { SA_FLAGS } from "@sageattn/core/schema";
export { DTYPE_CODE, LAYOUT_CODE } from "@sageattn/core";
/** The sa_flags bits TS sets, from core's schema (the build checks csrc/sageattn.h against the same table). */
export const FLAG = {
  causal: SA_FLAGS.causal,
  lse: SA_FLAGS.return_lse,
  pvF32: SA_FLAGS.pv_f32,
  pvAuto: SA_FLAGS.pv_auto,
  noSmoothK: SA_FLAGS.no_smooth_k,
  qkWarp: SA_FLAGS.qk_warp,
  qkRow: SA_FLAGS.qk_row,
  qkThread: SA_FLAGS.qk_thread,
  kvValuesInt8: SA_FLAGS.kv_values_int8,
  pvInt8: SA_FLAGS.pv_int8,
  pvFp8: SA_FLAGS.pv_fp8,
} as const;

/** The flag of each Q/K granularity ("block", the default, has none). */
const QK_FLAG: Readonly<Record<QkGranularity, number>> = {
  block: 0,
  warp: FLAG.qkWarp,
  row: FLAG.qkRow,
  thread: FLAG.qkThread,
};

/** The flag of each P·V accumulation ("f16-block" has none: the library's default without pv_auto). */
const PV_FLAG: Readonly<Record<Problem["pvAccumulation"], number>> = {
  "f16-block": 0,
  f32: FLAG.pvF32,
  int8: FLAG.pvInt8,
  fp8: FLAG.pvFp8,
};

/**
 * sa_params.flags for an attention call. A call that leaves the P·V accumulation out sets pv_auto, and the library
 * takes the faster of its two for the kernel it runs (f32 on the Hopper kernel); one that names "f32" forces it.
 */
export function attentionFlags(
  p: Pick<Problem, "causal" | "returnLse" | "pvAccumulation" | "pvAuto" | "smoothK" | "qkGranularity">,
): number {
  return (p.causal ? FLAG.causal : 0) | (p.returnLse ? FLAG.lse : 0) |
    PV_FLAG[p.pvAccumulation] |
    (p.pvAuto ? FLAG.pvAuto : 0) | (p.smoothK ? 0 : FLAG.noSmoothK) |
    QK_FLAG[p.qkGranularity];
}
