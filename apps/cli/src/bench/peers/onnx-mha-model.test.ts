import { Effect } from "effect";
import { accuracy, exactReference, hostTensor, makeQKV, resolveProblem } from "@sageattn/core";
import { describe, expect, it } from "vitest";
import { toBSH } from "./peer.js";
import { multiHeadAttentionModel, ProtoWriter } from "@sageattn/core/onnx";

const ort = await import("onnxruntime-node").catch(() => undefined);

describe("protobuf encoding", () => {
  it("varints, negative int64, floats and nested messages as the wire format says", () => {
    expect(Array.from(new ProtoWriter().int(1, 150).finish())).toEqual([0x08, 0x96, 0x01]);
    expect(Array.from(new ProtoWriter().int(2, -1).finish())).toEqual([0x10, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1]);
    expect(Array.from(new ProtoWriter().float(2, 1).finish())).toEqual([0x15, 0, 0, 0x80, 0x3f]);
    expect(Array.from(new ProtoWriter().message(3, (w) => w.string(1, "ab")).finish())).toEqual([0x1a, 4, 0x0a, 2, 0x61, 0x62]);
  });
});

describe.skipIf(!ort)("the one-node MultiHeadAttention model in onnxruntime-node", () => {
  it.each([false, true])("matches core's exact oracle (causal %s)", async (causal) => {
    const B = 2, H = 3, N = 20, D = 8;
    const { q, k, v } = makeQKV({ B, Hq: H, Hkv: H, Nq: N, Nk: N, D }, "gaussian", 3);
    const scale = 0.3;
    const session = await ort!.InferenceSession.create(multiHeadAttentionModel({ heads: H, headDim: D, scale, causal, dtype: "f32" }));
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
