"""`python -m core.bench kernels`: time each render op per implementation; prints a markdown table,
then the end-to-end table of the two targets (`bench_e2e.py`; --part ops|e2e|all).

Rows: reference (PyTorch), compile (torch.compile of the reference; reported unavailable when it
fails), triton (CUDA only; 'needs CUDA' elsewhere). Per row: median ms of --repeats timed calls
after one warm-up, points/s (samples per second for the per-ray ops), peak memory above the
inputs (CUDA: max_memory_allocated; CPU: process RSS sampled every 5 ms), the speed-up against
the reference and against compile, and a physical floor: the compulsory bytes (inputs read once,
outputs written once; planes counted once, as if every tap after the first hit the cache) and the
FLOPs of the op, with the floor time max(bytes / bandwidth, FLOPs / fp32 matmul rate), both
rates measured on this device at the start (a copy of a large tensor; a square matmul).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .benchutil import RssPeak, device_name, git_commit, rss_bytes
from .kernels import ops
from .runtime import resolve_device


@dataclass
class Workload:
    name: str
    points: int  # points (or ray samples) processed per call
    bytes: float
    flops: float
    run: Callable[[str], object]  # impl -> result (backward included where the name says so)


def _sizes(size: str) -> dict:
    if size == "real":  # ffhq512-like training batch and a 512^2 viewer frame
        return dict(b=8, rp=256, c=32, n=64 * 64 * 96, rays=65536, s=96, hd=64, frame=512 * 512)
    return dict(b=1, rp=64, c=32, n=1024 * 96, rays=4096, s=96, hd=64, frame=4096)


def workloads(size: str, device: torch.device) -> list[Workload]:
    z = _sizes(size)
    gen = torch.Generator().manual_seed(0)
    b, rp, c, n, rays, s, hd = z["b"], z["rp"], z["c"], z["n"], z["rays"], z["s"], z["hd"]
    planes = torch.randn(b, 3, c, rp, rp, generator=gen).to(device)
    pts = ((torch.rand(b, n, 3, generator=gen) * 2 - 1) * 0.2).to(device)
    gout = torch.randn(b, n, c, generator=gen).to(device)
    params = (torch.randn(hd, c, generator=gen).to(device) / c ** 0.5, torch.zeros(hd, device=device),
              torch.randn(4, hd, generator=gen).to(device) / hd ** 0.5, torch.zeros(4, device=device))
    rgb = torch.randn(b * rays, s, 3, generator=gen).to(device)
    sigma = torch.rand(b * rays, s, generator=gen).to(device) * 5
    t = (torch.sort(torch.rand(b * rays, s, generator=gen), -1).values * 0.5 + 0.75).to(device)
    g3 = [torch.randn(b * rays, 3, generator=gen).to(device), torch.randn(b * rays, generator=gen).to(device)]
    fr = z["frame"]
    origins = torch.tensor([0.0, 0.0, 1.0], device=device).expand(1, fr, 3).contiguous()
    dirs = torch.nn.functional.normalize(torch.randn(1, fr, 3, generator=gen).to(device) * 0.1
                                         + torch.tensor([0.0, 0.0, -1.0], device=device), dim=-1)
    tm = (torch.sort(torch.rand(1, fr, s, generator=gen), -1).values * 0.5 + 0.75).to(device)
    pb = planes.numel() * 4
    mlp_flops = 2 * c * hd + 2 * hd * 4 + 20

    def sample_fwd(impl):
        with torch.no_grad():
            return ops.triplane_sample(planes, pts, 0.2, impl=impl)

    def sample_bwd(impl):
        p, q = planes.detach().requires_grad_(True), pts.detach().requires_grad_(True)
        out = ops.triplane_sample(p, q, 0.2, impl=impl)
        return torch.autograd.grad(out, [p, q], gout)

    def comp_fwd(impl):
        with torch.no_grad():
            return ops.composite(rgb, sigma, t, True, impl=impl)["rgb"]

    def comp_bwd(impl):
        r, sg = rgb.detach().requires_grad_(True), sigma.detach().requires_grad_(True)
        out = ops.composite(r, sg, t, True, impl=impl)
        return torch.autograd.grad([out["rgb"], out["opacity"]], [r, sg], g3)

    def query(impl):
        with torch.no_grad():
            return ops.query_points(planes, pts, 0.2, params, 0.0, impl=impl)

    def march(impl):
        with torch.no_grad():
            return ops.march_rays(planes[:1], origins, dirs, tm, 0.2, params, 0.0, True, impl=impl)["rgb"]

    np_ = b * n
    m = b * rays
    return [
        Workload("triplane_sample fwd", np_, np_ * (12 + c * 4) + pb, np_ * (3 * 4 * 2 * c + 40), sample_fwd),
        Workload("triplane_sample fwd+bwd", np_, np_ * (24 + c * 8 + 12) + 3 * pb, np_ * 3 * (3 * 4 * 2 * c + 40),
                 sample_bwd),
        Workload("composite fwd", m * s, m * s * 4 * 6 + m * 12, m * s * (2 * 3 + 16), comp_fwd),
        Workload("composite fwd+bwd", m * s, m * s * 4 * 12 + m * 24, m * s * 3 * (2 * 3 + 16), comp_bwd),
        Workload("query_points", np_, np_ * (12 + 16) + pb, np_ * (3 * 4 * 2 * c + 40 + mlp_flops), query),
        Workload("march_rays", fr * s, fr * (24 + 12 + s * 8) + pb / b,
                 fr * s * (3 * 4 * 2 * c + 60 + mlp_flops + 16), march),
    ]


def device_rates(device: torch.device) -> tuple[float, float]:
    """(bytes/s of a large copy counted as read + write, fp32 FLOP/s of a square matmul) on this device."""
    cuda = device.type == "cuda"
    x = torch.empty(64 * 2**20 if cuda else 16 * 2**20, device=device)
    y = torch.empty_like(x)
    a = torch.randn(4096 if cuda else 1024, 4096 if cuda else 1024, device=device)

    def timed(fn, reps=5):
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        if cuda:
            torch.cuda.synchronize(device)
        return (time.perf_counter() - t0) / reps

    bw = 2 * x.numel() * 4 / timed(lambda: y.copy_(x))
    flops = 2 * a.shape[0] ** 3 / timed(lambda: a @ a)
    return bw, flops


def time_call(fn: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """(median seconds, peak bytes above the start) of fn after one warm-up."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    times = []
    with RssPeak() as rss:
        base_rss = rss_bytes()
        fn()
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) - base if cuda else rss.peak - base_rss
    return statistics.median(times), peak


def compiled(run: Callable[[str], object]) -> Callable[[], object]:
    """torch.compile of the reference call (compiled at the warm-up call, outside the timing)."""
    return torch.compile(lambda: run("reference"))


def bench_kernels(args) -> int:
    import shlex

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    bw, fl = device_rates(device)
    mem_col = "peak CUDA MiB" if cuda else "peak RSS +MiB"
    print(f"- device: {device_name(device)}\n- torch: {torch.__version__}\n- commit: {git_commit()}\n"
          f"- size: {args.size} {_sizes(args.size)}\n"
          f"- measured rates for the floor: copy {bw / 1e9:.1f} GB/s, fp32 matmul {fl / 1e9:.1f} GFLOP/s\n"
          f"- command: python -m core.bench {shlex.join(args.argv)}")
    if args.part in ("all", "ops"):
        print(f"\n| op | impl | ms (median of {args.repeats}) | Mpoints/s | {mem_col} | x reference | x compile "
              f"| floor: MB, GFLOP, ms |\n|---|---|---:|---:|---:|---:|---:|---|")
    for wl in (workloads(args.size, device) if args.part in ("all", "ops") else []):
        floor = f"{wl.bytes / 1e6:.1f}, {wl.flops / 1e9:.2f}, {max(wl.bytes / bw, wl.flops / fl) * 1e3:.2f}"
        base = {}
        for impl in ("reference", "compile", "triton"):
            if impl == "triton" and not cuda:
                print(f"| {wl.name} | triton | needs CUDA | | | | | {floor} |", flush=True)
                continue
            if impl == "compile" and args.no_compile:
                print(f"| {wl.name} | compile | skipped (--no-compile) | | | | | {floor} |", flush=True)
                continue
            try:
                fn = compiled(wl.run) if impl == "compile" else (lambda impl=impl, wl=wl: wl.run(impl))
                sec, peak = time_call(fn, device, args.repeats)
            except Exception as e:  # noqa: BLE001 -- a benchmark row reports, it does not crash the table
                msg = str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__
                print(f"| {wl.name} | {impl} | unavailable: {type(e).__name__}: {msg} | | | | | {floor} |", flush=True)
                continue
            base[impl] = sec
            vs_ref = f"{base['reference'] / sec:.2f}" if "reference" in base else ""
            vs_comp = f"{base['compile'] / sec:.2f}" if "compile" in base else ""
            print(f"| {wl.name} | {impl} | {sec * 1e3:.1f} | {wl.points / sec / 1e6:.2f} | {peak / 2**20:.0f} | "
                  f"{vs_ref} | {vs_comp} | {floor} |", flush=True)
    if args.part in ("all", "e2e"):
        from .bench_e2e import print_table
        print_table(args.size, device, args.repeats, time_call)
    return 0
