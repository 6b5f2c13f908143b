/** The C ABI's enum values (csrc/sageattn.h): sa_dtype and sa_layout are core's codes, sa_flags is below. */
export { DTYPE_CODE, LAYOUT_CODE } from "@sageattn/core";
/** sa_flags as TS sets them. SA_KERNEL_ONLY (16) is left out: nothing in TS sets it (scripts/gpu_check.py does). */
export const FLAG = { causal: 1, lse: 2, pvF32: 4, noSmoothK: 8 } as const;
