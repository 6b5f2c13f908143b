import { Effect } from "effect";
import { accuracy, exactReference, hostTensor, makeQKV, resolveProblem } from "@sageattn/core";
import { describe, expect, it } from "vitest";
import { toBSH } from "./peer.js";
import { groupQueryAttentionModel, multiHeadAttentionModel, ProtoWriter } from "@sageattn/core/onnx";

const ort = await import("onnxruntime-node").catch(() => undefined);

describe("protobuf encoding", () => {
  it("varints, negative int64, floats and nested messages as the wire format says", () => {
    expect(Array.from(new ProtoWriter().int(1, 150).finish())).toEqual([0x08, 0x96, 0x01]);
    expect(Array.from(new ProtoWriter().int(2, -1).finish())).toEqual([
      0x10,
      255,
      255,
      255,
      255,
      255,
      255,
      255,
      255,
      255,
      1,
    ]);
    expect(Array.from(new ProtoWriter().float(2, 1).finish())).toEqual([0x15, 0, 0, 0x80, 0x3f]);
    expect(Array.from(new ProtoWriter().message(3, (w) => w.string(1, "ab")).finish())).toEqual([
      0x1a,
      4,
      0x0a,
      2,
      0x61,
      0x62,
    ]);
  });
});

describe.skipIf(!ort)("the one-node MultiHeadAttention model in onnxruntime-node", () => {
  it.each([false, true])("matches core's exact oracle (causal %s)", async (causal) => {
    const B = 2, H = 3, N = 20, D = 8;
    const { q, k, v } = makeQKV({ B, Hq: H, Hkv: H, Nq: N, Nk: N, D }, "gaussian", 3);
    const scale = 0.3;
    const session = await ort!.InferenceSession.create(
      multiHeadAttentionModel({ heads: H, headDim: D, scale, causal, dtype: "f32" }),
    );
    const dims = [B, N, H * D];
    const t = (x: Float32Array) => new ort!.Tensor("float32", toBSH(x, B, H, N, D), dims);
    const out = await session.run({ query: t(q), key: t(k), value: t(v) });
    await session.release();
    expect(out.output.dims).toEqual(dims);
    const h = (x: Float32Array) => hostTensor(x, [B, H, N, D]);
    const p = Effect.runSync(resolveProblem(h(q), h(k), h(v), { causal, smScale: scale }));
    const want = toBSH(Float32Array.from(exactReference(p, q, k, v).output), B, H, N, D);
    expect(accuracy(out.output.data as Float32Array, want).maxAbs).toBeLessThan(1e-5);
  });
});

describe.skipIf(!ort)("the decode-step models (past K/V) in onnxruntime-node", () => {
  // One step: Nq new rows after `past` cached ones, against the exact oracle over all past + Nq keys (bottom-right).
  const B = 1, H = 4, Hkv = 2, past = 9, Nq = 3, D = 8, N = past + Nq, scale = 0.3;
  const { q, k, v } = makeQKV({ B, Hq: H, Hkv, Nq, Nk: N, D }, "gaussian", 5);
  /** Rows [from, to) of each head of a [1, heads, N, D] tensor, as [1, heads, to − from, D]. */
  const rows = (x: Float32Array, heads: number, from: number, to: number) => {
    const out = new Float32Array(heads * (to - from) * D);
    for (let h = 0; h < heads; h++) out.set(x.subarray((h * N + from) * D, (h * N + to) * D), h * (to - from) * D);
    return out;
  };
  /** Each kv head repeated H/Hkv times (MultiHeadAttention has no GQA). */
  const repeat = (x: Float32Array) => {
    const per = x.length / Hkv, out = new Float32Array(per * H);
    for (let h = 0; h < H; h++) {
      out.set(x.subarray(Math.floor(h / (H / Hkv)) * per, (Math.floor(h / (H / Hkv)) + 1) * per), h * per);
    }
    return out;
  };
  const want = () => {
    const h = (x: Float32Array, heads: number, n: number) => hostTensor(x, [B, heads, n, D]);
    const p = Effect.runSync(resolveProblem(h(q, H, Nq), h(k, Hkv, N), h(v, Hkv, N), { causal: true, smScale: scale }));
    return toBSH(Float32Array.from(exactReference(p, q, k, v).output), B, H, Nq, D);
  };

  it("MultiHeadAttention with past_key/past_value matches core's exact oracle", async () => {
    const session = await ort!.InferenceSession.create(
      multiHeadAttentionModel({ heads: H, headDim: D, scale, causal: true, dtype: "f32", past: true }),
    );
    const t = (x: Float32Array, dims: number[]) => new ort!.Tensor("float32", x, dims);
    const kAll = repeat(k), vAll = repeat(v);
    const kNew = (x: Float32Array) => toBSH(rows(x, H, past, N), B, H, Nq, D);
    const out = await session.run({
      query: t(toBSH(q, B, H, Nq, D), [B, Nq, H * D]),
      key: t(kNew(kAll), [B, Nq, H * D]),
      value: t(kNew(vAll), [B, Nq, H * D]),
      past_key: t(rows(kAll, H, 0, past), [B, H, past, D]),
      past_value: t(rows(vAll, H, 0, past), [B, H, past, D]),
    });
    await session.release();
    expect(out.present_key.dims).toEqual([B, H, N, D]);
    expect(accuracy(out.output.data as Float32Array, want()).maxAbs).toBeLessThan(1e-5);
  });

  it("GroupQueryAttention with past K/V (Hkv heads) matches core's exact oracle", async () => {
    const session = await ort!.InferenceSession.create(
      groupQueryAttentionModel({ heads: H, headsKv: Hkv, headDim: D, scale, dtype: "f32" }),
    );
    const t = (x: Float32Array, dims: number[]) => new ort!.Tensor("float32", x, dims);
    const kNew = (x: Float32Array) => toBSH(rows(x, Hkv, past, N), B, Hkv, Nq, D);
    const out = await session.run({
      query: t(toBSH(q, B, H, Nq, D), [B, Nq, H * D]),
      key: t(kNew(k), [B, Nq, Hkv * D]),
      value: t(kNew(v), [B, Nq, Hkv * D]),
      past_key: t(rows(k, Hkv, 0, past), [B, Hkv, past, D]),
      past_value: t(rows(v, Hkv, 0, past), [B, Hkv, past, D]),
      seqlens_k: new ort!.Tensor("int32", Int32Array.of(N - 1), [B]),
      total_sequence_length: new ort!.Tensor("int32", Int32Array.of(N), []),
    });
    await session.release();
    expect(accuracy(out.output.data as Float32Array, want()).maxAbs).toBeLessThan(1e-5);
  });
});
