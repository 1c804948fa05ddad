"""Compare the Triton kernels with the PyTorch references on random inputs (forward and gradients).

    TRITON_INTERPRET=1 python -m core.kernels.selftest [--size tiny|real] [--device cpu|cuda] [--only OP]

Prints one JSON line per check ({"name", "ok", "rel_l2", "cosine", "max_excess"}) and exits 1 when
one fails. A check passes when the relative L2 error is below `rel`, the cosine similarity is at
least 0.999 and every element satisfies |got - want| <= atol + rtol * |want| (max_excess <= 0).
On CPU it needs TRITON_INTERPRET=1 set before Python starts (tests/test_kernels.py runs it in a
subprocess for that reason); `--size real` on CUDA runs real-size inputs (tests/test_kernels_gpu.py).
`python -m core.render_selftest` runs these checks and then G.render end to end through the kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from . import reference


def _impl(name: str):
    """The module of an implementation: `reference`, or `triton_ops` (imports triton; only on demand)."""
    if name == "reference":
        return reference
    from . import triton_ops
    return triton_ops

TOL = {torch.float32: (1e-4, 1e-4, 1e-3), torch.float16: (2e-3, 2e-3, 2e-2), torch.bfloat16: (1e-2, 1e-2, 5e-2)}
_results: list[dict] = []
_verbose = True


def check(name: str, got: torch.Tensor, want: torch.Tensor, rel: float, atol: float, rtol: float) -> dict:
    got, want = got.detach().double().cpu().flatten(), want.detach().double().cpu().flatten()
    assert got.shape == want.shape, (name, got.shape, want.shape)
    diff = got - want
    norm = want.norm().item()
    rel_l2 = diff.norm().item() / norm if norm > 0 else diff.norm().item()
    cos = torch.nn.functional.cosine_similarity(got, want, dim=0, eps=1e-30).item() if norm > 0 else 1.0
    if norm > 0 and got.norm().item() == 0:
        cos = 0.0
    excess = (diff.abs() - (atol + rtol * want.abs())).max().item() if diff.numel() else 0.0
    finite = bool(torch.isfinite(got).all())
    ok = finite and rel_l2 <= rel and cos >= 0.999 and excess <= 0
    r = {"name": name, "ok": ok, "rel_l2": rel_l2, "cosine": cos, "max_excess": excess}
    _results.append(r)
    if _verbose:
        print(json.dumps(r), flush=True)
    return r


def _grads(fn, inputs, weights):
    """Gradients of sum_k <out_k, weights_k> with respect to `inputs`."""
    xs = [x.detach().clone().requires_grad_(True) for x in inputs]
    outs = fn(*xs)
    loss = sum((o.float() * w).sum() for o, w in zip(outs, weights))
    return outs, torch.autograd.grad(loss, xs)


def _points(b, n, scale, device, gen):
    return ((torch.rand(b, n, 3, generator=gen) * 2 - 1) * scale * 1.15).to(device)  # some outside the cube


def test_triplane(device, shapes, dtypes, gen):
    for (b, c, h, w, n) in shapes:
        for dtype, lookup in [(d, "epigraf") for d in dtypes] + [(dtypes[0], "eg3d")]:
            scale = 0.3
            planes = torch.randn(b, 3, c, h, w, generator=gen).to(device, dtype)
            pts = _points(b, n, scale, device, gen)
            gout = torch.randn(b, n, c, generator=gen).to(device)
            tag = f"triplane_sample {lookup} {dtype} B{b} C{c} {h}x{w} N{n}"
            rel, atol, rtol = TOL[dtype]
            (got,), (gp, gq) = _grads(lambda p, q, s=scale, k=lookup: (_impl("triton").triplane_sample(p, q, s, k),),
                                      [planes, pts], [gout])
            # the reference on the same (rounded) values in fp32
            (want,), (wp, wq) = _grads(lambda p, q, s=scale, k=lookup: (reference.triplane_sample(p, q, s, k),),
                                       [planes.float(), pts], [gout])
            check(f"{tag} forward", got.float(), want, rel, atol, rtol)
            check(f"{tag} grad planes", gp.float(), wp, rel, atol, rtol)
            if dtype == torch.float32:  # half planes: the point gradient mixes texel differences in fp32
                check(f"{tag} grad points", gq, wq, 1e-3, 1e-3, 1e-3)


def _depths(m, s, device, gen):
    t = torch.sort(torch.rand(m, s, generator=gen), dim=-1).values * 0.5 + 0.75
    return t.to(device)


def _composite_run(impl, rgb, sigma, t, far_opaque, ws):
    """composite's (rgb, opacity, depth_raw), their gradients to rgb and sigma, and the weights."""
    def fn(r, sg):
        out = _impl(impl).composite(r, sg, t, far_opaque, 0.0)
        return out["rgb"], out["opacity"], out["depth_raw"], out["weights"]
    outs, g = _grads(lambda r, sg: fn(r, sg)[:3], [rgb, sigma], ws)
    return outs, g, fn(rgb, sigma)[3]


def test_composite(device, shapes, gen):
    for (m, s, c) in shapes:
        for far_opaque in (True, False):
            rgb = torch.randn(m, s, c, generator=gen).to(device)
            sigma = (torch.rand(m, s, generator=gen) ** 3 * 60).to(device)  # mostly thin, some opaque
            t = _depths(m, s, device, gen)
            ws = [torch.randn(m, c, generator=gen).to(device), torch.randn(m, generator=gen).to(device),
                  torch.randn(m, generator=gen).to(device)]
            tag = f"composite M{m} S{s} C{c} far_opaque={far_opaque}"

            (gr, go, gd), (ggr, ggs), gw = _composite_run("triton", rgb, sigma, t, far_opaque, ws)
            (wr, wo, wd), (wgr, wgs), ww = _composite_run("reference", rgb, sigma, t, far_opaque, ws)
            for name, a, b in (("rgb", gr, wr), ("opacity", go, wo), ("depth_raw", gd, wd), ("weights", gw, ww),
                               ("grad rgb", ggr, wgr), ("grad sigma", ggs, wgs)):
                if b.numel():
                    check(f"{tag} {name}", a, b, 1e-4, 1e-4, 1e-3)
        with torch.no_grad():  # early termination (inference)
            a = _impl("triton").composite(rgb, sigma, t, True, 0.05)
            b_ = reference.composite(rgb, sigma, t, True, 0.05)
        for k in ("opacity", "weights", "depth"):
            check(f"composite M{m} S{s} C{c} stop=0.05 {k}", a[k], b_[k], 1e-4, 1e-4, 1e-3)


def _params(c, hd, device, gen):
    return (torch.randn(hd, c, generator=gen).to(device) / c ** 0.5, torch.randn(hd, generator=gen).to(device) * 0.1,
            torch.randn(4, hd, generator=gen).to(device) / hd ** 0.5, torch.randn(4, generator=gen).to(device) * 0.1)


@torch.no_grad()
def test_query(device, shapes, dtypes, gen):
    for (b, c, hd, h, n) in shapes:
        for dtype in dtypes:
            planes = torch.randn(b, 3, c, h, h, generator=gen).to(device, dtype)
            pts = _points(b, n, 0.25, device, gen)
            params = _params(c, hd, device, gen)
            rel, atol, rtol = TOL[dtype]
            got = _impl("triton").query_points(planes, pts, 0.25, params, -1.0)
            want = reference.query_points(planes.float(), pts, 0.25, params, -1.0)
            for name, x, y in zip(("rgb", "sigma"), got, want):
                check(f"query_points {dtype} B{b} C{c} Hd{hd} {h}x{h} N{n} {name}", x, y, rel, atol, rtol)


@torch.no_grad()
def test_march(device, shapes, dtypes, gen):
    for (b, r, s, c, hd, h) in shapes:
        for dtype in dtypes:
            for stop, shift in ((0.0, 0.0), (0.01, 0.0), (0.01, 30.0)):  # shift 30: opaque, rays terminate
                planes = (torch.randn(b, 3, c, h, h, generator=gen) * 2).to(device, dtype)
                origins = torch.randn(b, r, 3, generator=gen)
                origins = (origins / origins.norm(dim=-1, keepdim=True)).to(device)
                dirs = -origins + 0.2 * torch.randn(b, r, 3, generator=gen).to(device)
                dirs = dirs / dirs.norm(dim=-1, keepdim=True)
                t = torch.sort(torch.rand(b, r, s, generator=gen), dim=-1).values.to(device) * 0.5 + 0.75
                params = _params(c, hd, device, gen)
                rel, atol, rtol = TOL[dtype]
                got = _impl("triton").march_rays(planes, origins, dirs, t, 0.25, params, shift, True, stop)
                want = reference.march_rays(planes.float(), origins, dirs, t, 0.25, params, shift, True, stop)
                for k in ("rgb", "opacity", "depth", "weights"):
                    name = f"march_rays {dtype} B{b} R{r} S{s} C{c} Hd{hd} {h}x{h} stop={stop} shift={shift} {k}"
                    check(name, got[k], want[k], max(rel, 1e-4), max(atol, 1e-4), max(rtol, 1e-3))
                # empty-space skipping: given intervals, a third of them 0 (samples not evaluated)
                deltas = (torch.rand(b, r, s, generator=gen) * 0.05 * (torch.rand(b, r, s, generator=gen) > 0.33)
                          ).to(device)
                got = _impl("triton").march_rays(planes, origins, dirs, t, 0.25, params, shift, True, stop, deltas)
                want = reference.march_rays(planes.float(), origins, dirs, t, 0.25, params, shift, True, stop, deltas)
                for k in ("rgb", "opacity", "depth", "weights"):
                    name = f"march_rays deltas {dtype} B{b} R{r} S{s} C{c} Hd{hd} {h}x{h} stop={stop} shift={shift} {k}"
                    check(name, got[k], want[k], max(rel, 1e-4), max(atol, 1e-4), max(rtol, 1e-3))


SIZES = {
    "tiny": dict(
        triplane=[(1, 4, 5, 7, 20), (2, 32, 8, 8, 33), (1, 3, 16, 9, 17)],
        composite=[(5, 8, 3), (19, 13, 3), (3, 1, 3), (6, 7, 0)],
        query=[(1, 32, 64, 8, 40), (2, 12, 20, 5, 17)],
        march=[(1, 20, 6, 32, 64, 8), (2, 5, 3, 12, 20, 6)],
    ),
    "real": dict(
        triplane=[(4, 32, 256, 256, 200_000), (2, 32, 512, 512, 100_000)],
        composite=[(65536, 96, 3), (4096, 48, 0)],
        query=[(2, 32, 64, 256, 300_000)],
        march=[(1, 65536, 96, 32, 64, 256)],
    ),
}


QUICK = {"triplane_sample": ("triplane", test_triplane), "composite": ("composite", test_composite),
         "query_points": ("query", test_query), "march_rays": ("march", test_march)}


def quick(op: str, device: torch.device | str) -> tuple[bool, str]:
    """Run the first tiny case of `op` (Triton vs reference, fp32) silently: (all passed, first failure)."""
    global _verbose
    key, fn = QUICK[op]
    shape = SIZES["tiny"][key][0]
    start, _verbose = len(_results), False
    try:
        with torch.enable_grad():
            gen = torch.Generator().manual_seed(0)
            if key in ("triplane", "query", "march"):
                fn(torch.device(device), [shape], [torch.float32], gen)
            else:
                fn(torch.device(device), [shape], gen)
    finally:
        _verbose = True
    bad = [r["name"] for r in _results[start:] if not r["ok"]]
    return not bad, (bad[0] if bad else "")


def build_parser(prog: str = "python -m core.kernels.selftest") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="tiny", choices=sorted(SIZES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", default="", help="comma-separated subset of " + ",".join(OPS))
    p.add_argument("--half", action="store_true", help="also fp16 and bf16 planes")
    return p


OPS = ("triplane", "composite", "query", "march")


def run_ops(args: argparse.Namespace, gen: torch.Generator) -> None:
    """The op checks `args` asks for (--only, --size, --device, --half)."""
    device = torch.device(args.device)
    sizes = SIZES[args.size]
    only = set(filter(None, args.only.split(","))) or set(OPS)
    dtypes = [torch.float32] + ([torch.float16, torch.bfloat16] if args.half else [])
    if "triplane" in only:
        test_triplane(device, sizes["triplane"], dtypes, gen)
    if "composite" in only:
        test_composite(device, sizes["composite"], gen)
    if "query" in only:
        test_query(device, sizes["query"], dtypes, gen)
    if "march" in only:
        test_march(device, sizes["march"], dtypes[:1] if args.size == "tiny" else dtypes, gen)


def interpreter_missing(device: torch.device) -> bool:
    """On CPU the kernels run only under TRITON_INTERPRET=1 (said on stderr when it is missing)."""
    if device.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        print("error: on CPU the Triton kernels need TRITON_INTERPRET=1 in the environment", file=sys.stderr)
        return True
    return False


def summary() -> int:
    """Print the summary line of every check so far; 1 when one failed."""
    failed = [r["name"] for r in _results if not r["ok"]]
    print(json.dumps({"checks": len(_results), "failed": failed}), flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if interpreter_missing(torch.device(args.device)):
        return 2
    run_ops(args, torch.Generator().manual_seed(0))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
