#!/usr/bin/env python3
"""Decode diagnostics for libsageattn_cuda.so's KV cache through ctypes (GPU machine only; not the user-facing number,
which is device-check.ts's decode bench through `attention()`'s cache).

  python3 scripts/decode_probe.py time [SPECS]   # per-step µs: back-to-back calls, and replayed from a CUDA graph
  python3 scripts/decode_probe.py once [SPECS]   # a few attends per spec, for a profiler such as ncu to attach to

SPECS is a comma list of Nq:Nk[:f32] (default 1:4096,4:4096,1:32768,4:32768,1:131072,4:131072); ":f32" sets
SA_PV_F32. The cache is B1 Hkv8 D128 f16 with Hq 32 (the decode bench's shape), causal as the TypeScript cache calls it.
SAGEATTN_CUDA_LIB picks the library, as for gpu_check.py.
"""
import ctypes
import json
import math
import os
import sys

import torch

from gpu_check import SA_CAUSAL, SA_PV_F32, Params, check, lib

# Timed as torch's decode peer is (the best of 5 batches of back-to-back calls between CUDA events), so the two compare.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "apps", "cli", "peers"))
from torch_decode import time_us  # noqa: E402

B, HQ, HKV, D = 1, 32, 8, 128
CHUNK = 4096


class KvParams(ctypes.Structure):
    _fields_ = [("base", Params), ("cache", ctypes.c_uint64), ("capacity", ctypes.c_int32), ("length", ctypes.c_int32)]


for name in ("sa_kv_cache_size", "sa_kv_workspace_size"):
    getattr(lib, name).argtypes = [ctypes.POINTER(KvParams), ctypes.POINTER(ctypes.c_uint64)]
for name in ("sa_kv_init", "sa_kv_append", "sa_kv_attend"):
    getattr(lib, name).argtypes = [ctypes.POINTER(KvParams)]


def layout_ok():
    out = (ctypes.c_int64 * 5)()
    n = lib.sa_kv_params_layout(out, 5)
    mine = [ctypes.sizeof(KvParams)] + [getattr(KvParams, f[0]).offset for f in KvParams._fields_]
    return n == 5 and list(out) == mine


def cache_of(length, capacity, gen):
    """A cache holding `length` rows of Gaussian K and V, appended CHUNK rows at a time."""
    p = KvParams()
    p.base.B, p.base.Hkv, p.base.D = B, HKV, D
    p.base.stream = torch.cuda.current_stream().cuda_stream
    p.capacity = capacity
    size = ctypes.c_uint64()
    check(lib.sa_kv_cache_size(ctypes.byref(p), ctypes.byref(size)))
    mem = torch.empty(size.value, dtype=torch.uint8, device="cuda")
    p.cache = mem.data_ptr()
    check(lib.sa_kv_init(ctypes.byref(p)))
    k = torch.randn(B, HKV, CHUNK, D, generator=gen, device="cuda").half()
    v = torch.randn(B, HKV, CHUNK, D, generator=gen, device="cuda").half()
    p.base.k, p.base.v = k.data_ptr(), v.data_ptr()
    p.base.ks[:], p.base.vs[:] = list(k.stride()), list(v.stride())
    p.base.dtype = 1
    for start in range(0, length, CHUNK):
        p.length = start
        p.base.Nk = min(CHUNK, length - start)
        check(lib.sa_kv_append(ctypes.byref(p)))
    p.length = length
    return p, (mem, k, v)


def exact_error(p, q, o, k, v):
    """rel-L1 and cosine of o against float64 attention over the cache's rows (the chunk k, v repeated), causal."""
    nq, nk = q.shape[2], p.length
    reps = -(-nk // CHUNK)
    kk = k.double().repeat(1, 1, reps, 1)[:, :, :nk].repeat_interleave(HQ // HKV, 1)
    vv = v.double().repeat(1, 1, reps, 1)[:, :, :nk].repeat_interleave(HQ // HKV, 1)
    s = q.double() @ kk.transpose(-1, -2) / math.sqrt(D)
    i = torch.arange(nq, device="cuda")[:, None]
    j = torch.arange(nk, device="cuda")[None, :]
    ref = torch.softmax(s.masked_fill(j > i + (nk - nq), float("-inf")), -1) @ vv
    got = o.double()
    rel = float((got - ref).abs().sum() / ref.abs().sum())
    cos = float(torch.nn.functional.cosine_similarity(got.flatten(), ref.flatten(), 0))
    return rel, cos


def attend_params(p, nq, f32, gen):
    q = torch.randn(B, HQ, nq, D, generator=gen, device="cuda").half()
    o = torch.empty_like(q)
    p.base.q, p.base.o = q.data_ptr(), o.data_ptr()
    p.base.qs[:], p.base.os[:] = list(q.stride()), list(o.stride())
    p.base.Hq, p.base.Nq, p.base.Nk = HQ, nq, p.length
    p.base.dtype, p.base.odtype, p.base.layout = 1, 1, 0
    p.base.flags = SA_CAUSAL | (SA_PV_F32 if f32 else 0)
    p.base.sm = 1 / math.sqrt(D)
    need = ctypes.c_uint64()
    check(lib.sa_kv_workspace_size(ctypes.byref(p), ctypes.byref(need)))
    ws = torch.empty(max(need.value, 256), dtype=torch.uint8, device="cuda")
    p.base.ws, p.base.ws_size = ws.data_ptr(), ws.numel()
    return q, o, ws


def graph_us(fn, calls=200):
    """The same calls captured into one CUDA graph and replayed: no host cost between steps."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    g = torch.cuda.CUDAGraph()
    with torch.cuda.stream(s):
        fn(s.cuda_stream)
        torch.cuda.synchronize()
        with torch.cuda.graph(g, stream=s):
            for _ in range(calls):
                fn(s.cuda_stream)
    return time_us(g.replay, calls=1) / calls


def specs(arg):
    for s in (arg or "1:4096,4:4096,1:32768,4:32768,1:131072,4:131072").split(","):
        parts = s.split(":")
        yield int(parts[0]), int(parts[1]), len(parts) > 2 and parts[2] == "f32"


def main(mode, arg):
    if not layout_ok():
        raise SystemExit("sa_kv_params layout differs from this script's")
    gen = torch.Generator(device="cuda").manual_seed(5)
    for nq, nk, f32 in specs(arg):
        p, keep = cache_of(nk, nk + 64, gen)
        tensors = attend_params(p, nq, f32, gen)

        def step(stream=None):
            if stream is not None:
                p.base.stream = stream
            check(lib.sa_kv_attend(ctypes.byref(p)))

        if mode == "once":
            for _ in range(3):
                step()
            torch.cuda.synchronize()
            continue
        p.base.stream = torch.cuda.current_stream().cuda_stream
        eager = time_us(step)
        try:
            graphed = graph_us(step)
        except RuntimeError as e:  # capture refused: say why, keep the eager number
            graphed = f"capture failed: {e}"
        p.base.stream = torch.cuda.current_stream().cuda_stream
        step()
        rel, cos = exact_error(p, tensors[0], tensors[1], keep[1], keep[2])
        bytes_read = B * HKV * nk * D * 3 + B * HKV * math.ceil(nk / 64) * 4
        best = graphed if isinstance(graphed, float) else eager
        print(json.dumps({"Nq": nq, "Nk": nk, "pv": "f32" if f32 else "f16-block", "eagerUs": round(eager, 2),
                          "graphUs": graphed if isinstance(graphed, str) else round(graphed, 2),
                          "hbmFraction": round(bytes_read / best / 1e3 / 4800, 3), "relL1": round(rel, 5),
                          "cos": round(cos, 6)}), flush=True)
        del tensors, keep


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
