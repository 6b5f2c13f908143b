// sa_params packing on this side (runs everywhere; the library's own offsets are compared in native.test.ts).
import { describe, expect, it } from "vitest";
import { Effect } from "effect";
import {
  type AttentionOptions,
  hostTensor,
  layoutOf,
  type ParamSchema,
  resolveProblem,
  SA_FLAGS,
  SA_PARAMS,
} from "@sageattn/core";
import { attentionFlags } from "./ffi/codes.js";
import { PARAMS_FIELDS, PARAMS_SIZE, ParamsBuffer, verifyLayout } from "./ffi/params.js";
import type { Native } from "./ffi/symbols.js";

/** A library whose sa_params_layout reports the C layout of `schema` (the header as it might have changed). */
const libraryWith = (schema: ParamSchema): Native => {
  const l = layoutOf(schema);
  return {
    sa_params_layout: (out: BigInt64Array, cap: number) => {
      const values = [l.size, ...l.fields.map((f) => f.offset)];
      values.slice(0, cap).forEach((v, i) => (out[i] = BigInt(v)));
      return Math.min(cap, values.length);
    },
  } as unknown as Native;
};

describe("sa_params packing", () => {
  it("lays fields out with C's natural alignment, in declaration order", () => {
    let at = 0;
    for (const [name, kind, offset] of PARAMS_FIELDS) {
      const size = kind === "i64x4" ? 32 : kind === "u64" ? 8 : 4;
      const align = kind === "u64" || kind === "i64x4" ? 8 : 4;
      at = Math.ceil(at / align) * align;
      expect(offset, name).toBe(at);
      at += size;
    }
    expect(Math.ceil(at / 8) * 8).toBe(PARAMS_SIZE);
  });

  it("accepts a library laid out as core's SA_PARAMS schema, and names the field where a changed header differs", () => {
    expect(verifyLayout(libraryWith(SA_PARAMS))).toBeUndefined();
    // The header widens heads_q to int64: it moves to the next 8-byte boundary, and is the field named.
    const moved = SA_PARAMS.fields.map((f) => (f.name === "heads_q" ? { ...f, type: "u64" as const } : f));
    expect(verifyLayout(libraryWith({ ...SA_PARAMS, fields: moved }))).toBe(
      "sa_params.heads_q is at byte 216, core's SA_PARAMS schema puts it at 212",
    );
    // A trailing field the schema lacks: every offset agrees, the size does not.
    const longer: ParamSchema = { ...SA_PARAMS, fields: [...SA_PARAMS.fields, { name: "window", type: "u64" }] };
    expect(verifyLayout(libraryWith(longer))).toBe("sizeof(sa_params) is 272, core's SA_PARAMS schema gives 264");
  });

  it("writes strides over 2^32 as exact int64 and pointers as u64", () => {
    const pb = new ParamsBuffer().clear();
    pb.setStrides("k_strides", [2 ** 40 + 3, 4096, 1, 0]).setU64("o", 0xdead_beef_0000_1000n).setF32("sm_scale", 0.125);
    const view = new DataView(pb.bytes.buffer);
    expect(view.getBigInt64(112, true)).toBe(BigInt(2 ** 40 + 3));
    expect(view.getBigInt64(120, true)).toBe(4096n);
    expect(view.getBigInt64(128, true)).toBe(1n);
    expect(view.getBigUint64(24, true)).toBe(0xdead_beef_0000_1000n);
    expect(view.getFloat32(260, true)).toBe(0.125);
  });

  it("reports a changed shape or flag for the workspace-size cache, and only then", () => {
    const saved = ParamsBuffer.sizeFields();
    const pb = new ParamsBuffer().clear().setI32("batch", 2).setI32("seqlen_q", 300).setU32("flags", 1);
    expect(pb.sameSizeAs(saved)).toBe(false);
    expect(pb.sameSizeAs(saved)).toBe(true);
    pb.setU32("flags", 3);
    expect(pb.sameSizeAs(saved)).toBe(false);
    pb.setU64("cu_seqlens_q", 4096n);
    expect(pb.sameSizeAs(saved)).toBe(false);
    expect(pb.sameSizeAs(saved)).toBe(true);
  });
});

describe("sa_params flags", () => {
  const t = hostTensor(new Float32Array(2 * 4 * 8), [1, 2, 4, 8]);
  const flags = (options: AttentionOptions) => attentionFlags(Effect.runSync(resolveProblem(t, t, t, options)));

  it("leaves the P·V accumulation to the library only when the call does not name one", () => {
    expect(flags({})).toBe(SA_FLAGS.pv_auto);
    expect(flags({ pvAccumulation: "f16-block" })).toBe(0);
    expect(flags({ pvAccumulation: "f32" })).toBe(SA_FLAGS.pv_f32);
    expect(flags({ pvAccumulation: "int8" })).toBe(SA_FLAGS.pv_int8);
    expect(flags({ pvAccumulation: "fp8" })).toBe(SA_FLAGS.pv_fp8);
  });

  it("sets one bit per option", () => {
    expect(flags({ causal: true, returnLse: true, smoothK: false, pvAccumulation: "f32" })).toBe(
      SA_FLAGS.causal | SA_FLAGS.return_lse | SA_FLAGS.no_smooth_k | SA_FLAGS.pv_f32,
    );
  });

  it("names the granularity in one of three bits, none for the default", () => {
    expect(flags({ pvAccumulation: "f32", qkGranularity: "block" })).toBe(SA_FLAGS.pv_f32);
    expect(flags({ pvAccumulation: "f32", qkGranularity: "warp" })).toBe(SA_FLAGS.pv_f32 | SA_FLAGS.qk_warp);
    expect(flags({ pvAccumulation: "f32", qkGranularity: "row" })).toBe(SA_FLAGS.pv_f32 | SA_FLAGS.qk_row);
    expect(flags({ pvAccumulation: "f32", qkGranularity: "thread" })).toBe(SA_FLAGS.pv_f32 | SA_FLAGS.qk_thread);
  });
});
