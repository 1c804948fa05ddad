"""The Mesh panel in the real window under Xvfb, driven by tests/viewer/gui_mesh_driver.py.

One driver run (about a minute on a loaded 2-core CPU) opens random:demo, sets a 48^3 grid, waits
for the live preview, toggles the viewport to the mesh with G, extracts in the background, saves a
.ply, cancels a 512^3 extraction and switches to the density surface. The checks use independent oracles: the exported file read
back by trimesh, and the mesh's silhouette rasterised on the CPU from the camera's rays (core's
make_rays) against the pixels the GL pass drew with the viewer's camera matrices.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from viewer_testlib import run_gui_driver

from core import cameras as camlib
from core.config import get_preset
from core.render.rays import make_rays
from tests.test_geometry import _silhouette

pytest.importorskip("imgui_bundle", reason="the GUI tests need imgui-bundle (pip install -r requirements.txt)")
pytest.importorskip("OpenGL", reason="the GUI tests need PyOpenGL (pip install -r requirements.txt)")

DRIVER = Path(__file__).with_name("gui_mesh_driver.py")
READ = 96


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mesh_gui")
    results, _ = run_gui_driver(DRIVER, [], tmp, tmp / "out", timeout=300)
    return results, tmp / "out"


def _mask(pixels: np.ndarray, background) -> np.ndarray:
    bg = np.round(np.asarray(background) * 255)
    return np.abs(pixels.astype(int) - bg).max(axis=-1) > 8


def test_preview_and_extraction_run_in_the_background(run):
    r = run[0]
    assert r["resolution"] == 48
    assert r["preview"]["ok"] and r["preview"]["faces"] > 0 and r["preview"]["auto"].startswith("auto level")
    assert r["preview"]["kind"] == "occlusion"  # the default surface is the visibility one
    assert r["density"]["ok"] and r["density"]["kind"] == "activated" and r["density"]["faces"] > 0
    e = r["extract"]
    assert e["ok"] and e["res"] == 48 and e["faces"] > 0 and e["shown_is_result"]
    assert e["message"].startswith("mesh ") and f"{e['faces']} faces" in e["message"]


def test_g_toggles_between_volume_and_mesh_with_the_same_camera(run):
    results, out = run
    assert results["toggle"]["ok"] and results["toggle_back"]
    bg = results["toggle"]["background"]
    volume = np.load(out / "volume.npy")
    mesh_px = np.load(out / "mesh_pixels.npy")
    preview_px = np.load(out / "preview_pixels.npy")
    assert volume.shape == mesh_px.shape == preview_px.shape == (READ, READ, 3)
    drawn = _mask(mesh_px, bg)
    assert drawn.mean() > 0.005 and _mask(preview_px, bg).mean() > 0.005  # something was drawn
    assert np.abs(mesh_px.astype(int) - volume.astype(int)).mean() > 2  # and it is not the volume picture
    # oracle: the exported mesh rasterised on the CPU along the render camera's own rays
    mesh = trimesh.load(Path(results["export"]["message"].split("saved ", 1)[1]), process=False)
    yaw, pitch, radius, fov, look_at = results["camera"]
    cams = camlib.from_angles(yaw, pitch, radius, fov, tuple(look_at), cfg=get_preset("demo").camera,
                              dtype=torch.float64)
    _, dirs = make_rays(cams, READ)
    sil = _silhouette(mesh, cams, dirs).reshape(READ, READ)
    iou = (sil & drawn).sum() / (sil | drawn).sum()
    assert sil.sum() > 40 and iou > 0.9, (iou, sil.sum(), drawn.sum())
    # a camera moved sideways by half the mesh's size does not line up: the comparison can fail (a
    # turn would not do for every shape: the visibility surface of a random model is a rounded blob)
    right = cams.cam2world[0, :3, 0].numpy()
    moved = np.asarray(look_at, np.float64) + 0.5 * float(np.max(mesh.extents)) * right
    turned = camlib.from_angles(yaw, pitch, radius, fov, tuple(moved), cfg=get_preset("demo").camera,
                                dtype=torch.float64)
    _, dirs_t = make_rays(turned, READ)
    sil_t = _silhouette(mesh, turned, dirs_t).reshape(READ, READ)
    assert (sil_t & drawn).sum() / (sil_t | drawn).sum() < 0.8


def test_vertex_colour_mode_shows_the_field_colours(run):
    results, out = run
    bg = results["toggle"]["background"]
    shaded, colors = np.load(out / "mesh_pixels.npy"), np.load(out / "color_pixels.npy")
    mask = _mask(shaded, bg)
    mesh = trimesh.load(Path(results["export"]["message"].split("saved ", 1)[1]), process=False)
    vc = mesh.visual.vertex_colors[:, :3].astype(int)
    inside = colors[mask].astype(int)
    assert np.abs(inside - shaded[mask].astype(int)).mean() > 5  # a different picture from the shaded one
    # unlit vertex colours: every drawn pixel lies within the range of the mesh's colours
    assert (inside >= vc.min(0) - 3).all() and (inside <= vc.max(0) + 3).all()


def test_ply_export_reopens_with_trimesh(run):
    results, out = run
    ex = results["export"]
    assert ex["ok"]
    path = Path(ex["message"].split("saved ", 1)[1])
    assert path.parent == out / "exports" and path.suffix == ".ply"
    assert not list(path.parent.glob("*.tmp*"))  # atomic write left no temporary file
    mesh = trimesh.load(path, process=False)
    assert len(mesh.faces) == results["extract"]["faces"]
    assert np.abs(mesh.vertices).max() <= get_preset("demo").generator.cube_scale + 1e-6  # world units
    assert mesh.visual.vertex_colors.shape == (len(mesh.vertices), 4)


def test_cancel_stops_a_large_extraction(run):
    c = run[0]["cancel"]
    assert c["ok"] and c["message"] == "extraction cancelled"
    assert c["result_res"] == 48  # the earlier result stays


def test_status_text_never_moves_the_controls(run):
    # the preview's summary, the automatic level, the extraction and export messages all appear
    # while one works; a control that moved between two frames makes a click land on the wrong item
    layout = run[0]["layout"]
    assert set(layout) == {"start", "preview", "extracted", "saved"}
    for when, where in layout.items():
        assert where == layout["start"], (when, where, layout["start"])
