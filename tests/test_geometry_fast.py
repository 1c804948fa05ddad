"""The automatic level, the separable grid and decimation, against independent oracles: an
analytic Gaussian fog whose rendered silhouette has a closed form, the plain G.query grid, and
geometric properties of decimated meshes."""

import math

import numpy as np
import pytest
import torch
import trimesh
from test_geometry import _silhouette

from core import cameras as camlib
from core.config import CameraConfig
from core.geometry import Box, auto_level, density_grid, extract_mesh, generator_field, generator_raw_field
from core.geometry.fastgrid import separable_grid
from core.geometry.level import best_iou_level, level_from_views, view_cameras
from core.render.rays import make_rays
from core.render.renderer import render_rays

C0 = torch.tensor([0.04, -0.03, 0.02])
S, A = 0.06, 40.0  # Gaussian fog: sigma = A exp(-|p - C0|^2 / (2 S^2)), no hard surface


def fog(points):
    d2 = ((points - C0.to(points)) ** 2).sum(-1)
    return torch.zeros(*points.shape[:-1], 3, dtype=points.dtype), A * torch.exp(-d2 / (2 * S * S))


def _render_opacity(cams, res):
    origins, dirs = make_rays(cams, res)
    out = render_rays(fog, origins, dirs, cams.near, cams.far, num_coarse=128, num_fine=64,
                      far_opaque=False, deterministic=True)
    return origins, dirs, out["opacity"]


def test_best_iou_level_on_a_hand_made_case():
    m = np.array([5.0, 4.0, 3.0, 2.0, 1.0, -np.inf])
    mask = np.array([True, True, False, True, False, False])
    level, iou = best_iou_level(m, mask)
    # {m > L} for L in (1, 2) selects 4 pixels with 3 of the 3 masked: IoU 3/4; L in (3, 4): 2/3
    assert iou == pytest.approx(0.75)
    assert 1.0 < level < 2.0


def test_auto_level_matches_the_rendered_silhouette_of_a_fog():
    cfg = CameraConfig(fov_deg=40.0, radius=1.0, near=0.6, far=1.4)
    cams = view_cameras(cfg, 4, dtype=torch.float64)
    origins, dirs, opacity = _render_opacity(cams, 40)
    grid = density_grid(fog, Box.cube(0.3), 96)
    choice = level_from_views(grid, origins, dirs, opacity)
    assert choice.method == "silhouette"
    # closed form: opacity 0.5 where the line integral A S sqrt(2 pi) exp(-rho^2 / 2S^2) = ln 2, i.e.
    # the density level ln 2 / (S sqrt(2 pi)) on the sphere of that radius
    analytic = math.log(2) / (S * math.sqrt(2 * math.pi))
    assert choice.level == pytest.approx(analytic, rel=0.1), (choice, analytic)
    assert auto_level(0.3) > A  # the fixed physical level finds no surface in this fog at all
    # the mesh at the chosen level, seen by a camera NOT used for the choice, matches that camera's render
    test_cam = camlib.from_angles(0.9, 1.1, radius=1.0, fov_deg=40.0, near=0.6, far=1.4, dtype=torch.float64)
    o, d, op = _render_opacity(test_cam, 64)
    mesh = extract_mesh(grid, choice.level)
    sil = _silhouette(mesh, test_cam, d)
    rendered = (op[0] > 0.5).numpy()
    iou = (sil & rendered).sum() / (sil | rendered).sum()
    assert rendered.sum() > 200 and iou > 0.9, iou
    # and a level 4x off does not
    mesh_bad = extract_mesh(grid, 4 * choice.level)
    sil_bad = _silhouette(mesh_bad, test_cam, d)
    assert (sil_bad & rendered).sum() / (sil_bad | rendered).sum() < 0.8


def test_auto_level_falls_back_to_a_percentile_without_opacity():
    grid = density_grid(fog, Box.cube(0.3), 32)
    cams = view_cameras(CameraConfig(fov_deg=40.0), 2)
    origins, dirs = make_rays(cams, 8)
    choice = level_from_views(grid, origins, dirs, torch.zeros(origins.shape[:-1]))
    assert choice.method == "percentile"
    assert choice.level == pytest.approx(float(np.percentile(grid.values, 99)))


# --------------------------------------------------------------------------------------------------
# The separable grid equals the plain G.query grid


@pytest.fixture(scope="module")
def demo_model():
    from core.checkpoint import load_generator
    from core.runtime import z_from_seed
    G, _ = load_generator("random:demo")
    planes = G.planes(G.mapping(z_from_seed(3, G.cfg.generator.z_dim)))
    return G, planes


@pytest.mark.parametrize("kind", ["activated", "raw"])
def test_separable_grid_equals_plain_query_grid(demo_model, kind):
    G, planes = demo_model
    box = Box((-0.31, -0.22, -0.27), (0.26, 0.33, 0.3))  # not centred, not a cube, reaching outside the planes
    field = generator_field(G, planes) if kind == "activated" else generator_raw_field(G, planes)
    res = 41
    plain = density_grid(field, box, res, with_rgb=True, kind=kind)
    calls = []
    fast = separable_grid(G, planes, box, res, chunk_points=3000, with_rgb=True, kind=kind,
                          progress=calls.append, check=False)
    assert sum(calls) == res ** 3 and max(calls) <= 3000
    scale = max(1.0, float(np.abs(plain.values).max()))
    np.testing.assert_allclose(fast.values, plain.values, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(fast.rgb, plain.rgb, rtol=0, atol=1e-5)
    assert fast.kind == kind and fast.box == box


def test_separable_grid_detects_a_wrong_plane_convention(demo_model, monkeypatch):
    """If the lookup's plane convention changed, the first-block check falls back to the plain path."""
    import core.geometry.fastgrid as fg
    G, planes = demo_model
    real = fg._lookup()

    def swapped(pl, pts, cs, **kw):  # a lookup that reads (y, x) on the xy plane
        return real(pl, pts[..., [1, 0, 2]], cs, **kw)
    monkeypatch.setattr(fg, "_lookup", lambda: swapped)
    box = Box.cube(0.3)
    plain = density_grid(generator_field(G, planes), box, 17)
    unchecked = separable_grid(G, planes, box, 17, check=False)
    assert np.abs(unchecked.values - plain.values).max() > 1e-3  # the test can fail
    checked = separable_grid(G, planes, box, 17, check=True)
    np.testing.assert_allclose(checked.values, plain.values, atol=1e-5)


def test_separable_grid_memory_bound_at_512(demo_model, monkeypatch):
    """At 512^3 no decoder call sees more than the chunk (or the cache piece) of nodes, and the
    lookups see at most res^2 points per call."""
    import core.geometry.fastgrid as fg
    G, planes = demo_model
    seen_dec, seen_look = [], []
    real = fg._lookup()

    def spy_lookup(pl, pts, cs, **kw):
        seen_look.append(pts.shape[1])
        return real(pl, pts, cs, **kw)
    monkeypatch.setattr(fg, "_lookup", lambda: spy_lookup)
    h = G.decoder.fc1.register_forward_pre_hook(lambda m, a: seen_dec.append(a[0].numel() // a[0].shape[-1]))
    try:
        res, chunk = 512, 1 << 16
        # only the first slabs (cancel after 8 blocks): the bound is per block, the whole grid takes minutes here
        blocks = []
        with pytest.raises(fg.Cancelled):
            separable_grid(G, planes, Box.cube(0.3), res, chunk_points=chunk, progress=blocks.append,
                           cancel=lambda: len(blocks) >= 8, check=False)
    finally:
        h.remove()
    assert len(blocks) == 8 and max(blocks) <= chunk
    assert max(seen_dec) <= fg.PIECE_POINTS and max(seen_look) <= max(chunk, res)
    assert sum(seen_dec) == sum(blocks)


# --------------------------------------------------------------------------------------------------
# Decimation


def ramp_sphere(points):
    d = points.norm(dim=-1)
    return torch.zeros(*points.shape[:-1], 3), 1000.0 * (0.2 - d) + 500.0


def test_decimate_keeps_the_fraction_and_the_shape():
    grid = density_grid(ramp_sphere, Box.cube(0.3), 64)
    full = extract_mesh(grid, 500.0)
    dec = extract_mesh(grid, 500.0, decimate=0.1, color_field=ramp_sphere)
    assert len(dec.faces) == pytest.approx(0.1 * len(full.faces), rel=0.1)
    r = np.linalg.norm(dec.vertices, axis=1)
    assert np.abs(r - 0.2).max() < 0.01  # still the sphere (in world units)
    assert dec.volume == pytest.approx(4 / 3 * math.pi * 0.2 ** 3, rel=0.03)
    assert len(dec.visual.vertex_colors) == len(dec.vertices)
    with pytest.raises(Exception, match="fraction"):
        extract_mesh(grid, 500.0, decimate=1.5)
    assert isinstance(dec, trimesh.Trimesh)


def test_cli_auto_level_and_decimate(tmp_path, capsys):
    from core.extract_mesh import main
    rc = main(["--ckpt", "random:demo", "--seeds", "2", "--res", "40", "--format", "ply",
               "--decimate", "0.5", "--outdir", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "level auto" in out and "seed 2: auto level" in out
    full_dir = tmp_path / "full"
    main(["--ckpt", "random:demo", "--seeds", "2", "--res", "40", "--format", "ply", "--plain-grid",
          "--outdir", str(full_dir)])
    dec = trimesh.load(tmp_path / "seed0002.ply", process=False)
    full = trimesh.load(full_dir / "seed0002.ply", process=False)
    assert 0 < len(dec.faces) <= 0.6 * len(full.faces)


def test_auto_level_of_a_faint_fog_matches_its_silhouette_at_half_the_peak():
    """A fog 20x fainter (peak line integral 0.3: opacity 0.26, nowhere 0.5) is matched at opacity
    > peak / 2 =: c, i.e. where the line integral reaches -ln(1 - c): closed form as above."""
    scale = 0.05

    def faint(points):
        c, s = fog(points)
        return c, scale * s

    cfg = CameraConfig(fov_deg=40.0, radius=1.0, near=0.6, far=1.4)
    cams = view_cameras(cfg, 4, dtype=torch.float64)
    origins, dirs = make_rays(cams, 40)
    opacity = render_rays(faint, origins, dirs, cams.near, cams.far, num_coarse=128, num_fine=64,
                          far_opaque=False, deterministic=True)["opacity"]
    peak = float(opacity.max())
    assert 0.2 < peak < 0.3
    grid = density_grid(faint, Box.cube(0.3), 96)
    choice = level_from_views(grid, origins, dirs, opacity)
    assert choice.method == "silhouette" and choice.cut == pytest.approx(peak / 2)
    assert "half the peak" in choice.describe()
    analytic = -math.log(1 - peak / 2) / (S * math.sqrt(2 * math.pi))
    assert choice.level == pytest.approx(analytic, rel=0.1), (choice, analytic)
