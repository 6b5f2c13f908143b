import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode16 } from "@sageattn/core";
import { describe, expect, it } from "vitest";
import { fixture, hasNumpy, python, smallValues, thrown } from "./fixture-paths.js";
import { encodeNpy, readNpy, writeNpy } from "./npy.js";

const small = smallValues();

describe("readNpy on files numpy wrote", () => {
  it.each(["small_c.npy", "small_fortran.npy", "small_be.npy"])("%s: f32 values and shape", (name) => {
    const t = readNpy(fixture(name));
    expect(t.dtype).toBe("f32");
    expect(t.shape).toEqual(small.shape);
    expect(Array.from(t.data)).toEqual(small.values);
  });

  it("small_f16.npy: f16 bits decode to the values", () => {
    const t = readNpy(fixture("small_f16.npy"));
    expect(t.dtype).toBe("f16");
    expect(Array.from(decode16(t.data as Uint16Array, "f16"))).toEqual(small.values); // quarter steps are exact in f16
  });

  it("a 3-D f16 fixture keeps its shape", () => {
    expect(readNpy(fixture("b_q.npy")).shape).toEqual([33, 4, 8]);
  });
});

describe("encodeNpy", () => {
  it("writes the very bytes numpy wrote for the same array", () => {
    const t = readNpy(fixture("small_c.npy"));
    expect(Buffer.from(encodeNpy(t)).equals(readFileSync(fixture("small_c.npy")))).toBe(true);
    const h = readNpy(fixture("small_f16.npy"));
    expect(Buffer.from(encodeNpy(h)).equals(readFileSync(fixture("small_f16.npy")))).toBe(true);
  });

  it("round-trips through its own reader, including a 1-D shape", () => {
    const dir = mkdtempSync(join(tmpdir(), "sageattn-npy-"));
    const path = join(dir, "x.npy");
    writeNpy(path, { dtype: "f32", shape: [5], data: Float32Array.from([1, -2, 3.5, 0, 1e-3]) });
    const back = readNpy(path);
    expect(back.shape).toEqual([5]);
    expect(Array.from(back.data)).toEqual(Array.from(Float32Array.from([1, -2, 3.5, 0, 1e-3])));
  });

  it.skipIf(!hasNumpy())("numpy reads what it wrote (np.load)", () => {
    const dir = mkdtempSync(join(tmpdir(), "sageattn-npy-"));
    const path = join(dir, "o.npy");
    const data = Float32Array.from({ length: 2 * 3 * 5 }, (_, i) => i * 0.5 - 3);
    writeNpy(path, { dtype: "f32", shape: [2, 3, 5], data });
    const out = JSON.parse(
      python(
        "import numpy as np,sys,json;a=np.load(sys.argv[1]);print(json.dumps([a.dtype.str,list(a.shape),a.ravel().tolist()]))",
        [path],
      ),
    );
    expect(out).toEqual(["<f4", [2, 3, 5], Array.from(data)]);
  });
});

describe("readNpy on bad files", () => {
  it("truncated data says how many bytes it needed", () => {
    const e = thrown(() => readNpy(fixture("bad_truncated.npy")));
    expect(e.reason).toBe("Truncated");
    expect(e.message).toMatch(/truncated: 1×2×40×16 f32 elements needs bytes 128\.\.5248, the file has 5148/);
  });
  it("wrong magic", () => expect(thrown(() => readNpy(fixture("bad_magic.npy"))).reason).toBe("BadHeader"));
  it("int32 and float64 are refused by name", () => {
    const i = thrown(() => readNpy(fixture("bad_int32.npy")));
    expect(i.reason).toBe("UnsupportedDType");
    expect(i.message).toContain("'<i4'");
    expect(thrown(() => readNpy(fixture("bad_f64.npy"))).message).toContain("astype(np.float32)");
  });
  it("a missing file", () => expect(thrown(() => readNpy("/nonexistent/q.npy")).message).toContain("no such file"));
  it("a header length over the limit is refused before reading it", () => {
    const dir = mkdtempSync(join(tmpdir(), "sageattn-npy-"));
    const path = join(dir, "huge.npy");
    const bytes = new Uint8Array(64);
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
    new DataView(bytes.buffer).setUint32(8, 0xfffffff0, true);
    writeFileSync(path, bytes);
    expect(thrown(() => readNpy(path)).reason).toBe("HeaderTooLarge");
  });
  it("a malformed header dict", () => {
    const dir = mkdtempSync(join(tmpdir(), "sageattn-npy-"));
    const path = join(dir, "dict.npy");
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }".padEnd(117, " ") + "\n";
    const bytes = new Uint8Array(128 + 16);
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0]);
    for (let i = 0; i < header.length; i++) bytes[10 + i] = header.charCodeAt(i);
    writeFileSync(path, bytes);
    const e = thrown(() => readNpy(path));
    expect(e.reason).toBe("BadHeader");
    expect(e.message).toContain("shape");
  });
});
