/**
 * The C ABI of libsageattn_cuda.so (csrc/sageattn.h), declared once for both runtimes: `toBun` and `toDeno` turn
 * it into `bun:ffi` and `Deno.dlopen` declarations. "buf" is JavaScript memory passed as a typed array; device
 * addresses and streams are u64 (bigint on this side).
 */
export type ArgType = "i32" | "u32" | "u64" | "f32" | "buf";
export type ReturnType = "i32" | "void";

export interface SymbolDef {
  readonly args: readonly ArgType[];
  readonly returns: ReturnType;
}

export const symbols = {
  // const char* sa_status_string(int32_t status) — not bound: messages come through sa_last_error, the same in both runtimes
  sa_last_error: { args: ["buf" /* char* buf */, "i32" /* int32_t cap */], returns: "i32" },
  sa_version: { args: [], returns: "i32" },
  sa_params_layout: { args: ["buf" /* int64_t* out */, "i32" /* int32_t cap */], returns: "i32" },
  sa_device_count: { args: ["buf" /* int32_t* count */], returns: "i32" },
  sa_set_device: { args: ["i32" /* int32_t device */], returns: "i32" },
  sa_device_query: {
    args: ["i32" /* int32_t device */, "buf" /* char* name */, "i32" /* int32_t name_cap */, "buf" /* int32_t* ints[4] */, "buf" /* uint64_t* mem[2] */],
    returns: "i32",
  },
  sa_stream_create: { args: ["buf" /* uint64_t* stream */], returns: "i32" },
  sa_stream_synchronize: { args: ["u64" /* uint64_t stream */], returns: "i32" },
  sa_stream_destroy: { args: ["u64" /* uint64_t stream */], returns: "i32" },
  sa_malloc: { args: ["u64" /* uint64_t bytes */, "u64" /* uint64_t stream */, "buf" /* uint64_t* ptr */], returns: "i32" },
  sa_free: { args: ["u64" /* uint64_t ptr */, "u64" /* uint64_t stream */], returns: "i32" },
  sa_mem_info: { args: ["buf" /* uint64_t* free_total[2] */], returns: "i32" },
  sa_memcpy_htod: { args: ["u64" /* uint64_t dst */, "buf" /* const void* src */, "u64" /* uint64_t bytes */, "u64" /* uint64_t stream */], returns: "i32" },
  sa_memcpy_dtoh: { args: ["buf" /* void* dst */, "u64" /* uint64_t src */, "u64" /* uint64_t bytes */, "u64" /* uint64_t stream */], returns: "i32" },
  sa_memcpy_dtod: { args: ["u64" /* uint64_t dst */, "u64" /* uint64_t src */, "u64" /* uint64_t bytes */, "u64" /* uint64_t stream */], returns: "i32" },
  sa_workspace_size: { args: ["buf" /* const sa_params* p */, "buf" /* uint64_t* bytes */], returns: "i32" },
  sa_attention: { args: ["buf" /* const sa_params* p */], returns: "i32" },
  sa_kv_params_layout: { args: ["buf" /* int64_t* out */, "i32" /* int32_t cap */], returns: "i32" },
  sa_kv_cache_size: { args: ["buf" /* const sa_kv_params* p */, "buf" /* uint64_t* bytes */], returns: "i32" },
  sa_kv_init: { args: ["buf" /* const sa_kv_params* p */], returns: "i32" },
  sa_kv_append: { args: ["buf" /* const sa_kv_params* p */], returns: "i32" },
  sa_kv_requantize: { args: ["buf" /* const sa_kv_params* p */], returns: "i32" },
  sa_kv_workspace_size: { args: ["buf" /* const sa_kv_params* p */, "buf" /* uint64_t* bytes */], returns: "i32" },
  sa_kv_attend: { args: ["buf" /* const sa_kv_params* p */], returns: "i32" },
} as const satisfies Record<string, SymbolDef>;

export type SymbolName = keyof typeof symbols;

/** A typed-array argument (JavaScript memory the native side reads or writes during the call). */
export type Buf = ArrayBufferView;

type ArgOf<T extends ArgType> = T extends "buf" ? Buf : T extends "u64" ? bigint : number;
type ArgsOf<A extends readonly ArgType[]> = { [I in keyof A]: A[I] extends ArgType ? ArgOf<A[I]> : never };

/** The library's functions as plain calls, whichever runtime opened it. */
export type Native = {
  [K in SymbolName]: (...args: ArgsOf<(typeof symbols)[K]["args"]>) => number;
};

const bunType: Record<ArgType | ReturnType, string> = { i32: "i32", u32: "u32", u64: "u64", f32: "f32", buf: "ptr", void: "void" };
const denoType: Record<ArgType | ReturnType, string> = { i32: "i32", u32: "u32", u64: "u64", f32: "f32", buf: "buffer", void: "void" };

export function toBun(): Record<string, { args: string[]; returns: string }> {
  return Object.fromEntries(Object.entries(symbols).map(([n, s]) => [n, { args: s.args.map((a) => bunType[a]), returns: bunType[s.returns] }]));
}

export function toDeno(): Record<string, { parameters: string[]; result: string }> {
  return Object.fromEntries(Object.entries(symbols).map(([n, s]) => [n, { parameters: s.args.map((a) => denoType[a]), result: denoType[s.returns] }]));
}
