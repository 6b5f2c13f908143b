/** The C ABI's enum values (csrc/sageattn.h): sa_dtype and sa_layout are core's codes, sa_flags is below. */
import { SA_FLAGS } from "@sageattn/core/schema";
export { DTYPE_CODE, LAYOUT_CODE } from "@sageattn/core";
/** The sa_flags bits TS sets, from core's schema (the build checks csrc/sageattn.h against the same table). */
export const FLAG = {
  causal: SA_FLAGS.causal,
  lse: SA_FLAGS.return_lse,
  pvF32: SA_FLAGS.pv_f32,
  noSmoothK: SA_FLAGS.no_smooth_k,
} as const;
