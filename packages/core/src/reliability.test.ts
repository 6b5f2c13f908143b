// Issue #12: bad input fails with a tagged InvalidInput naming the field; unvalidated NaN/inf propagate; nothing
// throws untagged and nothing scans a huge tensor before its size is checked.
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { attention, exactAttention } from "./api.js";
import { f32ToBf16Bits } from "./dtype.js";
import { createKvCache } from "./kv-cache-api.js";
import { jsBackend } from "./js-backend.js";
import { registerBackend } from "./registry.js";
import type { AttentionBackend } from "./backend.js";
import { OPTION_NAMES, suggestOption } from "./option-names.js";
import { type HostTensor, hostTensor, type Shape4 } from "./tensor.js";
import { type AttentionOptions, resolveProblem, selfOverlapping } from "./problem.js";

const f32 = (shape: Shape4, fill = 0.5) =>
  hostTensor(new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]).fill(fill), shape);
const small = (): [HostTensor, HostTensor, HostTensor] => [f32([1, 2, 8, 16]), f32([1, 2, 8, 16]), f32([1, 2, 8, 16])];

/** The tagged error a call rejects with (fails the test when it resolves or throws something untagged). */
async function failure(p: Promise<unknown>): Promise<{ _tag: string; reason: string; message: string }> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e, "the call should have failed").toBeDefined();
  expect(typeof (e as { _tag?: unknown })._tag, `untagged: ${String(e)}`).toBe("string");
  return e as { _tag: string; reason: string; message: string };
}

const both = (q: HostTensor, k: HostTensor, v: HostTensor, o: unknown) =>
  [
    ["attention", () => attention(q, k, v, { backend: "js", ...(o as object) })],
    ["exactAttention", () => exactAttention(q, k, v, o as AttentionOptions)],
  ] as const;

describe("case 4: tensor rank", () => {
  it("hostTensor rejects a fifth dimension as InvalidInput instead of dropping it", () => {
    let caught: unknown;
    try {
      hostTensor(new Float32Array(256), [1, 1, 2, 128, 64] as unknown as Shape4);
    } catch (e) {
      caught = e;
    }
    expect(caught).toMatchObject({ _tag: "InvalidInput", reason: "InvalidShape" });
  });
  it("hostTensor rejects three dimensions and three strides", () => {
    expect(() => hostTensor(new Float32Array(8), [2, 2, 2] as unknown as Shape4)).toThrow(/4 dimensions/);
    expect(() => hostTensor(new Float32Array(8), [1, 1, 2, 4], { strides: [8, 4, 1] as unknown as Shape4 })).toThrow(
      /strides/,
    );
  });
});

describe("case 5: finite values that would overflow", () => {
  it("smScale 1e38 (smScale·log2e overflows f32) is OutOfRange naming smScale, for both entry points", async () => {
    for (const [name, call] of both(...small(), { smScale: 1e38 })) {
      const e = await failure(call());
      expect(e, name).toMatchObject({ _tag: "InvalidInput", reason: "OutOfRange" });
      expect(e.message).toMatch(/smScale/);
    }
  });
  it("an additive mask of 3e38 is OutOfRange naming the mask; −inf still hides", async () => {
    const [q, k, v] = small();
    const data = new Float32Array(64).fill(0);
    data[5] = 3e38;
    const e = await failure(
      attention(q, k, v, { backend: "js", mask: { kind: "additive", data, shape: [1, 1, 8, 8] } }),
    );
    expect(e).toMatchObject({ _tag: "InvalidInput", reason: "OutOfRange" });
    expect(e.message).toMatch(/mask\[5\]/);
    data[5] = -Infinity;
    await expect(attention(q, k, v, { backend: "js", mask: { kind: "additive", data, shape: [1, 1, 8, 8] } })).resolves
      .toBeDefined();
  });
  it("q and k whose logits overflow f32 are OutOfRange naming q and k", async () => {
    const [q, k, v] = [f32([1, 1, 4, 16], 1e20), f32([1, 1, 4, 16], 1e20), f32([1, 1, 4, 16])];
    for (const [name, call] of both(q, k, v, {})) {
      const e = await failure(call());
      expect(e, name).toMatchObject({ _tag: "InvalidInput", reason: "OutOfRange" });
      expect(e.message).toMatch(/q and k/);
    }
  });
  it("V near f32 max: OutOfRange naming v on the sage path, and finite from the exact path", async () => {
    const [q, k] = [f32([1, 1, 4, 16]), f32([1, 1, 4, 16])];
    const v = f32([1, 1, 4, 16], 3e38);
    const e = await failure(attention(q, k, v, { backend: "js" }));
    expect(e).toMatchObject({ _tag: "InvalidInput", reason: "OutOfRange" });
    expect(e.message).toMatch(/^v holds/);
    const exact = await exactAttention(q, k, v);
    expect(Array.from(exact.output.data as Float32Array).every(Number.isFinite)).toBe(true);
  });
  it("V of 2000 (f16 partial sums over a 64-key block would overflow): f32 accumulation unless f16-block is asked for", async () => {
    const [q, k] = [f32([1, 1, 64, 16]), f32([1, 1, 64, 16])];
    const v = f32([1, 1, 64, 16], 2000);
    expect(await failure(attention(q, k, v, { backend: "js", pvAccumulation: "f16-block" }))).toMatchObject({
      reason: "OutOfRange",
    });
    expect(Effect.runSync(resolveProblem(q, k, v, {})).pvAccumulation).toBe("f32");
    expect(Effect.runSync(resolveProblem(q, k, f32([1, 1, 64, 16], 1000), {})).pvAccumulation).toBe("f16-block");
    for (const options of [{}, { pvAccumulation: "f32" as const }, { validate: false }]) {
      const r = await attention(q, k, v, { backend: "js", ...options });
      expect(Array.from(r.output.data as Float32Array).every((x) => Math.abs(x - 2000) < 2)).toBe(true);
    }
  });
  it("validate: false still widens for a large host V on a backend summing f16 blocks, and only there", async () => {
    const [q, k] = [f32([1, 1, 64, 16]), f32([1, 1, 64, 16])];
    const seen: string[] = [];
    const spy: AttentionBackend = {
      ...jsBackend,
      name: "pv-seen",
      attention: (p, q, k, v) => (seen.push(p.pvAccumulation), jsBackend.attention(p, q, k, v)),
    };
    registerBackend({ name: "pv-seen", priority: -1, load: Effect.succeed(spy) });
    for (const fill of [2000, 1000]) {
      await attention(q, k, f32([1, 1, 64, 16], fill), { backend: "pv-seen", validate: false });
    }
    expect(seen).toEqual(["f32", "f16-block"]);
  });
});

describe("case 6: validate: false propagates NaN and inf", () => {
  const poisoned = (at: "q" | "k" | "v", value: number) => {
    const t = [f32([1, 1, 200, 16]), f32([1, 1, 70, 16]), f32([1, 1, 70, 16])];
    for (const x of t) (x.data as Float32Array).forEach((_, i, a) => (a[i] = Math.sin(i * 0.7)));
    (t[["q", "k", "v"].indexOf(at)].data as Float32Array)[3 * 16 + 2] = value;
    return t as [HostTensor, HostTensor, HostTensor];
  };
  for (const at of ["q", "k", "v"] as const) {
    for (const value of [NaN, Infinity]) {
      it(`${value} in ${at} reaches the output of both oracles (and the row it is in, for q)`, async () => {
        const [q, k, v] = poisoned(at, value);
        for (
          const r of [
            await attention(q, k, v, { backend: "js", validate: false }),
            await exactAttention(q, k, v, { validate: false }),
          ]
        ) {
          const out = r.output.data as Float32Array;
          const row3 = Array.from(out.subarray(3 * 16, 4 * 16));
          expect(row3.some((x) => !Number.isFinite(x)), `row 3 of ${r.backend}`).toBe(true);
          if (at !== "q") expect(Array.from(out).filter((x) => !Number.isFinite(x)).length).toBeGreaterThan(16);
        }
      });
    }
  }
});

describe("case 7: size checks come before any O(size) work", () => {
  it("a 2^60-element zero-stride tensor fails at once as InvalidShape", async () => {
    const huge = hostTensor(new Float32Array(16), [1, 1 << 30, 1 << 30, 16], { strides: [0, 0, 0, 1] });
    const [q] = small();
    for (const [name, call] of both(huge, huge, huge, {})) {
      expect(await failure(call()), name).toMatchObject({ _tag: "InvalidInput", reason: "InvalidShape" });
    }
    expect(await failure(attention(q, huge, huge, { backend: "js" }))).toMatchObject({ reason: "InvalidShape" });
  });
  it("a 2^33-element broadcast tensor (over the host limit) fails as InvalidShape", async () => {
    const big = hostTensor(new Float32Array(64), [1, 2, 1 << 26, 64], { strides: [0, 0, 0, 1] });
    expect(await failure(exactAttention(big, big, big))).toMatchObject({ reason: "InvalidShape" });
  });
  it("strides that overflow an index fail as InvalidShape", async () => {
    const t = hostTensor(new Float32Array(16), [1, 1, 4, 4], { strides: [0, 0, 2 ** 52, 1] });
    expect(await failure(exactAttention(t, t, t))).toMatchObject({ reason: "InvalidShape" });
  });
});

describe("case 8: dtype strings", () => {
  for (
    const [name, call] of both(
      hostTensor(new Uint16Array(256), [1, 2, 8, 16], { dtype: "f64" as never }),
      hostTensor(new Uint16Array(256), [1, 2, 8, 16], { dtype: "f64" as never }),
      hostTensor(new Uint16Array(256), [1, 2, 8, 16], { dtype: "f64" as never }),
      {},
    )
  ) {
    it(`${name} rejects dtype "f64" as DTypeMismatch naming q`, async () => {
      const e = await failure(call());
      expect(e).toMatchObject({ _tag: "InvalidInput", reason: "DTypeMismatch" });
      expect(e.message).toMatch(/^q has unknown dtype "f64"/);
    });
  }
  it("attention without a backend says InvalidInput too, not NoBackend", async () => {
    const t = hostTensor(new Uint16Array(256), [1, 2, 8, 16], { dtype: "f64" as never });
    expect(await failure(attention(t, t, t))).toMatchObject({ _tag: "InvalidInput" });
  });
  it("bf16 inputs still work (the check knows every dtype)", async () => {
    const t = hostTensor(new Uint16Array(256).fill(f32ToBf16Bits(0.5)), [1, 2, 8, 16], { dtype: "bf16" });
    await expect(exactAttention(t, t, t)).resolves.toMatchObject({ backend: "js" });
  });
});

describe("case 9: tagged errors, messages, option names", () => {
  it("a mask without a shape is InvalidMask", async () => {
    const [q, k, v] = small();
    const e = await failure(
      attention(q, k, v, { backend: "js", mask: { kind: "boolean", data: new Uint8Array(64) } as never }),
    );
    expect(e).toMatchObject({ _tag: "InvalidInput", reason: "InvalidMask" });
  });
  it("options = null and options = 3 are InvalidOption", async () => {
    const [q, k, v] = small();
    for (const o of [null, 3]) {
      expect(await failure(exactAttention(q, k, v, o as never))).toMatchObject({
        _tag: "InvalidInput",
        reason: "InvalidOption",
      });
      expect(await failure(attention(q, k, v, o as never))).toMatchObject({
        _tag: "InvalidInput",
        reason: "InvalidOption",
      });
    }
  });
  it("a mask of the wrong element type says what it must hold and what it got", async () => {
    const [q, k, v] = small();
    const e = await failure(
      attention(q, k, v, { backend: "js", mask: { kind: "boolean", data: new Float32Array(64), shape: [1, 1, 8, 8] } }),
    );
    expect(e.message).toBe("a boolean mask must hold a Uint8Array, got Float32Array");
  });
  it("a mask whose data does not match its shape says both", async () => {
    const [q, k, v] = small();
    const e = await failure(
      attention(q, k, v, { backend: "js", mask: { kind: "boolean", data: new Uint8Array(60), shape: [1, 1, 8, 8] } }),
    );
    expect(e.message).toBe("mask shape [1,1,8,8] needs 64 elements, it holds 60");
  });
  it("a misspelled option is rejected with a did-you-mean", async () => {
    const [q, k, v] = small();
    const e = await failure(attention(q, k, v, { casual: true } as never));
    expect(e).toMatchObject({ _tag: "InvalidInput", reason: "InvalidOption" });
    expect(e.message).toBe('unknown option "casual"; did you mean "causal"?');
    expect((await failure(exactAttention(q, k, v, { smscale: 1 } as never))).message).toMatch(/did you mean "smScale"/);
    expect((await failure(exactAttention(q, k, v, { zzzzzzzz: 1 } as never))).message).toBe(
      'unknown option "zzzzzzzz"',
    );
  });
  it("an option of the wrong type is InvalidOption", async () => {
    const [q, k, v] = small();
    expect(await failure(exactAttention(q, k, v, { causal: "yes" } as never))).toMatchObject({
      reason: "InvalidOption",
    });
  });
  it('backend: "" is InvalidOption (it read as auto-selection), for attention and a KV cache', async () => {
    const [q, k, v] = small();
    const e = await failure(attention(q, k, v, { backend: "" }));
    expect(e).toMatchObject({ _tag: "InvalidInput", reason: "InvalidOption" });
    expect(e.message).toMatch(/^backend must be a backend name/);
    const cache = failure(createKvCache({ batch: 1, headsKv: 2, headDim: 16, capacity: 8, backend: "" }));
    expect(await cache).toMatchObject({ reason: "InvalidOption" });
  });
  it("every listed option name is accepted and suggests itself", async () => {
    for (const name of OPTION_NAMES) expect(suggestOption(name)).toBe(name);
    const [q, k, v] = small();
    await expect(exactAttention(q, k, v, Object.fromEntries(OPTION_NAMES.map((n) => [n, undefined])))).resolves
      .toBeDefined();
  });
});

describe("out whose elements share addresses", () => {
  const [q, k, v] = [f32([1, 2, 16, 8], 0.25), f32([1, 2, 16, 8], 0.5), f32([1, 2, 16, 8], 0.75)];
  for (
    const [strides, length] of [[[0, 0, 0, 1], 8], [[64, 32, 2, 1], 70], [[256, 8, 8, 1], 512]] as Array<
      [Shape4, number]
    >
  ) {
    it(`strides ${JSON.stringify(strides)} are InvalidShape naming out, before any work`, async () => {
      const out = hostTensor(new Float32Array(length), [1, 2, 16, 8], { strides });
      const e = await failure(attention(q, k, v, { backend: "js", out }));
      expect(e).toMatchObject({ _tag: "InvalidInput", reason: "InvalidShape" });
      expect(e.message).toMatch(/^out's strides/);
    });
  }
  it("padded and transposed strides are taken, and the result lands in them", async () => {
    for (const strides of [[512, 256, 16, 1], [256, 8, 16, 1]] as Shape4[]) {
      const data = new Float32Array(512);
      const out = hostTensor(data, [1, 2, 16, 8], { strides });
      await attention(q, k, v, { backend: "js", out });
      expect(data[strides[1] + 3 * strides[2] + 5 * strides[3]]).toBeCloseTo(0.75, 3);
    }
  });
  it("selfOverlapping: broadcast and interleaved strides overlap; contiguous, padded and permuted do not", () => {
    expect(selfOverlapping([2, 3], [0, 1])).toBe(true);
    expect(selfOverlapping([4, 4], [2, 1])).toBe(true);
    expect(selfOverlapping([4, 4], [4, 1])).toBe(false);
    expect(selfOverlapping([4, 4], [1, 4])).toBe(false);
    expect(selfOverlapping([4, 4], [9, 2])).toBe(false);
    expect(selfOverlapping([1, 4], [0, 1])).toBe(false); // a dimension of one has no second element
  });
});
