"""The fused CPU loops (Numba) against their PyTorch references on random inputs: `march_rays` with
and without the folded decoder, intervals of zero and early termination; `skip_depths` on the grid
of a closed-form field seen by random cameras; the dispatch rules; and G.render on the demo model
through both paths."""

import math

import pytest
import torch

from core import kernels
from core.cameras import from_angles
from core.kernels import reference
from core.kernels.numba_march import march_rays as numba_march
from core.render.occupancy import density_threshold, field_node_density, grid_from_nodes, skip_depths
from core.render.rays import make_rays


def _inputs(dtype=torch.float32, b=2, r=150, s=24, c=8, hd=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    planes = torch.randn(b, 3, c, 9, 11, generator=g, dtype=dtype)
    params = (torch.randn(hd, c, generator=g, dtype=dtype) * 0.5, torch.randn(hd, generator=g, dtype=dtype) * 0.1,
              torch.randn(4, hd, generator=g, dtype=dtype) * 0.5, torch.randn(4, generator=g, dtype=dtype))
    # origins around the cube (some rays miss it, some points fall outside the planes)
    o = (torch.rand(b, r, 3, generator=g, dtype=dtype) - 0.5) * 0.6
    d = torch.nn.functional.normalize(torch.randn(b, r, 3, generator=g, dtype=dtype), dim=-1)
    t = torch.sort(torch.rand(b, r, s, generator=g, dtype=dtype) * 0.6, dim=-1).values
    deltas = torch.rand(b, r, s, generator=g, dtype=dtype) * 0.6
    deltas[torch.rand(b, r, s, generator=g) < 0.3] = 0  # skipped samples
    return planes, params, o, d, t, deltas


@pytest.mark.parametrize("folded", [False, True])
@pytest.mark.parametrize("stop", [0.0, 0.2])
def test_march_matches_the_reference(folded, stop):
    planes, params, o, d, t, deltas = _inputs()
    if folded:
        planes, params = reference.fold_first_layer(planes, params)
    want = reference.march_rays(planes, o, d, t, 0.25, params, 1.0, True, stop, deltas)
    got = numba_march(planes, o, d, t, 0.25, params, 1.0, True, stop, deltas)
    assert float(want["opacity"].max()) > 0.5  # the rays do hit something
    if stop > 0:  # early termination happened somewhere, and dropped those samples' weights in both
        trans = 1 - torch.cumsum(want["weights"], -1)
        assert bool((trans < stop).any())
    for k in ("rgb", "opacity", "depth", "depth_raw", "weights"):
        torch.testing.assert_close(got[k], want[k], atol=2e-5, rtol=1e-4, msg=k)


def test_march_without_deltas_and_in_fp64_and_half_planes():
    planes, params, o, d, t, _ = _inputs(torch.float64, seed=1)
    for far_opaque in (True, False):
        want = reference.march_rays(planes, o, d, t, 0.25, params, 0.5, far_opaque)
        got = numba_march(planes, o, d, t, 0.25, params, 0.5, far_opaque)
        assert got["rgb"].dtype == torch.float64
        for k in want:
            torch.testing.assert_close(got[k], want[k], atol=1e-10, rtol=1e-9, msg=k)
    planes, params, o, d, t, deltas = _inputs(seed=2)
    half = planes.half()
    want = reference.march_rays(half, o, d, t, 0.25, params, 0.0, True, 0.0, deltas)
    got = numba_march(half, o, d, t, 0.25, params, 0.0, True, 0.0, deltas)
    # the reference rounds the fp32-sampled features back to fp16; the fused loop keeps fp32 (as Triton)
    torch.testing.assert_close(got["rgb"], want["rgb"], atol=3e-3, rtol=1e-2)


def test_march_on_channels_last_planes_reads_the_same_texels():
    planes, params, o, d, t, deltas = _inputs(seed=3)
    a = numba_march(planes, o, d, t, 0.25, params, 0.0, True, 0.0, deltas)
    b = numba_march(reference.channels_last(planes), o, d, t, 0.25, params, 0.0, True, 0.0, deltas)
    assert torch.equal(a["rgb"], b["rgb"])


def test_dispatch():
    planes, params, o, d, t, deltas = _inputs(r=5)
    assert kernels.resolve_impl("auto", "march_rays", planes, o) == "numba"
    assert kernels.resolve_impl("auto", "query_points", planes, o) == "reference"
    with pytest.raises(kernels.KernelUnavailable, match="no fused CPU kernel"):
        kernels.query_points(planes, o, 0.25, params, 0.0, impl="numba")
    out = kernels.march_rays(planes, o, d, t, 0.25, params, 0.0, True, impl="numba", deltas=deltas)
    assert out["rgb"].shape == (2, 5, 3)
    planes.requires_grad_(True)
    with pytest.raises(ValueError, match="inference-only"):
        kernels.march_rays(planes, o, d, t, 0.25, params, 0.0, True, impl="numba")


def _blob(points):
    dens = 60 * torch.exp(-((points - torch.tensor([0.05, -0.02, 0.03], dtype=points.dtype)) ** 2).sum(-1) / 0.02)
    return torch.zeros(*points.shape[:-1], 3, dtype=points.dtype), dens


@pytest.mark.parametrize("far_always", [False, True])
def test_skip_depths_matches_the_reference(far_always):
    res, half = 32, 1.7  # the whole reach of the rays: outside the grid everything counts as occupied
    cell = 2 * half / res
    lo = (-half,) * 3
    nodes = field_node_density(_blob, lo, cell, res + 1, "cpu").repeat(3, 1, 1, 1)
    grid = grid_from_nodes(nodes, lo, cell, density_threshold(1e-3, 0.5, 1.5), 1, 0.9)
    assert 0.02 < grid.fraction < 0.9
    yaw = torch.linspace(-1.0, 1.0, 3)
    cams = from_angles(yaw, torch.full((3,), 1.4), 1.0, 100.0, near=0.5, far=1.5)  # wide: some rays miss
    o, d = make_rays(cams, 24, None)
    near = cams.near[:, None].expand(o.shape[:2])
    far = cams.far[:, None].expand(o.shape[:2]).clone()
    far[:, ::7] -= 0.1  # rays of unequal spans
    want = skip_depths(grid, o, d, near, far, 12, 1e10, far_always)
    got = skip_depths(grid, o, d, near, far, 12, 1e10, far_always, impl="numba")
    assert bool((want[1][..., :-1] > 0).any()) and bool((want[1][..., :-1] == 0).any())
    torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-5)


def test_render_through_the_fused_loops_equals_the_reference_path():
    from core.checkpoint import load_generator
    from core.networks import plane_cache
    G, _ = load_generator("demo")
    g = G.cfg.generator
    with torch.no_grad():
        w = G.mapping(torch.randn(1, g.z_dim, generator=torch.Generator().manual_seed(1)), torch.eye(g.c_dim)[[2]])
        planes = G.planes(w)
        cams = from_angles(torch.tensor([0.4]), math.pi / 2 - 0.2, cfg=G.cfg.camera)
        plane_cache.clear()
        want = G.render(planes, cams, 48, impl="reference")
        got = G.render(planes, cams, 48)  # auto: the fused CPU loops
    assert float(want["opacity"].max()) > 0.5
    for k in ("image", "opacity", "depth"):
        torch.testing.assert_close(got[k], want[k], atol=2e-4, rtol=0, msg=k)
