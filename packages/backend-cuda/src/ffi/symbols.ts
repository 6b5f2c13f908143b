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
  // int32_t sa_last_error(char* buf, int32_t cap)
  sa_last_error: { args: ["buf", "i32"], returns: "i32" },
  // int32_t sa_version()
  sa_version: { args: [], returns: "i32" },
  // int32_t sa_params_layout(int64_t* out, int32_t cap)
  sa_params_layout: { args: ["buf", "i32"], returns: "i32" },
  // int32_t sa_device_count(int32_t* count)
  sa_device_count: { args: ["buf"], returns: "i32" },
  // int32_t sa_set_device(int32_t device)
  sa_set_device: { args: ["i32"], returns: "i32" },
  // int32_t sa_device_query(int32_t device, char* name, int32_t name_cap, int32_t* ints[4], uint64_t* mem[2])
  sa_device_query: { args: ["i32", "buf", "i32", "buf", "buf"], returns: "i32" },
  // int32_t sa_stream_create(uint64_t* stream)
  sa_stream_create: { args: ["buf"], returns: "i32" },
  // int32_t sa_stream_synchronize(uint64_t stream)
  sa_stream_synchronize: { args: ["u64"], returns: "i32" },
  // int32_t sa_stream_destroy(uint64_t stream)
  sa_stream_destroy: { args: ["u64"], returns: "i32" },
  // int32_t sa_malloc(uint64_t bytes, uint64_t stream, uint64_t* ptr)
  sa_malloc: { args: ["u64", "u64", "buf"], returns: "i32" },
  // int32_t sa_free(uint64_t ptr, uint64_t stream)
  sa_free: { args: ["u64", "u64"], returns: "i32" },
  // int32_t sa_mem_info(uint64_t* free_total[2])
  sa_mem_info: { args: ["buf"], returns: "i32" },
  // int32_t sa_memcpy_htod(uint64_t dst, const void* src, uint64_t bytes, uint64_t stream)
  sa_memcpy_htod: { args: ["u64", "buf", "u64", "u64"], returns: "i32" },
  // int32_t sa_memcpy_dtoh(void* dst, uint64_t src, uint64_t bytes, uint64_t stream)
  sa_memcpy_dtoh: { args: ["buf", "u64", "u64", "u64"], returns: "i32" },
  // int32_t sa_memcpy_dtod(uint64_t dst, uint64_t src, uint64_t bytes, uint64_t stream)
  sa_memcpy_dtod: { args: ["u64", "u64", "u64", "u64"], returns: "i32" },
  // int32_t sa_workspace_size(const sa_params* p, uint64_t* bytes)
  sa_workspace_size: { args: ["buf", "buf"], returns: "i32" },
  // int32_t sa_attention(const sa_params* p)
  sa_attention: { args: ["buf"], returns: "i32" },
  // int32_t sa_kv_params_layout(int64_t* out, int32_t cap)
  sa_kv_params_layout: { args: ["buf", "i32"], returns: "i32" },
  // int32_t sa_kv_cache_size(const sa_kv_params* p, uint64_t* bytes)
  sa_kv_cache_size: { args: ["buf", "buf"], returns: "i32" },
  // int32_t sa_kv_init(const sa_kv_params* p)
  sa_kv_init: { args: ["buf"], returns: "i32" },
  // int32_t sa_kv_append(const sa_kv_params* p)
  sa_kv_append: { args: ["buf"], returns: "i32" },
  // int32_t sa_kv_requantize(const sa_kv_params* p)
  sa_kv_requantize: { args: ["buf"], returns: "i32" },
  // int32_t sa_kv_workspace_size(const sa_kv_params* p, uint64_t* bytes)
  sa_kv_workspace_size: { args: ["buf", "buf"], returns: "i32" },
  // int32_t sa_kv_attend(const sa_kv_params* p)
  sa_kv_attend: { args: ["buf"], returns: "i32" },
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

const bunType: Record<ArgType | ReturnType, string> = {
  i32: "i32",
  u32: "u32",
  u64: "u64",
  f32: "f32",
  buf: "ptr",
  void: "void",
};
const denoType: Record<ArgType | ReturnType, string> = {
  i32: "i32",
  u32: "u32",
  u64: "u64",
  f32: "f32",
  buf: "buffer",
  void: "void",
};

export function toBun(): Record<string, { args: string[]; returns: string }> {
  return Object.fromEntries(
    Object.entries(symbols).map(([n, s]) => [n, { args: s.args.map((a) => bunType[a]), returns: bunType[s.returns] }]),
  );
}

export function toDeno(): Record<string, { parameters: string[]; result: string }> {
  return Object.fromEntries(
    Object.entries(symbols).map(([n, s]) => [n, {
      parameters: s.args.map((a) => denoType[a]),
      result: denoType[s.returns],
    }]),
  );
}
