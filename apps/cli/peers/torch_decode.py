"""Decode-step peers for `sageattn bench --decode` on CUDA: torch SDPA (flash, cuDNN, efficient) of Nq queries against an
f16 cache, B1 H32 Hkv8 D128 by default, one JSON line per (backend, Nq, Nk): microseconds per call, timed with CUDA
events over many calls after a warm-up, launched one by one ("us") and replayed from a CUDA graph of the same calls
("graphUs": the GPU's time alone, without torch's host cost per call, which at short lengths exceeds the kernel's).
GQA through enable_gqa (K/V are not repeated). Unavailable backends print {"skipped": reason}.

usage: python3 torch_decode.py [--lengths 1024,4096,32768,131072] [--nq 1,4] [--heads 32] [--kv-heads 8] [--head-dim 128]
"""
import argparse
import json

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION}


def best_us(run, calls, reps=5):
    best = float("inf")
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) * 1000 / calls)
    return best


def time_us(fn, calls=200):
    for _ in range(20):
        fn()
    torch.cuda.synchronize()

    def eager():
        for _ in range(calls):
            fn()

    return best_us(eager, calls)


def graph_us(fn, calls=200):
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    return best_us(graph.replay, calls)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="1024,4096,32768,131072")
    ap.add_argument("--nq", default="1,4")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    a = ap.parse_args()
    dev = torch.device("cuda")
    for nk in [int(x) for x in a.lengths.split(",")]:
        k = torch.randn(1, a.kv_heads, nk, a.head_dim, device=dev, dtype=torch.float16)
        v = torch.randn_like(k)
        for nq in [int(x) for x in a.nq.split(",")]:
            q = torch.randn(1, a.heads, nq, a.head_dim, device=dev, dtype=torch.float16)
            for name, backend in BACKENDS.items():
                row = dict(peer="torch-" + name, Nq=nq, Nk=nk)
                try:
                    with sdpa_kernel([backend]):
                        fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                        fn()
                        row["us"] = round(time_us(fn), 2)
                    row["gbPerS"] = round(k.numel() * 4 / row["us"] / 1e3, 1)  # f16 K and V read once
                    try:
                        with sdpa_kernel([backend]):
                            row["graphUs"] = round(graph_us(fn), 2)
                    except Exception as e:  # not capturable in a graph
                        row["graphSkipped"] = str(e).splitlines()[0][:160]
                except Exception as e:  # a backend that cannot serve this shape
                    row["skipped"] = str(e).splitlines()[0][:160]
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
