import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bf16BitsToF32, decode16 } from "@sageattn/core";
import { describe, expect, it } from "vitest";
import { fixture, hasNumpy, python, smallValues, thrown } from "./fixture-paths.js";
import { readNpy } from "./npy.js";
import { encodeSafetensors, openSafetensors, readSafetensors, writeSafetensors } from "./safetensors.js";
import type { FileTensor } from "./tensor-file.js";

const small = smallValues();

describe("openSafetensors on files written from the format spec", () => {
  it("lists every entry (an I64 one too) and reads bf16 q, k, v", () => {
    const f = openSafetensors(fixture("c_qkv_bf16.safetensors"));
    try {
      expect(f.entries.map((e) => `${e.name}:${e.dtype}`)).toEqual(["step:I64", "q:BF16", "k:BF16", "v:BF16"]);
      expect(f.metadata).toEqual({ writer: "numpy fixture script" });
      const q = f.tensor("q");
      expect(q.dtype).toBe("bf16");
      expect(q.shape).toEqual([1, 2, 24, 32]);
      const values = Array.from(q.data as Uint16Array, bf16BitsToF32);
      expect(values.every(Number.isFinite)).toBe(true);
      expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(1); // gaussian samples, decoded as bf16
      expect(thrown(() => f.tensor("step")).reason).toBe("UnsupportedDType");
      expect(thrown(() => f.tensor("nope")).message).toContain("it has: step, q, k, v");
    } finally {
      f.close();
    }
  });

  it("reads f16 values exactly", () => {
    const t = readSafetensors(fixture("small_f16_named.safetensors"), ["weights"]).get("weights")!;
    expect(t.shape).toEqual(small.shape);
    expect(Array.from(decode16(t.data as Uint16Array, "f16"))).toEqual(small.values);
  });
});

describe("encodeSafetensors", () => {
  const q: FileTensor = readNpy(fixture("a_q.npy"));
  const lse: FileTensor = { dtype: "f32", shape: [1, 2], data: Float32Array.from([0.5, -1]) };
  const bits: FileTensor = { dtype: "bf16", shape: [3], data: Uint16Array.from([0x3f80, 0xc000, 0x0000]) };

  it("round-trips several tensors and pads the header to 8 bytes", () => {
    const dir = mkdtempSync(join(tmpdir(), "sageattn-st-"));
    const path = join(dir, "o.safetensors");
    writeSafetensors(path, new Map([["o", q], ["lse", lse], ["b", bits]]), { producer: "sageattn" });
    const bytes = readFileSync(path);
    expect(Number(bytes.readBigUInt64LE(0)) % 8).toBe(0);
    const back = readSafetensors(path, ["o", "lse", "b"]);
    expect(Array.from(back.get("o")!.data)).toEqual(Array.from(q.data));
    expect(Array.from(back.get("lse")!.data)).toEqual([0.5, -1]);
    expect(back.get("b")!.dtype).toBe("bf16");
    expect(Array.from(back.get("b")!.data)).toEqual([0x3f80, 0xc000, 0]);
  });

  it.skipIf(!hasNumpy())("python (json + struct + numpy, no safetensors package) reads what it wrote", () => {
    const dir = mkdtempSync(join(tmpdir(), "sageattn-st-"));
    const path = join(dir, "o.safetensors");
    writeSafetensors(path, new Map([["lse", lse], ["b", bits]]));
    const code = `
import json, struct, sys, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = raw[8 + n:]
lo, hi = h['lse']['data_offsets']
lse = np.frombuffer(data[lo:hi], '<f4').reshape(h['lse']['shape'])
lo, hi = h['b']['data_offsets']
b = (np.frombuffer(data[lo:hi], '<u2').astype(np.uint32) << 16).view(np.float32)
print(json.dumps([h['lse']['dtype'], lse.tolist(), h['b']['dtype'], b.tolist(), len(data)]))`;
    expect(JSON.parse(python(code, [path]))).toEqual(["F32", [[0.5, -1]], "BF16", [1, -2, 0], 14]);
  });

  it("an empty map is a valid file", () => {
    expect(new TextDecoder().decode(encodeSafetensors(new Map()).subarray(8)).trim()).toBe("{}");
  });
});

describe("openSafetensors on bad files", () => {
  it.each([
    ["bad_huge_header.safetensors", "HeaderTooLarge", "over the 100000000-byte limit"],
    ["bad_json.safetensors", "BadHeader", "its header is not JSON"],
    ["bad_truncated.safetensors", "Truncated", "tensor 'q' ends at data byte 5120, the file holds 1000"],
    ["bad_offsets.safetensors", "BadHeader", "needs 16 bytes, its offsets span 12"],
  ])("%s → %s", (name, reason, text) => {
    const e = thrown(() => openSafetensors(fixture(name)));
    expect(e.reason).toBe(reason);
    expect(e.message).toContain(text);
  });

  it("a header that is not a JSON object", () => {
    const dir = mkdtempSync(join(tmpdir(), "sageattn-st-"));
    const path = join(dir, "x.safetensors");
    const json = new TextEncoder().encode("[1, 2, 3]");
    const bytes = new Uint8Array(8 + json.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    writeFileSync(path, bytes);
    const e = thrown(() => openSafetensors(path));
    expect(e.reason).toBe("BadHeader");
    expect(e.message).toContain("not a JSON object");
  });

  it("F64 tensors are refused by name", () => {
    const e = thrown(() => readSafetensors(fixture("bad_f64.safetensors"), ["q"]));
    expect(e.reason).toBe("UnsupportedDType");
    expect(e.message).toContain("F64: use F32, F16 or BF16");
  });
});
