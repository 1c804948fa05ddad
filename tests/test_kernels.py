"""core.kernels: dispatch contract, the references against independent oracles, and the Triton
kernels against the references under the interpreter (TRITON_INTERPRET=1, tiny sizes, CPU)."""

import json
import logging
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core import kernels
from core.kernels import reference
from core.render.renderer import render_rays
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
needs_triton = pytest.mark.skipif(not kernels.triton_installed(),
                                  reason="triton is not installed (pip install -r requirements.txt; Linux x86-64)")


# ------------------------------------------------------------------------------------------------
# Triton vs reference, in a subprocess: the interpreter must be switched on before triton is imported


@pytest.fixture(scope="module")
def interpreter_checks():
    """Every check of `python -m core.render_selftest --size tiny --half` (one subprocess for the module):
    (the JSON line of each check, the summary line)."""
    if not kernels.triton_installed():
        pytest.skip("triton is not installed (pip install -r requirements.txt; Linux x86-64)")
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "core.render_selftest", "--size", "tiny", "--half"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines and proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return lines[:-1], lines[-1]


@pytest.mark.parametrize("family", ["triplane_sample", "composite", "query_points", "march_rays", "grad planes",
                                    "grad points", "grad sigma", "grad rgb", "float16", "bfloat16", "stop=0.05",
                                    "render fused march", "render query+composite", "render training", "march_rays deltas",
                                    "render skip empty"])
def test_triton_kernels_match_reference_under_interpreter(interpreter_checks, family):
    """The Triton kernels against the references (forward and gradients), one case per family of checks."""
    checks, _ = interpreter_checks
    mine = [c for c in checks if family in c["name"]]
    assert mine, f"no check of {family}"
    failed = [c for c in mine if not c["ok"]]
    assert not failed, failed


def test_interpreter_run_is_complete(interpreter_checks):
    checks, summary = interpreter_checks
    assert summary["checks"] == len(checks) >= 100 and summary["failed"] == [c["name"] for c in checks if not c["ok"]]


@needs_triton
def test_selftest_detects_a_wrong_kernel():
    """The comparison can fail: a kernel fed a wrong cube scale is caught, by the selftest and by the
    check that "auto" runs before it trusts a kernel on a device."""
    code = ("import sys, torch; from core.kernels import ops, selftest, triton_ops as t;"
            "orig = t.triplane_sample;"
            "t.triplane_sample = lambda p, q, s, k='epigraf': orig(p, q, s * 1.01, k);"
            "selftest.SIZES['tiny']['triplane'] = [(1, 4, 5, 7, 20)];"
            "assert not ops.verify_triton('triplane_sample', 'cpu');"
            "assert ops.verify_triton('composite', 'cpu');"
            "sys.exit(selftest.main(['--only', 'triplane']))")
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '"ok": false' in proc.stdout


# ------------------------------------------------------------------------------------------------
# Dispatch contract (no triton needed)


def test_auto_on_cpu_uses_reference_logs_once_and_never_imports_triton():
    code = ("import logging, sys, torch; logging.basicConfig(level=logging.INFO, stream=sys.stdout);"
            "from core import kernels;"
            "p = torch.randn(1, 3, 4, 5, 5); q = torch.rand(1, 7, 3) - 0.5;"
            "a = kernels.triplane_sample(p, q, 0.5); b = kernels.triplane_sample(p, q, 0.5);"
            "assert torch.equal(a, kernels.triplane_sample(p, q, 0.5, impl='reference'));"
            "print('TRITON_IMPORTED' if 'triton' in sys.modules else 'TRITON_NOT_IMPORTED')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "TRITON_NOT_IMPORTED" in proc.stdout
    assert proc.stdout.count("uses the PyTorch reference") == 1


def test_triton_on_cpu_without_interpreter_raises(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    p, q = torch.randn(1, 3, 4, 5, 5), torch.rand(1, 7, 3) - 0.5
    with pytest.raises(kernels.KernelUnavailable, match="CUDA|triton"):
        kernels.triplane_sample(p, q, 0.5, impl="triton")
    with pytest.raises(ValueError, match="impl must be one of"):
        kernels.triplane_sample(p, q, 0.5, impl="cuda")


def test_auto_log_message(caplog):
    kernels.ops._logged.clear()
    with caplog.at_level(logging.INFO, logger="core.kernels"):
        for _ in range(3):
            kernels.composite(torch.rand(2, 4, 3), torch.rand(2, 4), torch.sort(torch.rand(2, 4)).values, True)
    assert sum("composite on cpu tensors uses the PyTorch reference" in r.message for r in caplog.records) == 1


def test_shape_checks():
    p = torch.randn(1, 3, 4, 5, 5)
    with pytest.raises(ValueError, match="planes must be"):
        kernels.triplane_sample(p[:, :2], torch.zeros(1, 3, 3), 0.5)
    with pytest.raises(ValueError, match="points must be"):
        kernels.triplane_sample(p, torch.zeros(2, 3, 3), 0.5)
    with pytest.raises(ValueError, match="differ"):
        kernels.composite(torch.zeros(2, 4, 3), torch.zeros(2, 4), torch.zeros(2, 5), True)
    with pytest.raises(ValueError, match="params"):
        kernels.query_points(p, torch.zeros(1, 3, 3), 0.5, (torch.zeros(8, 3), torch.zeros(8), torch.zeros(4, 8),
                                                           torch.zeros(4)), 0.0)
    sigma = torch.rand(2, 4, requires_grad=True)
    with pytest.raises(ValueError, match="inference"):
        kernels.composite(torch.zeros(2, 4, 3), sigma, torch.sort(torch.rand(2, 4)).values, True,
                          stop_transmittance=0.1)


# ------------------------------------------------------------------------------------------------
# References against independent oracles


def grid_sample_triplane(p, q, scale):
    """The oracle: three F.grid_sample lookups (xy, xz, yz planes), averaged -> [B, N, C]."""
    x = q / scale
    feats = 0
    for k, (i, j) in enumerate(((0, 1), (0, 2), (1, 2))):
        grid = torch.stack([x[..., i], x[..., j]], -1)[:, None]  # [B, 1, N, 2]
        feats = feats + F.grid_sample(p[:, k], grid, align_corners=True, padding_mode="zeros")[:, :, 0]
    return (feats / 3).transpose(1, 2)


def test_reference_triplane_matches_grid_sample_values_and_gradients():
    """The embedding_bag lookup against three F.grid_sample calls, in float64, gradients included."""
    gen = torch.Generator().manual_seed(1)
    planes = torch.randn(2, 3, 5, 6, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    pts = ((torch.rand(2, 40, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 0.35).requires_grad_(True)
    scale = 0.3
    oracle = partial(grid_sample_triplane, scale=scale)
    weights = torch.randn(2, 40, 5, generator=gen, dtype=torch.float64)
    got = reference.triplane_sample(planes, pts, scale)
    want = oracle(planes, pts)
    torch.testing.assert_close(got, want)
    g_got = torch.autograd.grad((got * weights).sum(), [planes, pts])
    g_want = torch.autograd.grad((want * weights).sum(), [planes, pts])
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("which", ["planes", "points"])
def test_reference_triplane_gradient_to_one_input_alone(which):
    """The lookup's gradient to the planes alone and to the points alone against a float64 oracle,
    grid_sample's gradients, with many points sharing each texel (4x4 planes, 200 points)."""
    gen = torch.Generator().manual_seed(2)
    planes = torch.randn(1, 3, 3, 4, 4, generator=gen, dtype=torch.float64)
    pts = (torch.rand(1, 200, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 0.33
    weights = torch.randn(1, 200, 3, generator=gen, dtype=torch.float64)
    x = (planes if which == "planes" else pts).requires_grad_(True)
    (got,) = torch.autograd.grad((reference.triplane_sample(planes, pts, 0.3) * weights).sum(), [x])
    (want,) = torch.autograd.grad((grid_sample_triplane(planes, pts, 0.3) * weights).sum(), [x])
    assert got.abs().max() > 0
    torch.testing.assert_close(got, want)


def test_reference_half_planes_are_sampled_in_fp32():
    planes = torch.randn(1, 3, 4, 8, 8).to(torch.bfloat16)
    pts = torch.rand(1, 50, 3) - 0.5
    got = reference.triplane_sample(planes, pts, 0.5)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), reference.triplane_sample(planes.float(), pts, 0.5), atol=1e-2, rtol=1e-2)


def _composite_loop(rgb, sigma, t, far_delta, stop=0.0):
    """Per-ray Python loop with the textbook product of (1 - alpha)."""
    m, s, c = rgb.shape
    out_rgb, out_o, out_d = torch.zeros(m, c, dtype=torch.float64), torch.zeros(m, dtype=torch.float64), \
        torch.zeros(m, dtype=torch.float64)
    for r in range(m):
        trans = 1.0
        for i in range(s):
            delta = (t[r, i + 1] - t[r, i]).item() if i + 1 < s else far_delta
            alpha = 1 - torch.exp(-sigma[r, i] * delta).item()
            if trans >= stop:
                out_rgb[r] += trans * alpha * rgb[r, i]
                out_o[r] += trans * alpha
                out_d[r] += trans * alpha * t[r, i]
            trans *= 1 - alpha
    return out_rgb, out_o, out_d


@pytest.mark.parametrize("far_opaque,stop", [(True, 0.0), (False, 0.0), (True, 0.2)])
def test_reference_composite_matches_per_ray_loop(far_opaque, stop):
    gen = torch.Generator().manual_seed(2)
    rgb = torch.randn(6, 9, 3, generator=gen, dtype=torch.float64)
    sigma = torch.rand(6, 9, generator=gen, dtype=torch.float64) ** 2 * 20
    t = torch.sort(torch.rand(6, 9, generator=gen, dtype=torch.float64), -1).values
    out = reference.composite(rgb, sigma, t, far_opaque, stop)
    want = _composite_loop(rgb, sigma, t, reference.FAR_DELTA_OPAQUE if far_opaque else reference.FAR_DELTA_OPEN,
                           stop)
    for k, w in zip(("rgb", "opacity", "depth_raw"), want):
        torch.testing.assert_close(out[k], w)


def test_generator_query_fused_path_equals_differentiable_path():
    """G.query under no_grad goes through kernels.query_points; with gradients through sample + decoder."""
    from core.checkpoint import build_generator
    cfg = tiny_config()
    G = build_generator(cfg, seed=1)
    planes = torch.randn(2, 3, cfg.generator.plane_channels, 16, 16)
    pts = torch.rand(2, 100, 3) * 0.4 - 0.2
    with torch.no_grad():
        rgb_a, sig_a = G.query(planes, pts)
    rgb_b, sig_b = G.query(planes, pts.requires_grad_(True))
    torch.testing.assert_close(rgb_a, rgb_b.detach())
    torch.testing.assert_close(sig_a, sig_b.detach())


def test_march_driver_equals_field_path():
    """render_rays with a fused `march` (here the reference march_rays) equals the field + composite path."""
    from core.checkpoint import build_generator
    cfg = tiny_config()
    G = build_generator(cfg, seed=1)
    g = cfg.generator
    planes = torch.randn(1, 3, g.plane_channels, 16, 16)
    origins = torch.tensor([[[0.0, 0.0, 1.0]]]).expand(1, 30, 3)
    dirs = torch.randn(1, 30, 3) * 0.1 + torch.tensor([0.0, 0.0, -1.0])
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    near, far = torch.tensor([0.75]), torch.tensor([1.25])
    params = G.decoder.params()
    with torch.no_grad():
        def march(o, d, t):
            return kernels.march_rays(planes, o, d, t, g.cube_scale, params, g.density_shift, True, impl="reference")
        kw = dict(num_coarse=8, num_fine=8, far_opaque=True, deterministic=True)
        a = render_rays(None, origins, dirs, near, far, march=march, **kw)
        b = render_rays(lambda p: G.query(planes, p), origins, dirs, near, far, **kw)
    for k in ("rgb", "opacity", "depth", "depth_raw"):
        torch.testing.assert_close(a[k], b[k])


def test_render_kernel_impl_reference_equals_auto_on_cpu_and_stop_transmittance_is_close():
    from core import cameras as camlib
    from core.checkpoint import build_generator
    cfg = tiny_config()
    G = build_generator(cfg, seed=1)
    with torch.no_grad():
        planes = G.planes(G.mapping(torch.randn(1, cfg.generator.z_dim)))
        G.prepare(planes)  # fold now: a planes tensor's first render is unfolded (equal up to rounding)
        cams = camlib.from_config(cfg.camera)
        a = G.render(planes, cams, resolution=8)
        b = G.render(planes, cams, resolution=8, impl="reference")
        G.cfg.render.stop_transmittance = 1e-4
        c = G.render(planes, cams, resolution=8)
    torch.testing.assert_close(a["image"], b["image"], rtol=0, atol=0)
    torch.testing.assert_close(c["image"], b["image"], atol=2e-3, rtol=0)


def test_bench_end_to_end_table_on_cpu():
    """`core.bench kernels --part e2e`: the reference rows of both targets are timed on the CPU and
    the Triton rows say they need CUDA (instead of silently timing the reference twice)."""
    proc = subprocess.run([sys.executable, "-m", "core.bench", "kernels", "--device", "cpu", "--part", "e2e",
                           "--repeats", "1"], cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln.split("|")[1:-1] for ln in proc.stdout.splitlines() if ln.startswith("| viewer") or
            ln.startswith("| training")]
    assert len(rows) == 5, proc.stdout
    for cells in rows:
        name, impl, ms = (c.strip() for c in cells[:3])
        if impl == "reference":
            assert float(ms) > 0 and cells[5].strip() == "1.00", cells
        else:
            assert ms == "needs CUDA", cells
