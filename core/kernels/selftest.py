"""Compare the Triton kernels with the PyTorch references on random inputs (forward and gradients).

    TRITON_INTERPRET=1 python -m core.kernels.selftest [--size tiny|real] [--device cpu|cuda] [--only OP]

Prints one JSON line per check ({"name", "ok", "rel_l2", "cosine", "max_excess"}) and exits 1 when
one fails. A check passes when the relative L2 error is below `rel`, the cosine similarity is at
least 0.999 and every element satisfies |got - want| <= atol + rtol * |want| (max_excess <= 0).
On CPU it needs TRITON_INTERPRET=1 set before Python starts (tests/test_kernels.py runs it in a
subprocess for that reason); `--size real` on CUDA runs real-size inputs (tests/test_kernels_gpu.py).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from . import ops

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
        for dtype in dtypes:
            scale = 0.3
            planes = torch.randn(b, 3, c, h, w, generator=gen).to(device, dtype)
            pts = _points(b, n, scale, device, gen)
            gout = torch.randn(b, n, c, generator=gen).to(device)
            tag = f"triplane_sample {dtype} B{b} C{c} {h}x{w} N{n}"
            rel, atol, rtol = TOL[dtype]
            (got,), (gp, gq) = _grads(lambda p, q: (ops.triplane_sample(p, q, scale, impl="triton"),),
                                      [planes, pts], [gout])
            # the reference on the same (rounded) values in fp32
            (want,), (wp, wq) = _grads(lambda p, q: (ops.triplane_sample(p, q, scale, impl="reference"),),
                                       [planes.float(), pts], [gout])
            check(f"{tag} forward", got.float(), want, rel, atol, rtol)
            check(f"{tag} grad planes", gp.float(), wp, rel, atol, rtol)
            if dtype == torch.float32:  # half planes: the point gradient mixes texel differences in fp32
                check(f"{tag} grad points", gq, wq, 1e-3, 1e-3, 1e-3)


def _depths(m, s, device, gen):
    t = torch.sort(torch.rand(m, s, generator=gen), dim=-1).values * 0.5 + 0.75
    return t.to(device)


def test_composite(device, shapes, gen):
    for (m, s, c) in shapes:
        for far_opaque in (True, False):
            rgb = torch.randn(m, s, c, generator=gen).to(device)
            sigma = (torch.rand(m, s, generator=gen) ** 3 * 60).to(device)  # mostly thin, some opaque
            t = _depths(m, s, device, gen)
            ws = [torch.randn(m, c, generator=gen).to(device), torch.randn(m, generator=gen).to(device),
                  torch.randn(m, generator=gen).to(device)]
            tag = f"composite M{m} S{s} C{c} far_opaque={far_opaque}"

            def run(impl):
                def fn(r, sg):
                    out = ops.composite(r, sg, t, far_opaque, impl=impl)
                    return out["rgb"], out["opacity"], out["depth_raw"], out["weights"]
                outs, g = _grads(lambda r, sg: fn(r, sg)[:3], [rgb, sigma], ws)
                return outs, g, fn(rgb, sigma)[3]
            (gr, go, gd), (ggr, ggs), gw = run("triton")
            (wr, wo, wd), (wgr, wgs), ww = run("reference")
            for name, a, b in (("rgb", gr, wr), ("opacity", go, wo), ("depth_raw", gd, wd), ("weights", gw, ww),
                               ("grad rgb", ggr, wgr), ("grad sigma", ggs, wgs)):
                if b.numel():
                    check(f"{tag} {name}", a, b, 1e-4, 1e-4, 1e-3)
        with torch.no_grad():  # early termination (inference)
            a = ops.composite(rgb, sigma, t, True, stop_transmittance=0.05, impl="triton")
            b_ = ops.composite(rgb, sigma, t, True, stop_transmittance=0.05, impl="reference")
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
            got = ops.query_points(planes, pts, 0.25, params, -1.0, impl="triton")
            want = ops.query_points(planes.float(), pts, 0.25, params, -1.0, impl="reference")
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
                got = ops.march_rays(planes, origins, dirs, t, 0.25, params, shift, True, stop, impl="triton")
                want = ops.march_rays(planes.float(), origins, dirs, t, 0.25, params, shift, True, stop,
                                      impl="reference")
                for k in ("rgb", "opacity", "depth", "weights"):
                    name = f"march_rays {dtype} B{b} R{r} S{s} C{c} Hd{hd} {h}x{h} stop={stop} shift={shift} {k}"
                    check(name, got[k], want[k], max(rel, 1e-4), max(atol, 1e-4), max(rtol, 1e-3))


def _tiny_generator(device, plane_res: int, seed: int = 0):
    """A randomly initialised generator of the demo preset's shape, small enough for the interpreter."""
    from ..checkpoint import build_generator
    from ..config import get_preset
    cfg = get_preset("demo")
    g = cfg.generator
    g.z_dim = g.w_dim = 16
    g.plane_res, g.channel_base, g.channel_max, g.decoder_hidden = plane_res, 16 * plane_res, 16, 16
    g.density_shift = 2.0  # denser than at init, so the rays have something to composite
    return build_generator(cfg, seed=seed).to(device).eval()


def test_render(device, shapes, gen):
    """G.render end to end: the viewer's paths (fused march_rays, or query_points + composite) and the
    training path (triplane_sample + composite, gradients to the planes) against kernel_impl='reference'."""
    from .. import cameras as camlib
    for (b, res, plane_res, nc, nf) in shapes:
        G = _tiny_generator(device, plane_res)
        rc = G.cfg.render
        with torch.no_grad():
            planes = G.planes(G.mapping(torch.randn(b, 16, generator=gen).to(device), None))
        cams = camlib.sample_cameras(G.cfg.camera, b, device=device, generator=gen)

        def render(impl, fused=True, stop=0.0, p=planes):
            rc.kernel_impl, rc.fused_march, rc.stop_transmittance = impl, fused, stop
            return G.render(p, cams, resolution=res, num_coarse=nc, num_fine=nf)

        with torch.no_grad():
            want = render("reference")
            for fused in (True, False):
                got = render("triton", fused)
                for k in ("image", "opacity", "depth"):
                    check(f"render {'fused march' if fused else 'query+composite'} B{b} {res}^2 S{nc}+{nf} {k}",
                          got[k], want[k], 1e-4, 1e-4, 1e-3)
        # training: a gradient through the planes (and the decoder) from a weighted image loss
        wts = torch.randn(b, 3, res, res, generator=gen).to(device)
        grads = {}
        for impl in ("reference", "triton"):
            p = planes.detach().clone().requires_grad_(True)
            G.requires_grad_(True)
            G.zero_grad(set_to_none=True)
            img = render(impl, p=p)["image"]
            (img * wts).sum().backward()
            grads[impl] = (img.detach(), p.grad, next(G.decoder.parameters()).grad)
            G.requires_grad_(False)
        for name, x, y in zip(("image", "grad planes", "grad decoder"), grads["triton"], grads["reference"]):
            check(f"render training B{b} {res}^2 S{nc}+{nf} {name}", x, y, 1e-4, 1e-4, 1e-3)


SIZES = {
    "tiny": dict(
        triplane=[(1, 4, 5, 7, 20), (2, 32, 8, 8, 33), (1, 3, 16, 9, 17)],
        composite=[(5, 8, 3), (19, 13, 3), (3, 1, 3), (6, 7, 0)],
        query=[(1, 32, 64, 8, 40), (2, 12, 20, 5, 17)],
        march=[(1, 20, 6, 32, 64, 8), (2, 5, 3, 12, 20, 6)],
        render=[(2, 6, 8, 5, 4)],
    ),
    "real": dict(
        triplane=[(4, 32, 256, 256, 200_000), (2, 32, 512, 512, 100_000)],
        composite=[(65536, 96, 3), (4096, 48, 0)],
        query=[(2, 32, 64, 256, 300_000)],
        march=[(1, 65536, 96, 32, 64, 256)],
        render=[(2, 128, 256, 48, 48)],
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.kernels.selftest", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="tiny", choices=sorted(SIZES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", default="", help="comma-separated subset of triplane,composite,query,march,render")
    p.add_argument("--half", action="store_true", help="also fp16 and bf16 planes")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu" and not ops.interpreter_enabled():
        print("error: on CPU the Triton kernels need TRITON_INTERPRET=1 in the environment", file=sys.stderr)
        return 2
    gen = torch.Generator().manual_seed(0)
    sizes = SIZES[args.size]
    only = set(filter(None, args.only.split(","))) or {"triplane", "composite", "query", "march", "render"}
    dtypes = [torch.float32] + ([torch.float16, torch.bfloat16] if args.half else [])
    if "triplane" in only:
        test_triplane(device, sizes["triplane"], dtypes, gen)
    if "composite" in only:
        test_composite(device, sizes["composite"], gen)
    if "query" in only:
        test_query(device, sizes["query"], dtypes, gen)
    if "march" in only:
        test_march(device, sizes["march"], dtypes[:1] if args.size == "tiny" else dtypes, gen)
    if "render" in only:
        test_render(device, sizes["render"], gen)
    failed = [r["name"] for r in _results if not r["ok"]]
    print(json.dumps({"checks": len(_results), "failed": failed}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
