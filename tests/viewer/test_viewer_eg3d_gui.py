"""An EG3D snapshot in the real window under Xvfb, driven by tests/viewer/gui_eg3d_driver.py.

One driver run (about 25 s on a loaded 2-core CPU) opens the official-format EG3D fixture, toggles
the raw neural image (the viewport's texture is read back), turns it off with the shortcut, and
drags the camera with the default conditioning pose and with "follow the render camera". The
final frame is compared here with core's G.render of the same view (an independent oracle).
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from viewer_testlib import run_gui_driver

from core import cameras as camlib
from core.checkpoint import load_generator
from core.images import image_to_uint8
from core.runtime import z_from_seed

pytest.importorskip("imgui_bundle", reason="the GUI tests need imgui-bundle (pip install -r requirements.txt)")
pytest.importorskip("OpenGL", reason="the GUI tests need PyOpenGL (pip install -r requirements.txt)")

DRIVER = Path(__file__).with_name("gui_eg3d_driver.py")
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "eg3d_official" / "snapshot_ffhq_tiny.pkl"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not FIXTURE.exists():
        pytest.skip(f"no EG3D fixture at {FIXTURE}")
    tmp = tmp_path_factory.mktemp("eg3d_gui")
    results, _ = run_gui_driver(DRIVER, [str(FIXTURE)], tmp, tmp / "out", timeout=300)
    if results.get("skip"):
        pytest.skip(f"GUI tests skipped: {results['skip']}")
    return results, tmp / "out"


def test_the_snapshot_opens_and_renders_like_core(run):
    r, out = run
    o = r["open"]
    assert o["ok"] and o["eg3d"] and o["error"] is None and r["error"] is None
    assert o["level"] == "full" and o["image"] == [128, 128, 3] and o["raw"] == [32, 32, 3] == o["depth"] + [3]
    assert o["neural_res"] == 32 and o["pose"] is None
    G, _ = load_generator(str(FIXTURE), torch.device("cpu"))
    with torch.no_grad():
        w = G.mapping(z_from_seed(0, G.cfg.generator.z_dim))
        yaw, pitch, radius, fov, look_at = o["camera"]
        cams = camlib.from_angles(yaw, pitch, radius, fov, tuple(look_at), cfg=G.cfg.camera)
        ref = image_to_uint8(G.render(G.planes(w), cams, resolution=128, w=w)["image"][0])
    assert np.array_equal(np.asarray(Image.open(out / "final.png").convert("RGB")), ref)


def test_the_raw_toggle(run):
    r, out = run
    raw = r["raw"]
    assert raw["ok"] and raw["readback_max_diff"] <= 1  # the viewport shows the raw neural image
    assert raw["renders"] == r["open"]["renders"]  # the toggle shows what was rendered: no new render
    final = np.asarray(Image.open(out / "final.png").convert("RGB"))
    shown = np.asarray(Image.open(out / "raw.png").convert("RGB"))
    assert shown.shape == final.shape and shown.std() > 2 and not np.array_equal(shown, final)
    assert r["raw_off"]
    window = np.asarray(Image.open(out / "window_raw.png").convert("RGB"))
    assert window.shape[:2] == (800, 1200)


def test_conditioning_pose_and_no_bake(run):
    r = run[0]
    assert r["drag_mean"]["ok"] and r["drag_mean"]["same_w"] and r["drag_mean"]["yaw"] != r["open"]["yaw"]
    f = r["drag_follow"]
    assert f["ok"] and f["pose"] is not None and f["w_change"] > 1e-3 and f["w_change_from_mean"] > 1e-3
    assert r["bakes"]["queued"] == 0 and r["bakes"]["baked"] == 0  # no baked preview for EG3D
