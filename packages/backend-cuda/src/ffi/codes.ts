/** The C ABI's enum values (csrc/sageattn.h): sa_dtype, sa_layout and sa_flags. */
export const DTYPE_CODE = { f32: 0, f16: 1, bf16: 2 } as const;
export const LAYOUT_CODE = { HND: 0, NHD: 1 } as const;
export const FLAG = { causal: 1, lse: 2, pvF32: 4, noSmoothK: 8, kernelOnly: 16 } as const;
