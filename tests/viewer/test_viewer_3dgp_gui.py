"""A model with 3DGP's learned cameras and depth adaptor in the real window under Xvfb, driven by
tests/viewer/gui_3dgp_driver.py: it opens at the learned mean camera, "Sample a camera" moves to a
camera of the learned distribution, "Mean camera" comes back, and "D depth" shows the adaptor's
channel. The cameras are checked here against core's (an independent path through G)."""

from pathlib import Path

import pytest
import torch
from test_viewer_learned_camera import _cfg
from viewer_testlib import run_gui_driver

from core import cameras as camlib
from core.checkpoint import build_generator, save_checkpoint

pytest.importorskip("imgui_bundle", reason="the GUI tests need imgui-bundle (pip install -r requirements.txt)")
pytest.importorskip("OpenGL", reason="the GUI tests need PyOpenGL (pip install -r requirements.txt)")

DRIVER = Path(__file__).with_name("gui_3dgp_driver.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gui3dgp")
    cfg = _cfg()
    G = build_generator(cfg, seed=2)
    ckpt = tmp / "tiny3dgp.pt"
    save_checkpoint(ckpt, cfg, G)
    results, _ = run_gui_driver(DRIVER, [str(ckpt)], tmp, tmp / "out", timeout=300)
    if results.get("skip"):
        pytest.skip(f"GUI tests skipped: {results['skip']}")
    return results, G.eval(), cfg


def test_learned_cameras_in_the_window(run):
    r, G, cfg = run
    assert "exception" not in r, r.get("exception")
    assert r["open"]["ok"] and r["open"]["error"] is None and r["error"] is None
    mean = G.mean_camera_params()
    # the window opened at the learned mean camera: its field of view, and its origin
    yaw, pitch, radius, fov, look_at = r["open"]["camera"]
    assert abs(fov - float(mean.fov_deg[0])) < 1e-3
    opened = camlib.from_angles(yaw, pitch, radius, fov, tuple(look_at), cfg=cfg.camera)
    want = camlib.params_to_cameras(mean, cfg.camera)
    torch.testing.assert_close(opened.cam2world[0, :3, 3], want.cam2world[0, :3, 3], atol=1e-4, rtol=0)
    lo, hi = camlib.prior_bounds(cfg.camera)["fov_deg"]
    assert r["sample"]["ok"] and r["sample"]["camera"] != r["open"]["camera"]
    assert lo - 1e-3 <= r["sample"]["camera"][3] <= hi + 1e-3
    assert r["mean"]["ok"]
    flat = [*r["mean"]["camera"][:4], *r["mean"]["camera"][4]]
    assert flat == pytest.approx([*r["open"]["camera"][:4], *r["open"]["camera"][4]], abs=1e-6)


def test_d_depth_mode_in_the_window(run):
    r = run[0]
    d = r["ddepth"]
    assert d["ok"] and d["mode"] == "ddepth" and d["grey"] and d["level"] == "full"
