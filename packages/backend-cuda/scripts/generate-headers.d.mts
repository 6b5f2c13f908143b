import type { ParamSchema } from "@sageattn/core/schema";

/** csrc/generated/core_constants.h: core's constants and codes as constexprs. */
export function constantsHeader(): string;
/** csrc/generated/abi_checks.h: static_asserts pinning sageattn.h's structs and enums to these schemas. */
export function abiChecksHeader(params?: ParamSchema, kvParams?: ParamSchema): string;
