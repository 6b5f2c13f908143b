#!/usr/bin/env python3
"""Times torch.nn.functional.scaled_dot_product_attention (flash and cuDNN backends) for `sageattn bench --peers`.

Usage:
  python3 torch_sdpa.py --batch 4 --heads 32 --seqlen 16384 --head-dim 128 [--causal] [--dtype f16|bf16]
                        [--iterations 20] [--warmup 5] [--backends flash,cudnn] [--seqlen-k N]

  --batch/-B, --heads/-H, --seqlen/-N, --head-dim/-D   shape of q, k, v: [B, H, N, D] ("HND"), random normal data
  --seqlen-k      keys when different from queries (causal is then bottom-right aligned, as in sageattn)
  --causal        causal masking
  --dtype         f16 (default) or bf16
  --iterations    timed calls (median reported), default 20
  --warmup        untimed calls first, default 5
  --backends      comma list among flash, cudnn, efficient, math, and (with --sageattn-lib) sageattn-c and
                  sageattn-kernel, and sa2-fp16, sa2-fp8 (SageAttention2's CUDA kernels, when `sageattention` imports);
                  default flash,cudnn
  --sageattn-lib  libsageattn_cuda.so, the same library the TypeScript API calls: "sageattn-c" times its C ABI end to
                  end, "sageattn-kernel" its attention kernel alone (SA_KERNEL_ONLY on the workspace of one full call);
                  ctypes, torch tensors, output and workspace reused

Prints one JSON line per backend:
  {"peer": "torch-flash", "B": 4, "H": 32, "Nq": 16384, "Nk": 16384, "D": 128, "causal": false, "dtype": "f16",
   "ms": 51.2, "tops": 343.5, "device": "NVIDIA H100 80GB HBM3", "torch": "2.11.0+cu130"}
or, when a backend cannot run that shape: {"peer": "torch-cudnn", ..., "error": "..."}.
TOPS = 4·B·H·Nq·Nk·D / t (halved when causal), the same formula sageattn's bench uses. Each call is timed alone
with CUDA events after the warm-up. Exit status 2 when torch or CUDA is missing (one JSON line says why).
"""
import argparse
import json
import sys
import warnings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", "-B", type=int, required=True)
    ap.add_argument("--heads", "-H", type=int, required=True)
    ap.add_argument("--seqlen", "-N", type=int, required=True)
    ap.add_argument("--seqlen-k", type=int, default=None)
    ap.add_argument("--head-dim", "-D", type=int, required=True)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--dtype", choices=["f16", "bf16"], default="f16")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--backends", default="flash,cudnn")
    ap.add_argument("--sageattn-lib", default=None)
    a = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except Exception as e:  # noqa: BLE001 — report why instead of a traceback
        print(json.dumps({"error": f"torch unavailable: {e}"}))
        return 2
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch sees no CUDA device"}))
        return 2

    kinds = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
             "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}
    dtype = torch.float16 if a.dtype == "f16" else torch.bfloat16
    nk = a.seqlen_k or a.seqlen
    q = torch.randn(a.batch, a.heads, a.seqlen, a.head_dim, device="cuda", dtype=dtype)
    k = torch.randn(a.batch, a.heads, nk, a.head_dim, device="cuda", dtype=dtype)
    v = torch.randn(a.batch, a.heads, nk, a.head_dim, device="cuda", dtype=dtype)
    warnings.filterwarnings("ignore")  # SDPA explains every backend it skips; stdout carries only the JSON lines
    masks = [None]
    if a.causal and nk != a.seqlen:
        # SDPA's is_causal is top-left aligned; sageattn's causality is bottom-right. torch's lower-right causal bias
        # keeps flash and cuDNN usable; a boolean mask is the fallback (most fused kernels refuse it).
        i = torch.arange(a.seqlen, device="cuda")[:, None]
        j = torch.arange(nk, device="cuda")[None, :]
        masks = [j <= i + (nk - a.seqlen)]
        try:
            from torch.nn.attention.bias import causal_lower_right
            masks.insert(0, causal_lower_right(a.seqlen, nk))
        except ImportError:
            pass
    ops = 4 * a.batch * a.heads * a.seqlen * nk * a.head_dim / (2 if a.causal else 1)
    base = {"B": a.batch, "H": a.heads, "Nq": a.seqlen, "Nk": nk, "D": a.head_dim, "causal": a.causal, "dtype": a.dtype,
            "device": torch.cuda.get_device_name(), "torch": torch.__version__}

    def call(mask):
        if mask is not None:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return F.scaled_dot_product_attention(q, k, v, is_causal=a.causal)

    def batch_ms(fn):
        """Median per-call time of back-to-back calls between two events (launch gaps included, as a caller sees).
        A batch is at most --iterations calls and, for long calls, about 100 ms of them (at least 3), so a 32K shape
        costs seconds, not minutes."""
        for _ in range(a.warmup):
            fn()
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        n = max(3, min(a.iterations, int(100 / max(start.elapsed_time(end), 1e-3))))
        times = []
        for _ in range(5):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(n):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / n)
        times.sort()
        return times[len(times) // 2]

    for name in a.backends.split(","):
        if name in ("sageattn-c", "sageattn-kernel", "sa2-fp16", "sa2-fp8"):
            row = {"peer": name, **base}
            try:
                row["ms"] = round(batch_ms(other_kernel(name, a, q, k, v, nk)), 4)
                row["tops"] = round(ops / (row["ms"] / 1e3) / 1e12, 1)
            except Exception as e:  # noqa: BLE001 — missing library or module: reported, not fatal
                row["error"] = str(e).split("\n")[0][:200]
            print(json.dumps(row), flush=True)
            continue
        row = {"peer": f"torch-{name}", **base}
        try:
            with sdpa_kernel(kinds[name]):
                mask, errors = None, []
                for m in masks:  # the first form of the mask this backend accepts
                    try:
                        call(m)
                        mask = m
                        break
                    except Exception as e:  # noqa: BLE001
                        errors.append(str(e).split("\n")[0])
                else:
                    raise RuntimeError("; ".join(errors))
                for _ in range(a.warmup):
                    call(mask)
                torch.cuda.synchronize()
                times = []
                for _ in range(a.iterations):
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    call(mask)
                    end.record()
                    end.synchronize()
                    times.append(start.elapsed_time(end))
            times.sort()
            ms = times[len(times) // 2]
            row.update(ms=round(ms, 4), tops=round(ops / (ms / 1e3) / 1e12, 1))
        except Exception as e:  # noqa: BLE001 — a backend that cannot run this shape is reported, not fatal
            row["error"] = str(e).split("\n")[0][:200]
        print(json.dumps(row), flush=True)
    return 0


def other_kernel(name, a, q, k, v, nk):
    """A no-argument call of sageattn's C ABI or of a SageAttention2 kernel on q, k, v (HND)."""
    import os
    import torch
    if name in ("sageattn-c", "sageattn-kernel"):
        if not a.sageattn_lib or not os.path.exists(a.sageattn_lib):
            raise RuntimeError(f"no sageattn library at {a.sageattn_lib}")
        os.environ["SAGEATTN_CUDA_LIB"] = a.sageattn_lib
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, os.path.join(here, "..", "..", "..", "packages", "backend-cuda", "scripts"))
        import ctypes
        import gpu_check
        o = torch.empty_like(q)
        # The flags a TypeScript call without pvAccumulation sends, so both rows run the same kernel.
        if name == "sageattn-c":
            return lambda: gpu_check.run(q, k, v, causal=a.causal, pv_auto=True, out=o)
        # Kernel only: the attention kernel on the workspace one full call filled (SA_KERNEL_ONLY skips the pre-pass).
        _, _, p = gpu_check.run(q, k, v, causal=a.causal, pv_auto=True, out=o)
        kernel = gpu_check.Params.from_buffer_copy(p)
        kernel.flags |= gpu_check.SA_KERNEL_ONLY
        return lambda o=o: gpu_check.check(gpu_check.lib.sa_attention(ctypes.byref(kernel)))
    import sageattention as sa
    if name == "sa2-fp16":
        return lambda: sa.sageattn_qk_int8_pv_fp16_cuda(q, k, v, tensor_layout="HND", is_causal=a.causal, qk_quant_gran="per_warp", pv_accum_dtype="fp16+fp32")
    return lambda: sa.sageattn_qk_int8_pv_fp8_cuda_sm90(q, k, v, tensor_layout="HND", is_causal=a.causal)


if __name__ == "__main__":
    sys.exit(main())
