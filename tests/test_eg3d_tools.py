"""generate, metrics and meshes on EG3D models (the official fixture snapshot, a random eg3d_demo)."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from test_metrics import CountingNet, StandInDataset, write_pngs

from core import cameras as camlib
from core.checkpoint import load_generator
from core.errors import UserError
from core.generate import main as generate
from core.geometry.level import generator_level
from core.metrics.evaluate import compute_metrics
from core.networks.eg3d import camera_label

SNAP = str(Path(__file__).parent / "fixtures" / "eg3d_official" / "snapshot_ffhq_tiny.pkl")


def test_generate_images_depth_and_raw(tmp_path):
    assert generate(["--ckpt", SNAP, "--seeds", "0-1", "--outdir", str(tmp_path), "--depth", "--raw",
                     "--trunc", "0.7"]) == 0
    img, depth, raw = (imageio.imread(tmp_path / f"seed0001{s}.png") for s in ("", "_depth", "_raw"))
    assert img.shape == depth.shape == raw.shape == (128, 128, 3)  # the neural outputs shown at image size
    assert raw.reshape(32, 4, 32, 4, 3).std(axis=(1, 3)).max() == 0  # nearest: 4x4 blocks of one neural pixel
    with pytest.raises(UserError, match="EG3D"):
        generate(["--ckpt", "demo", "--seeds", "0", "--outdir", str(tmp_path / "x"), "--raw"])


def test_metrics_condition_on_the_rendering_camera(tmp_path, monkeypatch):
    write_pngs(tmp_path / "d", 4, 16)
    G, _ = load_generator("random:eg3d_demo")
    seen = []
    mapping = G.mapping
    monkeypatch.setattr(G, "mapping", lambda z, c=None, psi=1.0, **kw: seen.append(c) or mapping(z, c, psi, **kw))
    rendered = []
    render = G.render
    monkeypatch.setattr(G, "render", lambda planes, cams, **kw: rendered.append(cams) or render(planes, cams, **kw))
    out = compute_metrics(G, StandInDataset(tmp_path / "d"), ["kid4"], "cpu", progress=False, batch=4,
                          feature_net=CountingNet(), cache_dir=tmp_path / "c")
    assert np.isfinite(out["kid4"])
    assert torch.equal(seen[0], camera_label(rendered[0]))


def test_mesh_grids_and_level():
    """The separable grid of EG3D's planes (xy, xz, zx) equals the plain grid of G.query / G.decode,
    and the automatic level matches silhouettes of the field's own render (no super-resolution)."""
    G, _ = load_generator(SNAP)
    from core.geometry.fastgrid import separable_grid
    from core.geometry.grid import Box, density_grid, generator_field, generator_raw_field
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.cfg.generator.z_dim), psi=0.7)
        planes = G.planes(w)
        out = G.render_field(planes, camlib.from_config(G.cfg.camera), resolution=24)
        assert out["opacity"].shape == (1, 1, 24, 24) and "image_raw" in out
        s = G.cfg.generator.cube_scale
        grid = separable_grid(G, planes, Box((-s,) * 3, (s,) * 3), 32, check=False)  # no fallback: the fast path
        plain = density_grid(generator_field(G, planes), Box((-s,) * 3, (s,) * 3), 32, with_rgb=True)
        assert np.allclose(grid.values, plain.values, rtol=1e-4, atol=1e-5)
        raw = separable_grid(G, planes, Box((-s,) * 3, (s,) * 3), 20, kind="raw", with_rgb=True, check=False)
        plain_raw = density_grid(generator_raw_field(G, planes), Box((-s,) * 3, (s,) * 3), 20, kind="raw",
                                 with_rgb=True)
        assert np.allclose(raw.values, plain_raw.values, rtol=1e-4, atol=1e-4)
        assert np.allclose(raw.rgb, plain_raw.rgb, atol=1e-5)
        choice = generator_level(G, planes, grid, views=2, res=24)
    assert np.isfinite(choice.level)
