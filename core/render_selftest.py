"""The render ops' self-test plus G.render end to end: Triton paths against kernel_impl='reference'.

    TRITON_INTERPRET=1 python -m core.render_selftest [--size tiny|real] [--device cpu|cuda] [--only OPS,render] [--half]

The op checks are core.kernels.selftest's; this module adds the generator check (the viewer's
fused march_rays and query_points + composite paths, and the training path with gradients to the
planes and the decoder) and lives above core.kernels, which imports nothing above itself. Output
and exit code as core.kernels.selftest: one JSON line per check, a summary line, 1 when one failed.
"""

from __future__ import annotations

import sys

import torch

from . import cameras as camlib
from .checkpoint import build_generator
from .config import get_preset
from .kernels import selftest
from .kernels.selftest import check

RENDER_SIZES = {"tiny": [(2, 6, 8, 5, 4)], "real": [(2, 128, 256, 48, 48)]}  # (batch, res, plane res, coarse, fine)


def _tiny_generator(device, plane_res: int, seed: int = 0):
    """A randomly initialised generator of the demo preset's shape, small enough for the interpreter."""
    cfg = get_preset("demo")
    g = cfg.generator
    g.z_dim = g.w_dim = 16
    g.plane_res, g.channel_base, g.channel_max, g.decoder_hidden = plane_res, 16 * plane_res, 16, 16
    g.density_shift = 2.0  # denser than at init, so the rays have something to composite
    return build_generator(cfg, seed=seed).to(device).eval()


def test_render(device, shapes, gen):
    """G.render end to end: the viewer's paths (fused march_rays, or query_points + composite) and the
    training path (triplane_sample + composite, gradients to the planes) against kernel_impl='reference'."""
    for (b, res, plane_res, nc, nf) in shapes:
        G = _tiny_generator(device, plane_res)
        with torch.no_grad():
            planes = G.planes(G.mapping(torch.randn(b, 16, generator=gen).to(device), None))
        cams = camlib.sample_cameras(G.cfg.camera, b, device=device, generator=gen)

        def render(impl, fused=True, p=planes, G=G, cams=cams, res=res, nc=nc, nf=nf, skip=False):
            return G.render(p, cams, resolution=res, num_coarse=nc, num_fine=nf, impl=impl, fused_march=fused,
                            skip_empty=skip)

        with torch.no_grad():
            want = render("reference")
            for fused in (True, False):
                got = render("triton", fused)
                for k in ("image", "opacity", "depth"):
                    check(f"render {'fused march' if fused else 'query+composite'} B{b} {res}^2 S{nc}+{nf} {k}",
                          got[k], want[k], 1e-4, 1e-4, 1e-3)
            # empty-space skipping: Triton's march_rays with intervals against the CPU's compacting
            # march with the folded decoder (a random model is fog: let it skip anyway)
            G.cfg.render.skip_max_occupied = 1.0
            want, got = render("reference", skip=True), render("triton", skip=True)
            G.cfg.render.skip_max_occupied = 0.5
            for k in ("image", "opacity", "depth"):
                check(f"render skip empty B{b} {res}^2 S{nc}+{nf} {k}", got[k], want[k], 1e-4, 1e-4, 1e-3)
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


def main(argv: list[str] | None = None) -> int:
    p = selftest.build_parser("python -m core.render_selftest")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if selftest.interpreter_missing(device):
        return 2
    only = set(filter(None, args.only.split(",")))
    gen = torch.Generator().manual_seed(0)
    if not only or only - {"render"}:
        args.only = ",".join(sorted(only - {"render"}))
        selftest.run_ops(args, gen)
    if not only or "render" in only:
        test_render(device, RENDER_SIZES[args.size], gen)
    return selftest.summary()


if __name__ == "__main__":
    sys.exit(main())
