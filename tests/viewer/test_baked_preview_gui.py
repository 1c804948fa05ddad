"""The baked preview in the real window under Xvfb, driven by tests/viewer/gui_baked_driver.py.

One driver run (about 30 s on a loaded 2-core CPU) opens the bundled demo model, waits for the bake,
reads the preview of the shown view back, orbits, drags, and flips the Render panel's toggle. The
preview is compared with core's G.render of the same view, computed here (an independent oracle).
"""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from viewer_testlib import run_gui_driver

from core import cameras as camlib
from core.checkpoint import load_generator
from core.images import image_to_uint8
from core.runtime import z_from_seed

pytest.importorskip("imgui_bundle", reason="the GUI tests need imgui-bundle (pip install -r requirements.txt)")
pytest.importorskip("OpenGL", reason="the GUI tests need PyOpenGL (pip install -r requirements.txt)")

DRIVER = Path(__file__).with_name("gui_baked_driver.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("baked_gui")
    results, _ = run_gui_driver(DRIVER, ["demo"], tmp, tmp / "out", timeout=300)
    if results.get("skip"):
        pytest.skip(f"GUI tests skipped: {results['skip']}")
    return results, tmp / "out"


def test_the_bake_runs_on_the_render_worker(run):
    b = run[0]["bake"]
    assert b["ok"] and b["baked"] == 1 and b["res"] == 128
    assert b["thread"] == "render-worker" and b["main_thread"] == "MainThread"
    assert run[0]["view"]["draw_thread"] == "MainThread"  # GL only on the GUI thread
    assert b["upload_s"] < 0.5


def test_the_preview_matches_the_neural_render(run):
    results, out = run
    v = results["view"]
    G, _ = load_generator("demo", torch.device("cpu"))
    c = torch.zeros(1, G.cfg.generator.c_dim)
    c[0, v["latent_class"]] = 1
    with torch.no_grad():
        w = G.mapping(z_from_seed(v["latent_seed"], G.cfg.generator.z_dim), c, 1.0)
        yaw, pitch, radius, fov, look_at = v["camera"]
        cams = camlib.from_angles(yaw, pitch, radius, fov, tuple(look_at), cfg=G.cfg.camera)
        ref = image_to_uint8(G.render(G.planes(w), cams, resolution=96)["image"][0])
    got = np.load(out / "preview.npy")
    mse = ((got.astype(np.float64) - ref) ** 2).mean()
    assert 10 * math.log10(255**2 / mse) > 38
    assert (np.abs(got.astype(int) - 255).max(-1) > 40).mean() > 0.05  # the object is there (white background)


def test_orbiting_shows_the_preview_without_neural_renders(run):
    r = run[0]
    o = r["orbit"]
    assert o["frames"] >= 5 and o["on_screen"] == o["frames"]
    assert o["submitted"][0] == o["submitted"][1]  # no render request while the preview was up
    assert o["target"][0] == o["target"][1] > 200  # drawn at the viewport's size
    s = r["still"]
    assert s["ok"] and s["level"] == "full" and not s["on_screen"]
    assert r["drag"]["ok"] and r["drag"]["on_screen"] >= 1


def test_the_render_panel_toggle(run):
    r = run[0]
    off, on = r["toggle_off"], r["toggle_on"]
    assert off["ok"] and off["frames"] >= 3 and off["on_screen"] == 0
    assert off["submitted"][1] > off["submitted"][0]  # neural previews while moving instead
    assert on["ok"] and on["on_screen"] >= 1
    assert r["stats"]["failed"] == 0 and r["stats"]["baked"] == 1  # the same latent: no second bake
