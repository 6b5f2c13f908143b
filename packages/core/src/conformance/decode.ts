/**
 * Decode conformance (issue 14): a backend's KV cache, built in many appends, held to the oracle. Run by
 * `describeConformance` for every backend whose capabilities say kvCache; the cases and the judge are in
 * decode-check.ts (no vitest), shared with the GPU machine's device check.
 */
import { expect, it } from "vitest";
import type { AttentionBackend, BackendProvider } from "../backend.js";
import type { DType } from "../dtype.js";
import { createKvCache, type KvCache } from "../kv-cache-api.js";
import { accuracy } from "../metrics.js";
import { type HostTensor, hostTensor, toCanonicalF32 } from "../tensor.js";
import {
  checkDecodeCase,
  DECODE_APPENDS,
  DECODE_ROWS,
  type DecodeCase,
  decodeCases,
  decodeInputs,
  decodeSpec,
} from "./decode-check.js";

export { DECODE_APPENDS, type DecodeCase, decodeCases } from "./decode-check.js";

export interface DecodeBounds {
  readonly sageRelL1: number;
  readonly outputRounding: Readonly<Record<DType, number>>;
  readonly exactMinCosine: number;
  readonly exactMaxRelL1: number;
  readonly lseVsSage: number;
}

/** The schedule's checks, each expected to pass (named by case and checkpoint); returns the final output. */
async function expectDecodeCase(
  provider: BackendProvider,
  c: DecodeCase,
  seed: number,
  requantize: boolean,
): Promise<Float32Array> {
  const { checks, last } = await checkDecodeCase(provider.name, c, seed, { requantize });
  expect(checks.length, `${c.name}: checkpoints`).toBeGreaterThan(requantize ? 4 : 2);
  for (const r of checks) {
    expect(r.failures, `${r.where} (rel-L1 vs sage ${r.vsSage.relL1}, pv oracle ${r.pvOracle})`).toEqual([]);
  }
  return last;
}

/** The same rows in two appends (the prefill, then the rest at once): the same output within the sage bound. */
async function checkOneAppend(
  provider: BackendProvider,
  c: DecodeCase,
  bounds: DecodeBounds,
  seed: number,
  many: Float32Array,
): Promise<void> {
  const inputs = decodeInputs(c, seed);
  const cache = await createKvCache({ ...decodeSpec(c), backend: provider.name });
  try {
    for (const [r0, r1] of [[0, DECODE_APPENDS[0]], [DECODE_APPENDS[0], DECODE_ROWS]]) {
      const { k, v } = inputs.slice(r0, r1);
      await cache.append(k, v);
    }
    const got = toCanonicalF32(
      (await cache.attend(inputs.q, { causal: c.causal, returnLse: c.returnLse })).output as HostTensor,
    );
    const a = accuracy(got, many);
    expect(a.relL1, `${c.name}: two appends vs ${DECODE_APPENDS.length} (cos ${a.cosine})`).toBeLessThanOrEqual(
      bounds.sageRelL1 + bounds.outputRounding[c.dtype],
    );
  } finally {
    await cache.dispose();
  }
}

/** A call on a cache that must fail, and the tagged error it must fail with. */
interface DecodeErrorCase {
  readonly name: string;
  readonly tag: "InvalidInput" | "DeviceError";
  readonly reason: string;
  readonly run: (cache: KvCache) => Promise<unknown>;
}

const D_ERR = 16;
const f16Rows = (B: number, H: number, n: number, D = D_ERR, fill = 0x3800) =>
  hostTensor(new Uint16Array(B * H * n * D).fill(fill), [B, H, n, D], { dtype: "f16" });

function decodeErrorCases(): DecodeErrorCase[] {
  const prefill = (cache: KvCache) => cache.append(f16Rows(1, 2, 8), f16Rows(1, 2, 8));
  return [
    {
      name: "an append past the capacity",
      tag: "InvalidInput",
      reason: "OutOfRange",
      run: async (c) => {
        await prefill(c);
        await c.append(f16Rows(1, 2, 60), f16Rows(1, 2, 60));
      },
    },
    {
      name: "k with the wrong number of kv heads",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.append(f16Rows(1, 3, 4), f16Rows(1, 3, 4)),
    },
    {
      name: "k of a wrong head dim",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.append(f16Rows(1, 2, 4, 8), f16Rows(1, 2, 4, 8)),
    },
    {
      name: "k and v of different lengths",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.append(f16Rows(1, 2, 4), f16Rows(1, 2, 5)),
    },
    {
      name: "k of rank 3",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.append({ ...f16Rows(1, 2, 4), shape: [1, 2, 64] as never }, f16Rows(1, 2, 4)),
    },
    {
      name: "k in f32 for an f16 cache",
      tag: "InvalidInput",
      reason: "DTypeMismatch",
      run: (c) => c.append(hostTensor(new Float32Array(128), [1, 2, 4, D_ERR]), f16Rows(1, 2, 4)),
    },
    {
      name: "k in NHD for an HND cache",
      tag: "InvalidInput",
      reason: "LayoutMismatch",
      run: (c) => c.append({ ...f16Rows(1, 2, 4), layout: "NHD" }, f16Rows(1, 2, 4)),
    },
    {
      name: "an infinite f16 in v",
      tag: "InvalidInput",
      reason: "NonFinite",
      run: (c) => {
        const v = f16Rows(1, 2, 4);
        (v.data as Uint16Array)[9] = 0x7c00;
        return c.append(f16Rows(1, 2, 4), v);
      },
    },
    {
      name: "attend on an empty cache",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: (c) => c.attend(f16Rows(1, 4, 1)),
    },
    {
      name: "q of a wrong head dim",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(1, 4, 1, 32));
      },
    },
    {
      name: "q heads not a multiple of kv heads",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(1, 3, 1));
      },
    },
    {
      name: "q of another batch size",
      tag: "InvalidInput",
      reason: "InvalidShape",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(2, 4, 1));
      },
    },
    {
      name: "a NaN in q",
      tag: "InvalidInput",
      reason: "NonFinite",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(1, 4, 1, D_ERR, 0x7e00));
      },
    },
    {
      name: "a mask on attend",
      tag: "InvalidInput",
      reason: "InvalidOption",
      run: async (c) => {
        await prefill(c);
        await c.attend(f16Rows(1, 4, 1), { mask: {} } as never);
      },
    },
    {
      name: "an append after dispose",
      tag: "DeviceError",
      reason: "Disposed",
      run: async (c) => {
        await c.dispose();
        await c.append(f16Rows(1, 2, 4), f16Rows(1, 2, 4));
      },
    },
    {
      name: "attend after dispose",
      tag: "DeviceError",
      reason: "Disposed",
      run: async (c) => {
        await prefill(c);
        await c.dispose();
        await c.dispose();
        await c.attend(f16Rows(1, 4, 1));
      },
    },
    {
      name: "requantize after dispose",
      tag: "DeviceError",
      reason: "Disposed",
      run: async (c) => {
        await c.dispose();
        await c.requantize();
      },
    },
  ];
}

/** Describes the decode cases (call inside the backend's describe block). */
export function describeDecodeConformance(
  provider: BackendProvider,
  backend: AttentionBackend,
  limits: { maxD: number; dtypes: readonly DType[] },
  bounds: DecodeBounds,
  timeout: number,
): void {
  const cases = decodeCases(backend, limits);
  cases.forEach((c, i) => {
    it(
      `${c.name}: appends ${DECODE_APPENDS[0]} + 30×1 + 30 vs the oracle with the cache's mean; two appends agree`,
      async () => {
        const many = await expectDecodeCase(provider, c, 5000 + i, false);
        await checkOneAppend(provider, c, bounds, 5000 + i, many);
      },
      timeout,
    );
  });
  // The first three with an LSE or without smoothing, and the first int8 one (requantize must leave V̂ as it is).
  const requantized = [
    ...cases.filter((x) => x.returnLse || !x.smoothK).slice(0, 3),
    ...cases.filter((x) => x.valueFormat === "int8").slice(0, 1),
  ];
  for (const c of requantized) {
    it(
      `${c.name}: requantize vs the oracle's requantize, then appends`,
      () => expectDecodeCase(provider, c, 6000, true),
      timeout,
    );
  }
  for (const e of decodeErrorCases()) {
    it(`decode: rejects ${e.name} with ${e.tag}/${e.reason}, and the length stays`, async () => {
      const cache = await createKvCache({
        backend: provider.name,
        batch: 1,
        headsKv: 2,
        headDim: D_ERR,
        capacity: 64,
        dtype: "f16",
      });
      const err = await e.run(cache).then(
        () => undefined,
        (x: unknown) => x as { _tag?: string; reason?: string },
      );
      expect(err?._tag, "error tag").toBe(e.tag);
      expect(err?.reason, "error reason").toBe(e.reason);
      if (e.reason === "OutOfRange") expect(cache.length, "nothing appended").toBe(8);
      await cache.dispose();
    });
  }
}
